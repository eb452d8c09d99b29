"""BaseCamera: take images of given types through a camera component."""

from __future__ import annotations

__all__ = ["BaseCamera", "CheckpointCallback"]

import abc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..observations import IMAGE_TYPES, SHUTTER_CLOSED_IMAGE_TYPES, exposure_id_from_obs_id
from ..sal import Domain, Remote
from .remote_group import RemoteGroup

#: Called before each image with a description, e.g. ``script.checkpoint``.
CheckpointCallback = Callable[[str], Awaitable[None]]


class BaseCamera(RemoteGroup, abc.ABC):
    """Take images with one camera: one ``takeImages`` per image.

    Parameters
    ----------
    camera : `str`
        Camera component name.
    components : `list` [`str`]
        All components of the instrument group (camera first).
    domain : `Domain`
        Domain to use.
    log : `logging.Logger`, optional
        Logger.

    Attributes
    ----------
    read_out_time : `float`
        Read-out time (s) used for timeouts and duration estimates.
    """

    read_out_time = 2.0
    #: Shortest open-shutter exposure (s).
    min_open_shutter_time = 0.1

    def __init__(
        self, camera: str, components: list[str], domain: Domain, log: logging.Logger | None = None
    ) -> None:
        super().__init__(components, domain, log)
        self.camera: Remote = self.remotes[camera]

    @abc.abstractmethod
    async def setup_instrument(self, **kwargs: Any) -> None:
        """Put the instrument in the requested configuration."""

    def take_images_timeout(self, exptime: float) -> float:
        """Time to allow for one image: exposure + read-out + long timeout."""
        return exptime + self.read_out_time + self.long_timeout

    @staticmethod
    def key_value_map(
        imgtype: str,
        group_id: str | None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
    ) -> str:
        """Build the ``takeImages`` keyValueMap of an image."""
        items = {
            "imageType": imgtype,
            "groupId": group_id or "",
            "testType": test_type or imgtype,
            "stutterRows": 0,
            "stutterNShifts": 0,
            "stutterDelay": 0.0,
        }
        if reason:
            items["reason"] = reason
        if program:
            items["program"] = program
        return ", ".join(f"{key}: {value}" for key, value in items.items())

    async def take_imgtype(
        self,
        imgtype: str,
        exptime: float,
        n: int,
        group_id: str | None = None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
        sensors: str | None = None,
        note: str | None = None,
        checkpoint: CheckpointCallback | None = None,
        **setup: Any,
    ) -> list[int]:
        """Take ``n`` images of type ``imgtype``; return their exposure ids.

        Parameters
        ----------
        imgtype : `str`
            One of ``lsst.ts.calibscripts.observations.IMAGE_TYPES``. BIAS forces ``exptime`` to 0.
        exptime : `float`
            Exposure time (s); open-shutter types need at least 0.1 s.
        n : `int`
            Number of images.
        group_id, test_type, reason, program : `str`, optional
            Go into the keyValueMap (and the image headers).
        sensors : `str`, optional
            Colon-separated sensor names; None for all.
        note : `str`, optional
            Observation note.
        checkpoint : callable, optional
            Awaited before each image with a description of it.
        **setup
            Instrument set-up (e.g. ``filter``), applied first.

        Raises
        ------
        ValueError
            For an unknown image type or a too short open-shutter exposure.
        lsst.ts.calibscripts.sal.AckError
            If the camera refuses or fails an image.
        """
        imgtype = imgtype.upper()
        if imgtype not in IMAGE_TYPES:
            raise ValueError(f"Unknown image type {imgtype!r}; use one of {', '.join(IMAGE_TYPES)}")
        if imgtype == "BIAS":
            exptime = 0.0
        shutter = imgtype not in SHUTTER_CLOSED_IMAGE_TYPES
        if shutter and exptime < self.min_open_shutter_time:
            raise ValueError(
                f"{imgtype} exposure time {exptime} s is below the {self.min_open_shutter_time} s "
                "minimum for open-shutter images"
            )
        if n < 1:
            raise ValueError(f"Number of images must be >= 1, got {n}")
        if setup:
            await self.setup_instrument(**setup)
        key_value_map = self.key_value_map(imgtype, group_id, test_type, reason, program)
        exposure_ids: list[int] = []
        for i in range(n):
            if checkpoint is not None:
                await checkpoint(f"{imgtype} image {i + 1} of {n}")
            self.camera.evt_endReadout.flush()
            await self.camera.cmd_takeImages.set_start(
                numImages=1,
                expTime=float(exptime),
                shutter=shutter,
                sensors=sensors or "",
                keyValueMap=key_value_map,
                obsNote=note or "",
                timeout=self.take_images_timeout(exptime),
            )
            end_readout = await self.camera.evt_endReadout.next(flush=False, timeout=self.fast_timeout)
            exposure_ids.append(exposure_id_from_obs_id(end_readout.imageName))
        return exposure_ids

    async def take_bias(self, nbias: int, **kwargs: Any) -> list[int]:
        """Take ``nbias`` biases; see `take_imgtype`."""
        return await self.take_imgtype("BIAS", 0.0, nbias, **kwargs)

    async def take_darks(self, exptime: float, ndarks: int, **kwargs: Any) -> list[int]:
        """Take ``ndarks`` darks of ``exptime`` seconds; see `take_imgtype`."""
        return await self.take_imgtype("DARK", exptime, ndarks, **kwargs)

    async def take_flats(self, exptime: float, nflats: int, **kwargs: Any) -> list[int]:
        """Take ``nflats`` flats of ``exptime`` seconds; see `take_imgtype`.

        Keyword arguments such as ``filter`` and ``grating`` set up the
        instrument first.
        """
        return await self.take_imgtype("FLAT", exptime, nflats, **kwargs)
