"""Reference calibrations of a simulated repository, made as an observatory makes them.

A real ``<instrument>/calib`` already holds certified calibrations when the
daily scripts run: the procedure's preferred mode (external verification)
and every step that reads a bias or a dark depend on them. A new simulated
repository has none, so `make_reference_calibrations` gives it a set, the
way it would be made at a real observatory and with nothing taken from the
camera model's truth: it takes biases, darks and flats with the simulated
camera, waits until the OODS has ingested them, runs the real ``cpBias``,
``cpDark`` and ``cpFlat`` pipelines through the OCPS, and certifies each
product into ``<instrument>/calib/bootstrap`` (`bootstrap_collection`) before
the next one needs it. ``<instrument>/calib`` is a chain over
``<instrument>/calib/daily`` then that collection, so what the scripts certify
into the daily collection later takes precedence.

Only what is missing is made: a repository whose ``<instrument>/calib``
already has a bias, dark and flat valid now for every detector is left
alone.
"""

from __future__ import annotations

__all__ = [
    "BOOTSTRAP_BEGIN_DATE",
    "BOOTSTRAP_END_DATE",
    "BootstrapError",
    "BootstrapPlan",
    "bootstrap_collection",
    "calib_chain",
    "daily_collection",
    "ensure_calibration_chain",
    "make_reference_calibrations",
    "missing_reference_types",
]

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lsst.daf.butler import Butler, CollectionType

from ..cp.butler.calibration_needs import missing_calibrations, timespan_now
from ..cp.butler.certification import CertificationError, certify_calibrations
from ..observations import exposure_id_from_obs_id
from ..sal import AckError, BaseMessage, Domain, Remote

_log = logging.getLogger(__name__)

#: Validity range of the reference set: "always", as a camera's first calibrations are (the
#: simulated exposures are taken now; a begin before 1970 only draws a warning from the Butler).
BOOTSTRAP_BEGIN_DATE = "2000-01-01"
BOOTSTRAP_END_DATE = "2050-01-01"

#: The products, in the order each needs the previous ones: (dataset type, image type, pipeline).
_PRODUCTS = (("bias", "BIAS", "cpBias"), ("dark", "DARK", "cpDark"), ("flat", "FLAT", "cpFlat"))

# Time for the OCPS to accept a job, and for a job to run (reduced or full geometry).
_ACK_TIMEOUT = 60.0
_JOB_TIMEOUT = 3600.0
# Time for the OODS to ingest an image after its read-out (s, wall clock).
_OODS_TIMEOUT = 120.0


class BootstrapError(RuntimeError):
    """The reference calibrations could not be made; the message says which step and why."""


def calib_chain(instrument: str) -> str:
    """Return ``<instrument>/calib``, the chain the scripts read by default."""
    return f"{instrument}/calib"


def daily_collection(instrument: str) -> str:
    """Return ``<instrument>/calib/daily``, where the scripts certify by default."""
    return f"{instrument}/calib/daily"


def bootstrap_collection(instrument: str) -> str:
    """Return ``<instrument>/calib/bootstrap``, the CALIBRATION collection of the reference set."""
    return f"{instrument}/calib/bootstrap"


def ensure_calibration_chain(repo: Path | str, instrument: str, *, with_bootstrap: bool = True) -> None:
    """Make ``<instrument>/calib`` a chain over the daily and bootstrap collections.

    The scripts' default input collections are ``<instrument>/calib``; at
    the summit that chain holds the calibrations in use. Here it is a chain
    over the CALIBRATION collections ``<instrument>/calib/daily`` (what the
    scripts certify) and, after it, ``<instrument>/calib/bootstrap`` (the
    reference set), so that a calibration certified by a script is used in
    preference to the reference one.

    An existing chain is kept; with ``with_bootstrap`` the bootstrap
    collection is added at its end if it is not in it already (a repository
    made before the reference set existed).

    Parameters
    ----------
    repo : `pathlib.Path` or `str`
        The repository.
    instrument : `str`
        Instrument name.
    with_bootstrap : `bool`, optional
        Make sure the chain includes the bootstrap collection.
    """
    chain, daily = calib_chain(instrument), daily_collection(instrument)
    bootstrap = bootstrap_collection(instrument)
    with Butler.from_config(str(repo), writeable=True) as butler:
        if butler.collections.register(daily, CollectionType.CALIBRATION):
            _log.info("Created CALIBRATION collection %s", daily)
        children = [daily]
        if with_bootstrap:
            if butler.collections.register(bootstrap, CollectionType.CALIBRATION):
                _log.info("Created CALIBRATION collection %s", bootstrap)
            children.append(bootstrap)
        if butler.collections.register(chain, CollectionType.CHAINED):
            butler.collections.redefine_chain(chain, children)
            _log.info("Created CHAINED collection %s -> %s", chain, ", ".join(children))
        elif with_bootstrap and bootstrap not in butler.collections.get_info(chain).children:
            butler.collections.extend_chain(chain, [bootstrap])
            _log.info("Added %s to the end of %s", bootstrap, chain)


@dataclasses.dataclass(frozen=True)
class BootstrapPlan:
    """How many images the reference calibrations are made of.

    Enough for the daily external verification to pass against them: a
    combination of N images adds ``1/N`` to the variance of every image
    later verified against it, and the NOISE test allows 5 %, so
    ``sqrt(1 + 1/20) = 1.025`` passes where 5 images (1.095) would be
    rejected. It takes about a minute and a half with the reduced
    geometry; tests use smaller plans.

    Attributes
    ----------
    n_bias, n_dark, n_flat : `int`
        Images combined per product; one more of each is taken first and
        discarded (the first image after an idle period carries a
        transient, as the scripts' ``n_discard_*`` assume).
    dark_time, flat_time : `float`
        Exposure times (s): the daily default's longest dark and its flats.
    """

    n_bias: int = 20
    n_dark: int = 20
    n_flat: int = 40
    dark_time: float = 30.0
    flat_time: float = 5.0

    def __post_init__(self) -> None:
        for name in ("n_bias", "n_dark", "n_flat"):
            if getattr(self, name) < 1:
                raise ValueError(f"BootstrapPlan.{name} must be at least 1, got {getattr(self, name)}")
        if self.dark_time <= 0 or self.flat_time < 0.1:
            raise ValueError("BootstrapPlan: dark_time must be > 0 and flat_time at least 0.1 s")

    def images(self, image_type: str) -> tuple[int, float]:
        """Return (images combined, exposure time) of an image type."""
        return {
            "BIAS": (self.n_bias, 0.0),
            "DARK": (self.n_dark, self.dark_time),
            "FLAT": (self.n_flat, self.flat_time),
        }[image_type]


def missing_reference_types(
    repo: Path | str, instrument: str, detectors: Sequence[int], physical_filter: str | None
) -> list[str]:
    """Return the products (bias, dark, flat) ``<instrument>/calib`` lacks now for some detector.

    Parameters
    ----------
    repo : `pathlib.Path` or `str`
        The repository.
    instrument : `str`
        Instrument name.
    detectors : `~collections.abc.Sequence` [`int`]
        Detector ids.
    physical_filter : `str` or None
        Filter of the flats; None accepts a flat of any filter.
    """
    chain = calib_chain(instrument)
    timespan = timespan_now()
    with Butler.from_config(str(repo)) as butler:
        if chain not in butler.collections.query(chain):
            return [product for product, _, _ in _PRODUCTS]
        return [
            product
            for product, _, _ in _PRODUCTS
            if missing_calibrations(
                butler, product, [chain], instrument, detectors, timespan, physical_filter=physical_filter
            )
        ]


def _detectors_text(ids: Sequence[int]) -> str:
    """``detector 0``, ``detectors 0-8`` (consecutive ids) or ``detectors 0, 4``."""
    if len(ids) == 1:
        return f"detector {ids[0]}"
    if list(ids) == list(range(ids[0], ids[0] + len(ids))):
        return f"detectors {ids[0]}-{ids[-1]}"
    return f"detectors {', '.join(map(str, ids))}"


class _Observatory:
    """Talk to the simulated camera, OODS and OCPS as a script would."""

    def __init__(self, domain: Domain, camera: str, oods: str, ocps_index: int) -> None:
        self.camera = Remote(domain, camera, include=["endReadout"])
        self.oods = Remote(domain, oods, readonly=True, include=["imageInOODS"])
        self.ocps = Remote(domain, "OCPS", ocps_index, include=["job_result"])
        self.ingested: dict[str, set[str]] = {}
        self.failed: dict[str, str] = {}
        self.results: dict[str, BaseMessage] = {}
        self._news = asyncio.Event()
        self.oods.evt_imageInOODS.callback = self._on_image_in_oods
        self.ocps.evt_job_result.callback = self._on_job_result

    def _on_image_in_oods(self, data: BaseMessage) -> None:
        if data.statusCode == 0:
            self.ingested.setdefault(data.obsid, set()).add(f"{data.raft}_{data.sensor}")
        else:
            self.failed[f"{data.obsid} {data.raft}_{data.sensor}"] = data.description
        self._news.set()

    def _on_job_result(self, data: BaseMessage) -> None:
        self.results[data.job_id] = data
        self._news.set()

    async def start(self) -> None:
        await asyncio.gather(self.camera.start_task, self.oods.start_task, self.ocps.start_task)

    async def close(self) -> None:
        await asyncio.gather(self.camera.close(), self.oods.close(), self.ocps.close())

    async def take(self, image_type: str, exposure_time: float, count: int, group: str) -> list[str]:
        """Take ``count`` images one at a time; return their obs ids."""
        names = []
        key_values = f"imageType: {image_type}, groupId: {group}, testType: {image_type}, program: BOOTSTRAP"
        for _ in range(count):
            self.camera.evt_endReadout.flush()
            await self.camera.cmd_takeImages.set_start(
                numImages=1,
                expTime=exposure_time,
                shutter=image_type == "FLAT",
                sensors="",
                keyValueMap=key_values,
                obsNote="reference calibrations of a new simulated repository",
                timeout=exposure_time + 120.0,
            )
            end = await self.camera.evt_endReadout.next(flush=False, timeout=60.0)
            names.append(str(end.imageName))
        return names

    async def wait_for_oods(self, names: Sequence[str], sensors: Sequence[str]) -> None:
        """Wait until the OODS has ingested every (image, sensor)."""
        wanted = set(sensors)
        async with asyncio.timeout(_OODS_TIMEOUT):
            while not all(wanted <= self.ingested.get(name, set()) for name in names):
                failed = [f"{key}: {why}" for key, why in self.failed.items() if key.split()[0] in names]
                if failed:
                    raise BootstrapError(f"the OODS failed to ingest {'; '.join(failed)}")
                self._news.clear()
                await self._news.wait()

    async def run_job(self, pipeline: str, config: str, data_query: str) -> tuple[str, dict[str, object]]:
        """Run one OCPS job to its end; return its id and result."""
        try:
            ack = await self.ocps.cmd_execute.set_start(
                pipeline=pipeline, config=config, data_query=data_query, timeout=_ACK_TIMEOUT, wait_done=False
            )
            job_id = str(json.loads(ack.result)["job_id"])
            # The OCPS completes execute once it has written the job's result.
            await self.ocps.cmd_execute.next_ackcmd(ack, timeout=_JOB_TIMEOUT)
        except AckError as e:
            raise BootstrapError(f"the OCPS refused or failed the {pipeline} job: {e}") from e
        while job_id not in self.results:
            self._news.clear()
            await asyncio.wait_for(self._news.wait(), _ACK_TIMEOUT)
        data = self.results[job_id]
        result = json.loads(data.result) if data.result else {}
        if data.exit_code != 0:
            raise BootstrapError(
                f"OCPS job {job_id} ({pipeline.rsplit('/', 1)[-1]}) failed with exit code {data.exit_code}: "
                f"{result.get('error') or 'no reason given'}"
            )
        return job_id, result


async def make_reference_calibrations(
    domain: Domain,
    *,
    instrument: str,
    repo: Path,
    camera: str,
    oods: str,
    ocps_index: int,
    detectors: Sequence[tuple[int, str]],
    physical_filter: str,
    plan: BootstrapPlan | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Give ``<instrument>/calib`` a certified bias, dark and flat, valid now, where it lacks them.

    The camera, OODS and OCPS must be running and ENABLED in ``domain``.

    Parameters
    ----------
    domain : `lsst.ts.calibscripts.sal.Domain`
        Domain of the simulated observatory.
    instrument : `str`
        Instrument name (``LATISS``, ``LSSTComCam``).
    repo : `pathlib.Path`
        The repository the OODS and OCPS use.
    camera, oods : `str`
        Names of the camera and OODS components (``ATCamera``, ``ATOODS``).
    ocps_index : `int`
        SAL index of the OCPS.
    detectors : `~collections.abc.Sequence` [`tuple` [`int`, `str`]]
        Every detector of the camera: (id, full name such as ``RXX_S00``).
    physical_filter : `str`
        Filter the flats are taken with (the one in the beam).
    plan : `BootstrapPlan`, optional
        How many images (default: `BootstrapPlan`'s few, for a quick start).
    progress : callable, optional
        Called with one line per step (default: logged at INFO).

    Returns
    -------
    made : `list` [`str`]
        The products made and certified (empty if none was missing).

    Raises
    ------
    BootstrapError
        If an image, an OCPS job or a certification fails; what was
        certified before stays certified, and the next bootstrap makes only
        what is still missing.
    """
    plan = plan or BootstrapPlan()
    say = progress or _log.info
    ids = [detector_id for detector_id, _ in detectors]
    missing = await asyncio.to_thread(missing_reference_types, repo, instrument, ids, physical_filter)
    chain, target = calib_chain(instrument), bootstrap_collection(instrument)
    if not missing:
        say(f"{chain} already has a bias, dark and flat valid now for every detector; nothing to bootstrap.")
        return []
    await asyncio.to_thread(ensure_calibration_chain, repo, instrument, with_bootstrap=True)
    say(
        f"Bootstrapping reference calibrations ({', '.join(missing)}) of {instrument} into {target}, "
        f"from simulated images processed by the cp pipelines ({_detectors_text(ids)}; "
        f"flats in {physical_filter})..."
    )
    t_start = time.monotonic()
    observatory = _Observatory(domain, camera, oods, ocps_index)
    await observatory.start()
    try:
        for number, (product, image_type, pipeline_name) in enumerate(
            (p for p in _PRODUCTS if p[0] in missing), start=1
        ):
            step = f"Bootstrap {number}/{len(missing)} ({product})"
            t_step = time.monotonic()
            count, exposure_time = plan.images(image_type)
            say(f"{step}: taking {count} + 1 discarded {image_type.lower()} images of {exposure_time:g} s...")
            try:
                names = await observatory.take(
                    image_type, exposure_time, count + 1, group=f"bootstrap-{product}"
                )
                kept = names[1:]
                await observatory.wait_for_oods(kept, [name for _, name in detectors])
            except BootstrapError as e:
                raise BootstrapError(f"{step}: {e}") from e
            except (AckError, TimeoutError) as e:
                raise BootstrapError(f"{step}: images could not be taken or ingested: {e!r}") from e
            exposures = [exposure_id_from_obs_id(name) for name in kept]
            say(f"{step}: images {exposures[0]}..{exposures[-1]} ingested; running {pipeline_name}...")
            # The chain, not the bootstrap collection alone: a dark needs the bias in use,
            # which may be a daily one if only the dark was missing.
            config = f"-j 1 -i {chain} --register-dataset-types -c isr:doDefect=False"
            query = (
                f"instrument='{instrument}' AND detector IN ({', '.join(map(str, ids))}) "
                f"AND exposure IN ({', '.join(map(str, exposures))})"
            )
            try:
                job_id, result = await observatory.run_job(
                    f"${{CP_PIPE_DIR}}/pipelines/{instrument}/{pipeline_name}.yaml", config, query
                )
            except BootstrapError as e:
                raise BootstrapError(f"{step}: {e}") from e
            output = str(result.get("outputCollection") or f"u/ocps/{job_id}")
            try:
                refs = await asyncio.to_thread(
                    certify_calibrations,
                    repo,
                    output,
                    target,
                    product,
                    begin_date=BOOTSTRAP_BEGIN_DATE,
                    end_date=BOOTSTRAP_END_DATE,
                )
            except CertificationError as e:
                raise BootstrapError(f"{step}: {e}") from e
            say(
                f"{step}: OCPS job {job_id} -> {output}; {len(refs)} {product} certified into {target} "
                f"for [{BOOTSTRAP_BEGIN_DATE}, {BOOTSTRAP_END_DATE}) ({time.monotonic() - t_step:.0f} s)"
            )
    finally:
        await observatory.close()
    say(
        f"Reference calibrations ready in {chain} ({', '.join(missing)}; {time.monotonic() - t_start:.0f} s)."
    )
    return missing
