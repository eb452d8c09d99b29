"""The simulated observatory of one instrument, started in one process."""

from __future__ import annotations

__all__ = [
    "BOOTSTRAP_ENV_VAR",
    "DEFAULT_VAR_DIR",
    "INSTRUMENTS",
    "RAW_DIR_NAME",
    "SCRATCH_DIR_NAME",
    "BootstrapError",
    "ObservatoryConfig",
    "SimulatedObservatory",
    "bootstrap_collection",
    "ensure_calibration_chain",
    "serve",
]

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..cp.butler.repository import ensure_repository
from ..resources import project_var_dir
from ..sal import BaseCsc, Domain, State
from .camera_csc import (
    ATCameraCsc,
    CCCameraCsc,
    SimulatedCameraConfig,
    SimulatedCameraCsc,
    geometry_from_name,
)
from .executors.settings import ExecutorSettings
from .header_service_csc import HeaderServiceCsc
from .image_names import STATE_DIR_NAME, file_lock
from .oods_csc import OodsCsc
from .reference_calibrations import (
    BootstrapError,
    BootstrapPlan,
    bootstrap_collection,
    ensure_calibration_chain,
    make_reference_calibrations,
)
from .spectrograph_csc import ATSpectrographCsc

#: Embedded default location of repositories and header files (raws and OCPS job scratch live in
#: each repository, under RAW_DIR_NAME and SCRATCH_DIR_NAME).
DEFAULT_VAR_DIR = project_var_dir()

#: Directory, inside the repository, where the simulated camera writes its raws.
RAW_DIR_NAME = "simulated-raw"

#: Directory, inside the repository, that plays the OCPS's ``/scratch`` (``uws/<jobId>/outs/ocps.log``).
SCRATCH_DIR_NAME = "simulated-scratch"

#: Environment variable: ``0`` (or ``false``, ``no``, ``off``) leaves new repositories without
#: reference calibrations, unless ``ObservatoryConfig.bootstrap`` asks for them.
BOOTSTRAP_ENV_VAR = "CALIBSCRIPTS_BOOTSTRAP"

#: Component names and OCPS index per instrument.
INSTRUMENTS: dict[str, dict[str, Any]] = {
    "LATISS": {"prefix": "AT", "ocps_index": 1},
    "LSSTComCam": {"prefix": "CC", "ocps_index": 2},
}

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class ObservatoryConfig:
    """How to run the simulated observatory.

    Attributes
    ----------
    instrument : `str`
        ``LATISS`` or ``LSSTComCam``.
    repo : `pathlib.Path`, optional
        Butler repository; default ``<var_dir>/repo/<instrument>``. Created
        (SQLite) and populated with the instrument on first use. Its
        sequence numbers are kept in it (``<repo>/.calibscripts/``), so
        runs from any var dir never reuse an exposure id.
    raw_dir : `pathlib.Path`, optional
        Where the camera writes raw files; default ``<repo>/simulated-raw``,
        so that the repository holds its raws and does not depend on the
        var dir. Files under the repository are ingested in place (by a
        path relative to the repository); files elsewhere by absolute path.
    scratch_dir : `pathlib.Path`, optional
        The OCPS's scratch space (job logs in ``uws/<jobId>/outs/ocps.log``);
        default ``<repo>/simulated-scratch``, so that a repository keeps
        its job logs wherever it is and whatever happens to the var dir.
    var_dir : `pathlib.Path`
        Root of what the observatory writes outside the repository
        (header files); also holds the default repository.
    time_scale : `float`
        Wall-clock seconds per observatory second.
    geometry : `str`
        Detector geometry: ``full`` (default), ``reduced`` (fast tests) or
        ``<nx>x<ny>`` data pixels per amp.
    seed : `int`
        Seed of the camera model.
    db : `str`, optional
        Registry database URL if the repository must be created
        (PostgreSQL); SQLite by default.
    with_ocps : `bool`
        Start the OCPS too.
    bootstrap : `bool` or None
        Reference calibrations (see
        `~lsst.ts.calibscripts.simulator.reference_calibrations`): None (the
        default) makes them when this observatory creates the repository,
        unless ``$CALIBSCRIPTS_BOOTSTRAP`` is ``0``; True makes whatever
        ``<instrument>/calib`` lacks now (nothing if it has a valid set);
        False never makes them. Needs the OCPS.
    bootstrap_plan : `BootstrapPlan`
        How many images the reference calibrations are made of.
    ocps_executor : `~lsst.ts.calibscripts.simulator.executors.settings.ExecutorSettings`
        How the OCPS runs jobs: ``pipetask run`` (the default) or bps with
        the Parsl plugin (see ``doc/scaling-out.rst``).
    """

    instrument: str = "LATISS"
    repo: Path | None = None
    raw_dir: Path | None = None
    var_dir: Path = DEFAULT_VAR_DIR
    time_scale: float = 1.0
    geometry: str = "full"
    seed: int = 1
    db: str | None = None
    with_ocps: bool = True
    scratch_dir: Path | None = None
    bootstrap: bool | None = None
    bootstrap_plan: BootstrapPlan = dataclasses.field(default_factory=BootstrapPlan)
    ocps_executor: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)

    def __post_init__(self) -> None:
        if self.instrument not in INSTRUMENTS:
            raise ValueError(f"Unknown instrument {self.instrument!r}; use one of {', '.join(INSTRUMENTS)}")
        geometry_from_name(self.geometry)  # fail now, not when the camera starts
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        self.var_dir = Path(self.var_dir).expanduser().resolve()
        if self.repo is None:
            self.repo = self.var_dir / "repo" / self.instrument
        self.repo = Path(self.repo).expanduser().resolve()
        if self.raw_dir is not None:
            self.raw_dir = Path(self.raw_dir).expanduser().resolve()
        if self.scratch_dir is not None:
            self.scratch_dir = Path(self.scratch_dir).expanduser().resolve()
        if self.bootstrap and not self.with_ocps:
            raise ValueError(
                "bootstrap needs the OCPS (with_ocps=True): the reference set is made by pipelines"
            )

    @property
    def repo_path(self) -> Path:
        """The repository path (always set after construction)."""
        assert self.repo is not None
        return Path(self.repo).expanduser().resolve()

    @property
    def raw_path(self) -> Path:
        """Where the camera writes raws: ``raw_dir``, else ``<repo>/simulated-raw``.

        Derived when asked, so that it follows a ``repo`` set after
        construction.
        """
        if self.raw_dir is not None:
            return Path(self.raw_dir).expanduser().resolve()
        return self.repo_path / RAW_DIR_NAME

    @property
    def scratch_path(self) -> Path:
        """The OCPS's scratch: ``scratch_dir``, else ``<repo>/simulated-scratch``.

        Derived when asked, as `raw_path`.
        """
        if self.scratch_dir is not None:
            return Path(self.scratch_dir).expanduser().resolve()
        return self.repo_path / SCRATCH_DIR_NAME

    def job_log_pattern(self) -> str:
        """Where the OCPS's job logs go, for people: ``<scratch>/uws/<jobId>/outs/ocps.log``."""
        return f"{self.scratch_path}/uws/<jobId>/outs/ocps.log"

    def wants_bootstrap(self, created: bool) -> bool:
        """Tell whether the observatory makes reference calibrations at start.

        Parameters
        ----------
        created : `bool`
            Did this observatory just create the repository?
        """
        if self.bootstrap is not None:
            return self.bootstrap
        switch = os.environ.get(BOOTSTRAP_ENV_VAR, "").strip().lower()
        return created and self.with_ocps and switch not in ("0", "false", "no", "off")


class SimulatedObservatory:
    """Start the components of one instrument, ENABLED, in this process.

    LATISS: ATCamera, ATSpectrograph, ATHeaderService, ATOODS, OCPS:1.
    LSSTComCam: CCCamera, CCHeaderService, CCOODS, OCPS:2.

    Use as an async context manager::

        async with SimulatedObservatory(ObservatoryConfig("LATISS")) as observatory:
            ...  # scripts talk to the components through the same transport

    A repository it creates gets reference calibrations (a certified bias,
    dark and flat in ``<instrument>/calib``, made by the pipelines from
    simulated images) before `start` returns, as a real observatory's
    repository has them; see `ObservatoryConfig.bootstrap`.

    Parameters
    ----------
    config : `ObservatoryConfig`
        What to run.
    domain : `Domain`, optional
        Domain (transport) to use; one is created if not given.
    progress : callable, optional
        Called with one line per step of a bootstrap (default: logged at INFO);
        command-line tools pass `print`.

    Attributes
    ----------
    bootstrapped : `list` [`str`]
        The reference calibrations made at start (``bias``, ``dark``, ``flat``).
    """

    def __init__(
        self,
        config: ObservatoryConfig,
        domain: Domain | None = None,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.domain = domain if domain is not None else Domain()
        self.components: dict[str, BaseCsc] = {}
        self.progress = progress
        self.bootstrapped: list[str] = []

    @property
    def camera(self) -> SimulatedCameraCsc:
        """The camera CSC."""
        name = f"{INSTRUMENTS[self.config.instrument]['prefix']}Camera"
        camera = self.components[name]
        assert isinstance(camera, SimulatedCameraCsc)
        return camera

    @property
    def oods(self) -> OodsCsc:
        """The OODS CSC."""
        oods = self.components[f"{INSTRUMENTS[self.config.instrument]['prefix']}OODS"]
        assert isinstance(oods, OodsCsc)
        return oods

    @property
    def ocps(self) -> BaseCsc:
        """The OCPS CSC."""
        return self.components["OCPS"]

    def physical_filter(self) -> str:
        """Return the physical filter in the beam now (what a flat would be taken with)."""
        camera = self.camera
        spectrograph = self.components.get("ATSpectrograph")
        if isinstance(spectrograph, ATSpectrographCsc):
            return camera.instrument.physical_filter(spectrograph.filter, spectrograph.grating)
        return camera.instrument.physical_filter(camera.filter, camera.grating)

    async def start(self) -> None:
        """Create the repository if needed, start every component, bootstrap if asked.

        Raises
        ------
        BootstrapError
            If reference calibrations were explicitly asked for
            (``bootstrap=True``) and could not be made; the components are
            stopped. A failed bootstrap of a new repository is only
            reported: the observatory runs, and a later ``--bootstrap``
            makes what is missing.
        """
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        cfg = self.config
        repo, created = await asyncio.to_thread(_prepare_repository, cfg)
        prefix = INSTRUMENTS[cfg.instrument]["prefix"]
        camera_config = SimulatedCameraConfig(
            data_dir=cfg.raw_path,
            state_dir=cfg.var_dir / "state",
            repo=repo,
            time_scale=cfg.time_scale,
            geometry=cfg.geometry,
            seed=cfg.seed,
        )
        enabled = State.ENABLED
        if cfg.instrument == "LATISS":
            self.components["ATSpectrograph"] = ATSpectrographCsc(
                time_scale=cfg.time_scale, initial_state=enabled, domain=self.domain
            )
            self.components["ATCamera"] = ATCameraCsc(
                camera_config, initial_state=enabled, domain=self.domain
            )
        else:
            self.components["CCCamera"] = CCCameraCsc(
                camera_config, initial_state=enabled, domain=self.domain
            )
        camera = f"{prefix}Camera"
        self.components[f"{prefix}HeaderService"] = HeaderServiceCsc(
            f"{prefix}HeaderService",
            camera,
            cfg.var_dir / "headers",
            initial_state=enabled,
            domain=self.domain,
        )
        self.components[f"{prefix}OODS"] = OodsCsc(
            f"{prefix}OODS", camera, cfg.instrument, repo, initial_state=enabled, domain=self.domain
        )
        if cfg.with_ocps:
            # Imported here: the OCPS pulls in job management that camera-only users do not need.
            ocps_module = importlib.import_module(".ocps", __package__)
            self.components["OCPS"] = ocps_module.OcpsCsc(
                INSTRUMENTS[cfg.instrument]["ocps_index"],
                repo=repo,
                scratch_dir=cfg.scratch_path,
                executor=cfg.ocps_executor.make_executor(),
                initial_state=enabled,
                domain=self.domain,
            )
        for component in self.components.values():
            await component.start_task
        _log.info("Simulated %s observatory started; repository %s", cfg.instrument, repo)
        if self.camera.leftover_raws:
            # Also here, for whoever runs the observatory (the camera's own log goes to logMessage).
            _log.warning("%s", self.camera.describe_leftover_raws())
        if cfg.wants_bootstrap(created):
            await self._bootstrap(repo, explicit=cfg.bootstrap is True)

    async def _bootstrap(self, repo: Path, *, explicit: bool) -> None:
        cfg = self.config
        prefix = INSTRUMENTS[cfg.instrument]["prefix"]
        say = self.progress or _log.info
        try:
            self.bootstrapped = await make_reference_calibrations(
                self.domain,
                instrument=cfg.instrument,
                repo=repo,
                camera=f"{prefix}Camera",
                oods=f"{prefix}OODS",
                ocps_index=INSTRUMENTS[cfg.instrument]["ocps_index"],
                detectors=[(d.id, d.full_name) for d in self.camera.instrument.detectors],
                physical_filter=self.physical_filter(),
                plan=cfg.bootstrap_plan,
                progress=say,
            )
        except BootstrapError as e:
            if explicit:
                raise
            # A new repository stays usable without them: scripts that need them say so
            # before their first image.
            say(
                f"Reference calibrations NOT made: {e}. {bootstrap_collection(cfg.instrument)} is "
                "incomplete; bootstrap again with 'calibscripts sim ... --bootstrap' or "
                "'run_script --simulate --bootstrap'."
            )
            _log.error("Bootstrap of %s failed: %s", repo, e)

    async def close(self) -> None:
        """Stop every component."""
        for component in reversed(list(self.components.values())):
            await component.close()

    async def __aenter__(self) -> SimulatedObservatory:
        await self.start()
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _prepare_repository(cfg: ObservatoryConfig) -> tuple[Path, bool]:
    """Create or open the repository; return it and whether it was created now."""
    # Two observatories starting at once on a new repository must not both create it: one
    # would fail, and its clean-up would remove the other's butler.yaml.
    with file_lock(cfg.repo_path / STATE_DIR_NAME / "repository.lock"):
        created = not (cfg.repo_path / "butler.yaml").exists()
        repo = ensure_repository(cfg.repo_path, [cfg.instrument], db=cfg.db)
        # A new repository's chain includes the (empty) bootstrap collection from the start;
        # an older one gets it when it is bootstrapped.
        ensure_calibration_chain(repo, cfg.instrument, with_bootstrap=created)
    return repo, created


async def serve(config: ObservatoryConfig) -> None:
    """Run the simulated observatory until SIGINT or SIGTERM.

    Prints the progress of a bootstrap, then the components, the repository
    and the collections, so that a script in another process (over a
    networked transport) or a person can use them.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with SimulatedObservatory(config, progress=_print_progress) as observatory:
        components = ", ".join(c.salinfo.name_index for c in observatory.components.values())
        print(f"Simulated {config.instrument} observatory running: {components}", flush=True)
        print(f"Butler repository: {config.repo_path}", flush=True)
        print(f"Raw files: {config.raw_path / config.instrument}/<day_obs>/<obs_id>/", flush=True)
        print(
            f"Raws are ingested into {config.instrument}/raw/all; OCPS jobs write u/ocps/<jobId>", flush=True
        )
        print(
            f"Calibrations: {config.instrument}/calib (chain over {config.instrument}/calib/daily, "
            f"{bootstrap_collection(config.instrument)})",
            flush=True,
        )
        print(f"Job logs: {config.job_log_pattern()}", flush=True)
        if config.with_ocps:
            print(f"OCPS jobs run with: {config.ocps_executor.describe()}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()


def _print_progress(line: str) -> None:
    print(line, flush=True)
