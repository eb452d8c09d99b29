"""Simulated cameras: ATCamera (LATISS) and CCCamera (LSSTComCam)."""

from __future__ import annotations

__all__ = [
    "ATCameraCsc",
    "CCCameraCsc",
    "CameraFaults",
    "SimulatedCameraConfig",
    "SimulatedCameraCsc",
    "find_leftover_raws",
    "geometry_from_name",
    "parse_key_value_map",
]

import asyncio
import dataclasses
import datetime
import os
import time
from pathlib import Path

from astropy.time import Time

from ..cp.butler.raw_file import ObservationMetadata, write_raw
from ..cp.camera.description import InstrumentDescription, get_instrument_description
from ..cp.camera.geometry import DetectorGeometry, itl_geometry, make_itl_geometry, reduced_itl_geometry
from ..observations import IMAGE_TYPES, SHUTTER_CLOSED_IMAGE_TYPES, exposure_id_from_obs_id
from ..sal import BaseCsc, BaseMessage, Domain, ExpectedError, Remote, State
from ..sal.timestamps import current_tai
from .camera_model import CameraModel
from .image_names import ImageNameSource, raw_paths_in_repository, registry_exposure_ids

# The camera model knows the physics of these names; the others are illuminated frames.
_MODEL_TYPE = {"BIAS": "BIAS", "DARK": "DARK"}


def geometry_from_name(name: str) -> DetectorGeometry:
    """Return a detector geometry by name.

    Parameters
    ----------
    name : `str`
        ``full`` (ITL, 16 amps of 509 x 2000 data pixels), ``reduced``
        (16 amps of 64 x 100, for fast tests), or ``<nx>x<ny>`` data pixels
        per amp with the full ITL prescan and overscans (e.g. ``200x200``
        for tests that need more pixels, such as gains).

    Raises
    ------
    ValueError
        If the name is none of those.
    """
    if name == "full":
        return itl_geometry()
    if name == "reduced":
        return reduced_itl_geometry()
    nx, sep, ny = name.partition("x")
    if sep and nx.isdigit() and ny.isdigit() and int(nx) > 0 and int(ny) > 0:
        return make_itl_geometry(
            data_nx=int(nx), data_ny=int(ny), prescan=3, serial_overscan=64, parallel_overscan=48
        )
    raise ValueError(f"Unknown geometry {name!r}: use full, reduced or <nx>x<ny> (e.g. 200x200)")


def parse_key_value_map(text: str) -> dict[str, str]:
    """Parse a ``takeImages`` keyValueMap: ``"imageType: BIAS, groupId: ..."``.

    Values may contain colons (ISO times); each item is split at its first
    colon.

    Raises
    ------
    ExpectedError
        If an item has no colon.
    """
    result: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition(":")
        if not sep:
            raise ExpectedError(f"keyValueMap item {item.strip()!r} is not 'key: value'")
        result[key.strip()] = value.strip()
    return result


@dataclasses.dataclass
class CameraFaults:
    """Faults to inject, for tests; none by default.

    Attributes
    ----------
    fail_take_images : `set` [`int`]
        1-based numbers of ``takeImages`` commands (counted since start) that
        fail with an injected error before taking any image.
    """

    fail_take_images: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class SimulatedCameraConfig:
    """Configuration of a simulated camera.

    Attributes
    ----------
    data_dir : `pathlib.Path`
        Where raw files are written (``<data_dir>/<instrument>/<day_obs>/<image>/``);
        the simulated observatory puts it inside the repository
        (``<repo>/simulated-raw``). A file there is never overwritten.
    state_dir : `pathlib.Path`
        Where the image sequence is kept if ``repo`` is not a local
        repository (see `ImageNameSource`); with a local repository the
        sequence is kept in it.
    repo : `str`, `pathlib.Path` or `None`
        Butler repository the images are ingested into: sequence numbers
        are allocated per repository, and left-over raws are checked
        against it. `None` for a camera with no repository (names then
        only unique within ``state_dir``).
    time_scale : `float`
        Wall-clock seconds per observatory second: 1 is real time, 0.05 runs
        a 30 s dark in 1.5 s. Pixel simulation takes the time it takes.
    geometry : `str`
        Detector geometry: ``full``, ``reduced`` or ``<nx>x<ny>``
        (see `geometry_from_name`).
    seed : `int`
        Seed of the camera model.
    readout_time : `float`
        Read-out time (observatory seconds).
    flat_flux : `float`
        Illumination of flats at the detector centre with no filter, e-/s/pixel.
    idle_time : `float`
        After this long without an exposure (observatory seconds) the next
        frame carries the first-frame transient.
    """

    data_dir: Path
    state_dir: Path
    repo: str | Path | None = None
    time_scale: float = 1.0
    geometry: str = "full"
    seed: int = 1
    readout_time: float = 2.0
    flat_flux: float = 2000.0
    idle_time: float = 60.0

    def detector_geometry(self) -> DetectorGeometry:
        """Detector geometry to simulate."""
        return geometry_from_name(self.geometry)


# Relative throughput of filters for flats (a flat-field screen through the filter).
_BAND_THROUGHPUT = {"white": 1.0, "u": 0.3, "g": 0.8, "r": 0.9, "i": 0.85, "z": 0.7, "y": 0.5}


class SimulatedCameraCsc(BaseCsc):
    """A camera CSC that writes physically modelled raw files.

    ``takeImages`` takes ``numImages`` images one after the other. For each
    image: ``startIntegration``, the exposure, ``startReadout``, the read-out
    (pixels simulated and written meanwhile, one raw per detector),
    ``endReadout`` (with the keyValueMap echoed in additionalKeys /
    additionalValues), ``endOfImageTelemetry`` and one
    ``largeFileObjectAvailable`` per raw file. A ``takeImages`` while another
    is in progress is refused.

    Parameters
    ----------
    name : `str`
        ``ATCamera`` or ``CCCamera``.
    instrument : `str`
        Butler instrument name.
    config : `SimulatedCameraConfig`
        Camera configuration.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    def __init__(
        self,
        name: str,
        instrument: str,
        config: SimulatedCameraConfig,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        self.instrument: InstrumentDescription = get_instrument_description(instrument)
        self.camera_config = config
        self.faults = CameraFaults()
        geometry = config.detector_geometry()
        self.models = {
            det.full_name: CameraModel(det, geometry, seed=config.seed * 1000 + det.id)
            for det in self.instrument.detectors
        }
        self.names = ImageNameSource(self.instrument, repo=config.repo, state_dir=config.state_dir)
        self.filter = "empty"
        self.grating: str | None = "empty" if self.instrument.gratings else None
        self._take_images_count = 0
        self._busy = False
        self._last_readout_end = -float("inf")
        #: Wall-clock seconds spent simulating and writing pixels (for benchmarks).
        self.pixel_seconds = 0.0
        #: Raw files found at start that the repository lacks (see `find_leftover_raws`).
        self.leftover_raws: list[Path] = []
        super().__init__(name, initial_state=initial_state, domain=domain)
        # Concurrent callbacks, so a takeImages during an exposure is refused, not queued.
        self.cmd_takeImages.allow_multiple_callbacks = True

    async def start(self) -> None:
        """Start; report raws left over from an interrupted run (`leftover_raws`)."""
        await super().start()
        try:
            self.leftover_raws = await asyncio.to_thread(
                find_leftover_raws, self.camera_config.data_dir, self.instrument.name, self.camera_config.repo
            )
        except Exception as err:  # a report, not a reason to refuse to start
            self.log.warning("Could not check %s for left-over raws: %s", self.camera_config.data_dir, err)
            return
        if self.leftover_raws:
            self.log.warning("%s", self.describe_leftover_raws())

    def describe_leftover_raws(self) -> str:
        """Return a one-paragraph report of `leftover_raws` (empty if there are none)."""
        leftovers = self.leftover_raws
        if not leftovers:
            return ""
        shown = ", ".join(str(path) for path in leftovers[:5])
        more = f" and {len(leftovers) - 5} more" if len(leftovers) > 5 else ""
        return (
            f"{len(leftovers)} raw file(s) left over from an interrupted run are not in the repository "
            f"{self.camera_config.repo}: {shown}{more}. They are kept (never overwritten) and their "
            "sequence numbers are not reused; ingest complete ones with 'calibscripts repo ingest REPO "
            "FILE...', delete the others (*.partial files were cut short)."
        )

    def image_dir(self, day_obs: int, obs_id: str) -> Path:
        """Return the directory of one image's raw files.

        Parameters
        ----------
        day_obs : `int`
            Observing day ``YYYYMMDD``.
        obs_id : `str`
            Image name, e.g. ``AT_O_20220929_000001``.

        Returns
        -------
        directory : `pathlib.Path`
            ``<data_dir>/<instrument>/<day_obs>/<obs_id>``.
        """
        return self.camera_config.data_dir / self.instrument.name / str(day_obs) / obs_id

    def claim_image_name(self, when: datetime.datetime | None = None) -> tuple[str, int, int]:
        """Allocate the next image name whose raw directory is free, and claim it.

        The directory is created with an exclusive ``mkdir``; if it already
        exists (raws left over from an interrupted run, or a state file that
        went back), each file in it is reported with a WARNING that says
        whether it is in the repository, the files are left alone and the
        next sequence number is taken. Blocking: call it in a thread.

        Parameters
        ----------
        when : `datetime.datetime`, optional
            Time of the image; now by default.

        Returns
        -------
        image_name : `str`
            The image name (observation id).
        day_obs : `int`
            Observing day.
        seq_num : `int`
            Sequence number.

        Raises
        ------
        RuntimeError
            If 1000 sequence numbers in a row are taken by left-over raws.
        """
        for _ in range(1000):
            image_name, day_obs, seq_num = self.names.next(when)
            directory = self.image_dir(day_obs, image_name)
            directory.parent.mkdir(parents=True, exist_ok=True)
            try:
                directory.mkdir()
            except FileExistsError:
                self._report_leftover(directory, image_name)
                continue
            return image_name, day_obs, seq_num
        raise RuntimeError(
            f"1000 sequence numbers in a row up to {image_name} have raw files left over in "
            f"{self.camera_config.data_dir}; clean it up"
        )

    def _report_leftover(self, directory: Path, image_name: str) -> None:
        files = sorted(path for path in directory.iterdir() if path.is_file())
        in_repo: set[Path] = set()
        check = ""
        if self.camera_config.repo is not None:
            try:
                in_repo = raw_paths_in_repository(
                    self.camera_config.repo, self.instrument.name, exposure_id_from_obs_id(image_name)
                )
            except Exception as err:
                check = f" (could not check the repository: {err})"
        where = f"the repository {self.camera_config.repo}" if self.camera_config.repo else "a repository"
        if not files:
            self.log.warning(
                "Raw directory %s is left over from an earlier run (empty); %s is skipped and the next "
                "sequence number taken%s",
                directory,
                image_name,
                check,
            )
        for path in files:
            status = "is in" if path.resolve() in in_repo else "is NOT in"
            self.log.warning(
                "Raw file %s is left over from an earlier run and %s %s; it is kept, never overwritten: "
                "%s is skipped and the next sequence number taken%s",
                path,
                status,
                where,
                image_name,
                check,
            )

    @property
    def detector_names(self) -> list[str]:
        """Full names of all detectors, in id order."""
        return [d.full_name for d in self.instrument.detectors]

    def _sensors(self, text: str) -> list[str]:
        if not text.strip():
            return self.detector_names
        wanted = [s.strip() for s in text.split(":") if s.strip()]
        unknown = [s for s in wanted if s not in self.models]
        if unknown:
            raise ExpectedError(f"Unknown sensors {unknown}; {self.salinfo.name} has {self.detector_names}")
        return wanted

    def _current_filter(self) -> tuple[str, str | None]:
        """Filter and grating in the beam (subclasses may ask other components)."""
        return self.filter, self.grating

    async def do_takeImages(self, data: BaseMessage) -> None:
        """Take ``numImages`` images; see the class description."""
        self.assert_enabled("takeImages")
        if self._busy:
            raise ExpectedError("Cannot take images: an exposure is already in progress")
        self._take_images_count += 1
        if self._take_images_count in self.faults.fail_take_images:
            raise ExpectedError(f"Injected fault: takeImages number {self._take_images_count} fails")
        if data.numImages < 1:
            raise ExpectedError(f"numImages must be >= 1, got {data.numImages}")
        if data.expTime < 0:
            raise ExpectedError(f"expTime must be >= 0, got {data.expTime}")
        key_values = parse_key_value_map(data.keyValueMap)
        image_type = key_values.get("imageType", "ENGTEST").upper()
        if image_type not in IMAGE_TYPES:
            raise ExpectedError(f"Unknown imageType {image_type!r}; known: {sorted(IMAGE_TYPES)}")
        if image_type == "BIAS" and data.expTime != 0:
            raise ExpectedError(f"A BIAS must have expTime 0, got {data.expTime}")
        if data.shutter and image_type in SHUTTER_CLOSED_IMAGE_TYPES:
            raise ExpectedError(f"A {image_type} is taken with the shutter closed")
        sensors = self._sensors(data.sensors)
        scale = self.camera_config.time_scale
        per_image = (data.expTime + self.camera_config.readout_time) * scale
        self._busy = True
        try:
            # Pixel simulation is not scaled with time: allow for it generously.
            await self.cmd_takeImages.ack_in_progress(
                data, timeout=data.numImages * (per_image + 10.0 * len(sensors) + 30.0)
            )
            for index in range(1, data.numImages + 1):
                await self._take_one(data, index, image_type, key_values, sensors)
        finally:
            self._busy = False

    async def _take_one(
        self,
        data: BaseMessage,
        index: int,
        image_type: str,
        key_values: dict[str, str],
        sensors: list[str],
    ) -> None:
        cfg = self.camera_config
        scale = cfg.time_scale
        now = datetime.datetime.now(datetime.UTC)
        image_name, day_obs, seq_num = await asyncio.to_thread(self.claim_image_name, now)
        first_after_idle = (time.monotonic() - self._last_readout_end) / max(scale, 1e-9) > cfg.idle_time
        image_fields = dict(
            additionalKeys=":".join(key_values),
            additionalValues=":".join(key_values.values()),
            imagesInSequence=data.numImages,
            imageName=image_name,
            imageIndex=index,
            imageSource=self.instrument.obs_id_prefix,
            imageController="O",
            imageDate=str(day_obs),
            imageNumber=seq_num,
            exposureTime=data.expTime,
            mode="NORMAL",
        )
        t_start = current_tai()
        await self.evt_startIntegration.set_write(
            force_output=True, timestampAcquisitionStart=t_start, timeout=data.expTime + 30, **image_fields
        )
        await asyncio.sleep(data.expTime * scale)
        t_end = current_tai()
        await self.evt_startReadout.set_write(
            force_output=True, timestampStartOfReadout=t_end, **image_fields
        )
        filter_name, grating = self._current_filter()
        metadata = ObservationMetadata(
            instrument=self.instrument.name,
            obs_id=image_name,
            day_obs=day_obs,
            seq_num=seq_num,
            img_type=image_type,
            exposure_time=data.expTime,
            dark_time=data.expTime,
            date_obs=Time(t_start, format="unix_tai"),
            date_end=Time(t_start + data.expTime, format="unix_tai"),
            filter=filter_name,
            grating=grating,
            group_id=key_values.get("groupId", ""),
            reason=key_values.get("reason", ""),
            program=key_values.get("program", ""),
            test_type=key_values.get("testType", image_type),
            obs_note=data.obsNote,
            telescope="LATISS" if self.instrument.name == "LATISS" else "Simonyi",
        )
        flux = 0.0
        if image_type not in _MODEL_TYPE:
            flux = cfg.flat_flux * _BAND_THROUGHPUT.get(self.instrument.band(filter_name), 0.5)
            if grating not in (None, "empty"):
                flux *= 0.3
        paths = await asyncio.gather(
            asyncio.to_thread(
                self._write_raws,
                metadata,
                sensors,
                _MODEL_TYPE.get(image_type, "FLAT"),
                flux,
                first_after_idle,
            ),
            asyncio.sleep(cfg.readout_time * scale),
        )
        self._last_readout_end = time.monotonic()
        await self.evt_endReadout.set_write(
            force_output=True,
            requestedExposureTime=data.expTime,
            timestampEndOfReadout=current_tai(),
            **image_fields,
        )
        await self.evt_endOfImageTelemetry.set_write(
            force_output=True,
            timestampDateObs=t_start,
            timestampDateEnd=t_start + data.expTime,
            measuredExposureTime=data.expTime,
            darkTime=data.expTime,
            **image_fields,
        )
        for path in paths[0]:
            await self.evt_largeFileObjectAvailable.set_write(
                force_output=True,
                byteSize=path.stat().st_size,
                checkSum="",
                generator=self.salinfo.name,
                mimeType="image/fits",
                url=path.as_uri(),
                version=1.0,
                id=image_name,
            )

    def _write_raws(
        self, metadata: ObservationMetadata, sensors: list[str], model_type: str, flux: float, first: bool
    ) -> list[Path]:
        t0 = time.perf_counter()
        # Claimed (created empty, exclusively) by claim_image_name.
        directory = self.image_dir(metadata.day_obs, metadata.obs_id)
        paths = []
        for sensor in sensors:
            model = self.models[sensor]
            amps = model.expose(model_type, metadata.exposure_time, flux=flux, first_after_idle=first)
            path = directory / f"{metadata.obs_id}_{sensor}.fits"
            # Written under a temporary name, then published with a hard link, which fails if
            # the name exists: a raw is never overwritten, and never seen half-written.
            partial = directory / f".{path.name}.partial"
            write_raw(partial, metadata, model.detector, model.geometry, amps, overwrite=True)
            try:
                _publish_new_file(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            paths.append(path)
        self.pixel_seconds += time.perf_counter() - t0
        return paths


def _publish_new_file(source: Path, target: Path) -> None:
    """Give ``source`` the name ``target``, which must not exist.

    Raises
    ------
    FileExistsError
        If ``target`` exists; it is left untouched.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(f"Refusing to overwrite the existing raw file {target}") from None
    except OSError:
        # A file system without hard links: exclusive create and copy.
        with open(source, "rb") as src, open(target, "xb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)


def find_leftover_raws(data_dir: Path, instrument: str, repo: str | Path | None) -> list[Path]:
    """Return raw files that a simulated camera wrote but the repository lacks.

    Such files are left by an interrupted run (killed between writing an
    image and its ingest, or during the write: ``.*.partial`` files). The
    check is cheap: one registry query for the instrument's exposure ids and
    a listing of ``<data_dir>/<instrument>/<day_obs>/<obs_id>/``. An image
    whose exposure is in the registry is taken as ingested.

    Parameters
    ----------
    data_dir : `pathlib.Path`
        The camera's raw directory.
    instrument : `str`
        Butler instrument name.
    repo : `str`, `pathlib.Path` or `None`
        The repository; with `None` only partial files are reported.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The left-over files, sorted.
    """
    top = Path(data_dir) / instrument
    if not top.is_dir():
        return []
    known = registry_exposure_ids(repo, instrument) if repo is not None else None
    leftovers: list[Path] = []
    for day_dir in top.iterdir():
        if not day_dir.is_dir():
            continue
        for image_dir in day_dir.iterdir():
            if not image_dir.is_dir():
                continue
            try:
                exposure: int | None = exposure_id_from_obs_id(image_dir.name)
            except ValueError:
                exposure = None
            for path in image_dir.iterdir():
                partial = path.name.endswith(".partial")
                if partial or (known is not None and exposure is not None and exposure not in known):
                    leftovers.append(path)
    return sorted(leftovers)


class ATCameraCsc(SimulatedCameraCsc):
    """The simulated LATISS camera.

    The filter and grating in the headers are those the ATSpectrograph
    reports (read through a Remote, as the header service does).

    Parameters
    ----------
    config : `SimulatedCameraConfig`
        Camera configuration.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    def __init__(
        self,
        config: SimulatedCameraConfig,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        super().__init__("ATCamera", "LATISS", config, initial_state=initial_state, domain=domain)
        self.spectrograph = Remote(
            self.domain,
            "ATSpectrograph",
            readonly=True,
            include=["reportedFilterPosition", "reportedDisperserPosition"],
        )

    def _current_filter(self) -> tuple[str, str | None]:
        filter_data = self.spectrograph.evt_reportedFilterPosition.get()
        grating_data = self.spectrograph.evt_reportedDisperserPosition.get()
        return (
            filter_data.name if filter_data is not None else self.filter,
            grating_data.name if grating_data is not None else self.grating,
        )

    async def close_tasks(self) -> None:
        """Close the spectrograph remote too."""
        await self.spectrograph.close()
        await super().close_tasks()


class CCCameraCsc(SimulatedCameraCsc):
    """The simulated LSSTComCam camera (nine detectors, own filter changer).

    Parameters
    ----------
    config : `SimulatedCameraConfig`
        Camera configuration.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    #: Time to change filters (observatory seconds).
    filter_change_time = 10.0

    def __init__(
        self,
        config: SimulatedCameraConfig,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        super().__init__("CCCamera", "LSSTComCam", config, initial_state=initial_state, domain=domain)
        self.filter = self.instrument.filters[0].name

    async def start(self) -> None:
        """Report the filter in the beam."""
        await super().start()
        await self.evt_endSetFilter.set_write(
            filterName=self.filter, filterType=self.instrument.band(self.filter)
        )

    async def do_setFilter(self, data: BaseMessage) -> None:
        """Change the filter; ``endSetFilter`` reports the new one."""
        self.assert_enabled("setFilter")
        if self._busy:
            raise ExpectedError("Cannot change filter during an exposure")
        names = [f.name for f in self.instrument.filters]
        if data.name not in names:
            raise ExpectedError(f"Unknown filter {data.name!r}; valid filters: {', '.join(names)}")
        band = self.instrument.band(data.name)
        await self.evt_startSetFilter.set_write(force_output=True, filterName=data.name, filterType=band)
        await asyncio.sleep(self.filter_change_time * self.camera_config.time_scale)
        self.filter = data.name
        await self.evt_endSetFilter.set_write(
            force_output=True, filterName=data.name, filterType=band, filterSlot=names.index(data.name)
        )
