"""The simulated observatory of one instrument, started in one process."""

from __future__ import annotations

__all__ = [
    "DEFAULT_VAR_DIR",
    "INSTRUMENTS",
    "RAW_DIR_NAME",
    "ObservatoryConfig",
    "SimulatedObservatory",
    "ensure_calibration_chain",
    "serve",
]

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import signal
from pathlib import Path
from types import TracebackType
from typing import Any

from lsst.daf.butler import Butler, CollectionType

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
from .header_service_csc import HeaderServiceCsc
from .image_names import STATE_DIR_NAME, file_lock
from .oods_csc import OodsCsc
from .spectrograph_csc import ATSpectrographCsc

#: Embedded default location of repositories, header files and job scratch space (raws live in
#: each repository, under RAW_DIR_NAME).
DEFAULT_VAR_DIR = project_var_dir()

#: Directory, inside the repository, where the simulated camera writes its raws.
RAW_DIR_NAME = "simulated-raw"

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
    var_dir : `pathlib.Path`
        Root of what the observatory writes outside the repository
        (header files, OCPS job scratch).
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


class SimulatedObservatory:
    """Start the components of one instrument, ENABLED, in this process.

    LATISS: ATCamera, ATSpectrograph, ATHeaderService, ATOODS, OCPS:1.
    LSSTComCam: CCCamera, CCHeaderService, CCOODS, OCPS:2.

    Use as an async context manager::

        async with SimulatedObservatory(ObservatoryConfig("LATISS")) as observatory:
            ...  # scripts talk to the components through the same transport

    Parameters
    ----------
    config : `ObservatoryConfig`
        What to run.
    domain : `Domain`, optional
        Domain (transport) to use; one is created if not given.
    """

    def __init__(self, config: ObservatoryConfig, domain: Domain | None = None) -> None:
        self.config = config
        self.domain = domain if domain is not None else Domain()
        self.components: dict[str, BaseCsc] = {}

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

    async def start(self) -> None:
        """Create the repository if needed and start every component."""
        cfg = self.config
        repo = await asyncio.to_thread(_prepare_repository, cfg)
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
                scratch_dir=cfg.var_dir / "scratch",
                initial_state=enabled,
                domain=self.domain,
            )
        for component in self.components.values():
            await component.start_task
        _log.info("Simulated %s observatory started; repository %s", cfg.instrument, repo)
        if self.camera.leftover_raws:
            # Also here, for whoever runs the observatory (the camera's own log goes to logMessage).
            _log.warning("%s", self.camera.describe_leftover_raws())

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


def _prepare_repository(cfg: ObservatoryConfig) -> Path:
    # Two observatories starting at once on a new repository must not both create it: one
    # would fail, and its clean-up would remove the other's butler.yaml.
    with file_lock(cfg.repo_path / STATE_DIR_NAME / "repository.lock"):
        repo = ensure_repository(cfg.repo_path, [cfg.instrument], db=cfg.db)
        ensure_calibration_chain(repo, cfg.instrument)
    return repo


def ensure_calibration_chain(repo: Path, instrument: str) -> None:
    """Make ``<instrument>/calib`` a chain over ``<instrument>/calib/daily``, if missing.

    The scripts' default input collections are ``<instrument>/calib``; at
    the summit that chain holds the calibrations in use. Here it starts as
    a chain over the (empty) daily CALIBRATION collection, so that
    calibrations certified into ``<instrument>/calib/daily`` are used by
    later runs (external verification, dark and flat generation).
    """
    chain, daily = f"{instrument}/calib", f"{instrument}/calib/daily"
    with Butler.from_config(str(repo), writeable=True) as butler:
        if butler.collections.register(daily, CollectionType.CALIBRATION):
            _log.info("Created CALIBRATION collection %s", daily)
        if butler.collections.register(chain, CollectionType.CHAINED):
            butler.collections.redefine_chain(chain, [daily])
            _log.info("Created CHAINED collection %s -> %s", chain, daily)


async def serve(config: ObservatoryConfig) -> None:
    """Run the simulated observatory until SIGINT or SIGTERM.

    Prints the components, the repository and the collections, so that a
    script in another process (over a networked transport) or a person can
    use them.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with SimulatedObservatory(config) as observatory:
        components = ", ".join(c.salinfo.name_index for c in observatory.components.values())
        print(f"Simulated {config.instrument} observatory running: {components}", flush=True)
        print(f"Butler repository: {config.repo_path}", flush=True)
        print(f"Raw files: {config.raw_path / config.instrument}/<day_obs>/<obs_id>/", flush=True)
        print(
            f"Raws are ingested into {config.instrument}/raw/all; OCPS jobs write u/ocps/<jobId>", flush=True
        )
        print(f"Job logs: {config.var_dir / 'scratch'}/uws/<jobId>/outs/ocps.log", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()
