"""Raw files and sequence numbers: per-repository allocation, no overwrite, left-overs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.control import LATISS
from lsst.ts.calibscripts.cp.butler.raw_file import read_raw_header
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS as LATISS_DESCRIPTION
from lsst.ts.calibscripts.sal.testing import set_random_topic_subname
from lsst.ts.calibscripts.simulator.image_names import STATE_DIR_NAME, ImageNameSource

from .observatory_fixtures import collect_image_in_oods, running_observatory
from .sequence_worker import WHEN, allocate


def test_allocation_across_processes_is_distinct(tmp_path: Path) -> None:
    repo = create_repository(tmp_path / "repo", ["LATISS"])
    n_proc, per_proc = 4, 25
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with context.Pool(n_proc) as pool:
        results = pool.starmap(allocate, [(str(repo), per_proc)] * n_proc)
    numbers = [n for result in results for n in result]
    assert sorted(numbers) == list(range(1, n_proc * per_proc + 1))
    state = json.loads((repo / STATE_DIR_NAME / "sequence-LATISS.json").read_text())
    assert state == {"day_obs": 20220929, "seq_num": n_proc * per_proc}
    # Another var dir changes nothing: the state is the repository's.
    assert ImageNameSource(LATISS_DESCRIPTION, repo=repo, state_dir=tmp_path / "other").next(WHEN)[2] == 101


def test_non_local_repository_uses_state_dir(tmp_path: Path) -> None:
    names = ImageNameSource(LATISS_DESCRIPTION, state_dir=tmp_path / "state")
    assert names.next(WHEN)[0] == "AT_O_20220929_000001"
    assert not names.stored_with_repository
    assert names.state_file.parent == tmp_path / "state"
    with pytest.raises(ValueError, match="not a local repository and no state_dir"):
        ImageNameSource(LATISS_DESCRIPTION, repo="s3://bucket/repo")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_leftovers_reported_never_overwritten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with running_observatory(tmp_path) as (observatory, domain), LATISS(domain) as latiss:
        camera = observatory.camera
        oods = sal.Remote(domain, "ATOODS", evt_max_history=0, include=["imageInOODS"])
        await oods.start_task
        first, second = await latiss.take_bias(2)
        assert [e.statusCode for e in await collect_image_in_oods(oods, 2)] == [0, 0]
        day_obs, last = camera.names.last()
        assert last == second % 100_000
        taken = sorted(camera.image_dir(day_obs, "").glob("AT_O_*/*.fits"))
        assert len(taken) == 2 and all(observatory.config.repo_path in p.parents for p in taken)
        sums = {path: _sha256(path) for path in taken}
        # A raw left over from a killed run, at the next sequence number (never ingested).
        leftover_name = LATISS_DESCRIPTION.obs_id(day_obs, last + 1, "O")
        leftover = camera.image_dir(day_obs, leftover_name) / f"{leftover_name}_RXX_S00.fits"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"pixels of a run killed before ingest")
        # And a state that went back (restored from a backup): the first two are in the repository.
        state_file = camera.names.state_file
        state_file.write_text(json.dumps({"day_obs": day_obs, "seq_num": last - 2}))
        caplog.clear()
        (third,) = await latiss.take_bias(1)
        assert third % 100_000 == last + 2
        assert [e.statusCode for e in await collect_image_in_oods(oods, 1)] == [0]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 3, warnings
        assert all("left over from an earlier run" in w for w in warnings)
        assert f"{taken[0]} is left over from an earlier run and is in the repository" in warnings[0]
        assert f"{taken[1]} is left over from an earlier run and is in the repository" in warnings[1]
        assert f"{leftover} is left over from an earlier run and is NOT in the repository" in warnings[2]
        assert leftover.read_bytes() == b"pixels of a run killed before ingest"
        assert all(_sha256(path) == digest for path, digest in sums.items())
    assert len({first, second, third}) == 3

    # A restart reports the left-over files at once (with one cut short by a kill during the
    # write); a lost state restarts above the registry.
    partial = leftover.parent / f".{leftover.name}.partial"
    partial.write_bytes(b"half a raw")
    (observatory.config.repo_path / STATE_DIR_NAME / "sequence-LATISS.json").unlink()
    caplog.clear()
    async with running_observatory(tmp_path) as (observatory, domain), LATISS(domain) as latiss:
        (fourth,) = await latiss.take_bias(1)
    assert fourth == third + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    report = [w for w in warnings if "2 raw file(s) left over from an interrupted run" in w]
    assert report and str(leftover) in report[0] and str(partial) in report[0]
    assert leftover.read_bytes() == b"pixels of a run killed before ingest"


async def _take_biases(var_dir: Path, repo: Path, announced: dict[Path, tuple[str, str]]) -> list[int]:
    """Run an observatory and take 3 biases; record each raw as announced: path -> (name, sha256)."""

    def on_file(data: sal.BaseMessage) -> None:
        # Hashed as soon as announced, before the other run can touch it.
        path = Path(unquote(urlparse(data.url).path))
        announced[path] = (data.id, _sha256(path))

    async with running_observatory(var_dir, repo=repo, subname=set_random_topic_subname()) as (_, domain):
        camera = sal.Remote(domain, "ATCamera", evt_max_history=0, include=["largeFileObjectAvailable"])
        oods = sal.Remote(domain, "ATOODS", evt_max_history=0, include=["imageInOODS"])
        camera.evt_largeFileObjectAvailable.callback = on_file
        async with camera, oods, LATISS(domain) as latiss:
            exposures = await latiss.take_bias(3)
            events = await collect_image_in_oods(oods, 3)
    assert [e.statusCode for e in events] == [0, 0, 0], [e.description for e in events]
    return exposures


@pytest.mark.parametrize("same_var_dir", [False, True], ids=["two-var-dirs", "one-var-dir"])
async def test_two_concurrent_runs_on_one_repository(tmp_path: Path, same_var_dir: bool) -> None:
    repo = create_repository(tmp_path / "repo", ["LATISS"])
    var_a, var_b = tmp_path / "var-a", tmp_path / ("var-a" if same_var_dir else "var-b")
    announced_a: dict[Path, tuple[str, str]] = {}
    announced_b: dict[Path, tuple[str, str]] = {}
    exposures_a, exposures_b = await asyncio.gather(
        _take_biases(var_a, repo, announced_a), _take_biases(var_b, repo, announced_b)
    )
    # B goes on after A ended.
    exposures_b += await _take_biases(var_b, repo, announced_b)
    exposures = exposures_a + exposures_b
    assert len(set(exposures)) == 9
    announced = announced_a | announced_b
    assert len(announced) == 9
    for path, (obs_id, digest) in announced.items():
        assert path.is_relative_to(repo / "simulated-raw"), path
        assert read_raw_header(path)["OBSID"] == obs_id
        assert _sha256(path) == digest, f"{path} changed after it was announced"
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_datasets("raw", collections="LATISS/raw/all")
        assert sorted(int(ref.dataId["exposure"]) for ref in refs) == sorted(exposures)
        assert {Path(butler.getURI(ref).ospath) for ref in refs} == set(announced)
    # Nothing of either run lives in its var dir.
    assert not [p for d in (var_a, var_b) for p in d.rglob("*.fits")]


async def test_repository_holds_its_raws(tmp_path: Path) -> None:
    var_dir, repo = tmp_path / "checkout" / "var", tmp_path / "elsewhere" / "repo"
    async with running_observatory(var_dir, repo=repo) as (_, domain), LATISS(domain) as latiss:
        oods = sal.Remote(domain, "ATOODS", evt_max_history=0, include=["imageInOODS"])
        await oods.start_task
        (exposure,) = await latiss.take_bias(1)
        assert [e.statusCode for e in await collect_image_in_oods(oods, 1)] == [0]
    # Deleting the checkout's var dir and moving the repository break nothing.
    shutil.rmtree(var_dir)
    moved = repo.rename(tmp_path / "moved")
    with Butler.from_config(str(moved)) as butler:
        (ref,) = butler.query_datasets("raw", collections="LATISS/raw/all")
        assert ref.dataId["exposure"] == exposure
        assert Path(butler.getURI(ref).ospath).is_relative_to(moved / "simulated-raw")
        assert butler.get(ref) is not None
