"""Simulated raw exposures for the Butler tests: the camera model, written to disk.

A `SimulatedNight` plays the camera and its header service for one
instrument: it takes exposures with `lsst.ts.calibscripts.simulator.camera_model`
(one seeded model per detector) and writes one raw file per exposure and
detector with `lsst.ts.calibscripts.cp.butler.raw_file.write_raw`, with Rubin
observation ids, consecutive sequence numbers and a clock that advances by
exposure time plus read-out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import astropy.units as u
from astropy.time import Time

from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, write_raw
from lsst.ts.calibscripts.cp.camera.description import InstrumentDescription
from lsst.ts.calibscripts.cp.camera.geometry import DetectorGeometry
from lsst.ts.calibscripts.simulator.camera_model import CameraModel

READOUT_SECONDS = 2.0


@dataclasses.dataclass
class Exposure:
    """One exposure taken: its id, type, times and files by detector id."""

    exposure_id: int
    image_type: str
    exposure_time: float
    files: dict[int, Path]


class SimulatedNight:
    """Take simulated exposures of one instrument and write their raws.

    Parameters
    ----------
    directory
        Where raw files are written.
    instrument
        Camera description.
    geometry
        Pixel geometry of every detector.
    day_obs
        Observing day; the clock starts at 20:00 TAI on that date.
    seed
        Seed of the camera models (detector ``d`` uses ``seed + d``).
    detectors
        Detector ids to simulate (default: all of the instrument's).
    """

    def __init__(
        self,
        directory: Path,
        instrument: InstrumentDescription,
        geometry: DetectorGeometry,
        *,
        day_obs: int = 20220929,
        seed: int = 11,
        detectors: Sequence[int] | None = None,
    ) -> None:
        self.directory = directory
        self.instrument = instrument
        self.geometry = geometry
        self.day_obs = day_obs
        ids = [d.id for d in instrument.detectors] if detectors is None else list(detectors)
        self.models = {d: CameraModel(instrument.detector(d), geometry, seed=seed + d) for d in ids}
        text = f"{day_obs:08d}"
        self.clock = Time(f"{text[:4]}-{text[4:6]}-{text[6:]}T20:00:00", scale="tai")
        self.seq_num = 0
        self.exposures: list[Exposure] = []
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def files(self) -> list[Path]:
        """Every raw file written so far."""
        return [path for exposure in self.exposures for path in exposure.files.values()]

    def take(
        self,
        image_type: str,
        exposure_times: Sequence[float],
        *,
        flux: float = 0.0,
        detector_flux_scale: dict[int, float] | None = None,
        filter: str = "empty",
        grating: str | None = "empty",
    ) -> list[int]:
        """Take one exposure per exposure time; return their exposure ids.

        Parameters
        ----------
        image_type
            ``BIAS``, ``DARK`` or ``FLAT``.
        exposure_times
            Exposure time of each exposure (s).
        flux
            Illumination at a detector's centre (e-/s/pixel), flats only.
        detector_flux_scale
            Factor applied to ``flux`` per detector id (relative response).
        filter, grating
            Filter and grating in the beam (``grating=None`` for ComCam).
        """
        ids = []
        group = f"{self.clock.isot}"
        for exposure_time in exposure_times:
            self.seq_num += 1
            start = self.clock
            end = start + exposure_time * u.s
            metadata = ObservationMetadata(
                instrument=self.instrument.name,
                obs_id=self.instrument.obs_id(self.day_obs, self.seq_num),
                day_obs=self.day_obs,
                seq_num=self.seq_num,
                img_type=image_type,
                exposure_time=exposure_time,
                dark_time=exposure_time,
                date_obs=start,
                date_end=end,
                filter=filter,
                grating=grating,
                group_id=group,
                reason=image_type.lower(),
                program="CALIB",
            )
            files = {}
            for detector_id, model in self.models.items():
                scale = (detector_flux_scale or {}).get(detector_id, 1.0)
                amps = model.expose(image_type, exposure_time, flux=flux * scale)
                detector = self.instrument.detector(detector_id)
                path = self.directory / f"{metadata.obs_id}_{detector.full_name}.fits"
                write_raw(path, metadata, detector, self.geometry, amps, overwrite=True)
                files[detector_id] = path
            self.exposures.append(Exposure(metadata.exposure_id, image_type, exposure_time, files))
            ids.append(metadata.exposure_id)
            self.clock = end + READOUT_SECONDS * u.s
        return ids
