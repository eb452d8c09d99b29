"""Reference calibrations of a simulated repository: when they are made, and where they go."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.simulator.observatory import BOOTSTRAP_ENV_VAR, ObservatoryConfig
from lsst.ts.calibscripts.simulator.reference_calibrations import (
    ensure_calibration_chain,
    missing_reference_types,
)


def test_when_a_bootstrap_happens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ObservatoryConfig(var_dir=tmp_path)
    monkeypatch.delenv(BOOTSTRAP_ENV_VAR)
    assert config.wants_bootstrap(created=True)
    assert not config.wants_bootstrap(created=False)
    monkeypatch.setenv(BOOTSTRAP_ENV_VAR, "0")
    assert not config.wants_bootstrap(created=True)
    # Asked for explicitly: whatever the variable says, and on an existing repository too.
    assert ObservatoryConfig(var_dir=tmp_path, bootstrap=True).wants_bootstrap(created=False)
    monkeypatch.delenv(BOOTSTRAP_ENV_VAR)
    assert not ObservatoryConfig(var_dir=tmp_path, bootstrap=False).wants_bootstrap(created=True)
    assert not ObservatoryConfig(var_dir=tmp_path, with_ocps=False).wants_bootstrap(created=True)
    with pytest.raises(ValueError, match="bootstrap needs the OCPS"):
        ObservatoryConfig(var_dir=tmp_path, with_ocps=False, bootstrap=True)


def test_scratch_lives_with_the_repository(tmp_path: Path) -> None:
    config = ObservatoryConfig(var_dir=tmp_path / "var", repo=tmp_path / "elsewhere")
    assert config.scratch_path == tmp_path / "elsewhere" / "simulated-scratch"
    assert config.job_log_pattern() == f"{tmp_path}/elsewhere/simulated-scratch/uws/<jobId>/outs/ocps.log"
    assert ObservatoryConfig(var_dir=tmp_path, scratch_dir=tmp_path / "s").scratch_path == tmp_path / "s"


def test_an_older_repository_gets_the_bootstrap_collection_at_the_end_of_its_chain(tmp_path: Path) -> None:
    repo = create_repository(tmp_path / "repo", ["LATISS"])
    ensure_calibration_chain(repo, "LATISS", with_bootstrap=False)  # as before the reference set existed
    assert missing_reference_types(repo, "LATISS", [0], None) == ["bias", "dark", "flat"]
    ensure_calibration_chain(repo, "LATISS")
    ensure_calibration_chain(repo, "LATISS")  # idempotent
    with Butler.from_config(str(repo)) as butler:
        chain = butler.collections.get_info("LATISS/calib").children
    assert list(chain) == ["LATISS/calib/daily", "LATISS/calib/bootstrap"]
