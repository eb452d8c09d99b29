"""Simulated header services: ATHeaderService and CCHeaderService."""

from __future__ import annotations

__all__ = ["HeaderServiceCsc"]

from pathlib import Path

import yaml

from ..sal import BaseCsc, BaseMessage, Domain, Remote, State


class HeaderServiceCsc(BaseCsc):
    """Write a header file for each image and announce it.

    Listens to the camera's ``endOfImageTelemetry``; for each image writes
    ``<header_dir>/<image name>.yaml`` with the image's metadata and writes
    ``largeFileObjectAvailable`` with its URL.

    Parameters
    ----------
    name : `str`
        ``ATHeaderService`` or ``CCHeaderService``.
    camera : `str`
        The camera component it follows (``ATCamera``, ``CCCamera``).
    header_dir : `pathlib.Path`
        Where header files go.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    def __init__(
        self,
        name: str,
        camera: str,
        header_dir: Path,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        self.header_dir = header_dir
        super().__init__(name, initial_state=initial_state, domain=domain)
        self.camera = Remote(
            self.domain, camera, readonly=True, include=["endOfImageTelemetry"], evt_max_history=0
        )
        self.camera.evt_endOfImageTelemetry.callback = self._on_image

    async def _on_image(self, data: BaseMessage) -> None:
        if self.summary_state != State.ENABLED:
            return
        header = {
            "OBSID": data.imageName,
            "DAYOBS": data.imageDate,
            "SEQNUM": data.imageNumber,
            "EXPTIME": data.measuredExposureTime,
            "DARKTIME": data.darkTime,
            "KEYS": dict(zip(data.additionalKeys.split(":"), data.additionalValues.split(":"), strict=False)),
        }
        self.header_dir.mkdir(parents=True, exist_ok=True)
        path = self.header_dir / f"{data.imageName}.yaml"
        path.write_text(yaml.safe_dump(header, sort_keys=False))
        await self.evt_largeFileObjectAvailable.set_write(
            force_output=True,
            byteSize=path.stat().st_size,
            generator=self.salinfo.name,
            mimeType="application/yaml",
            url=path.as_uri(),
            version=1.0,
            id=data.imageName,
        )

    async def close_tasks(self) -> None:
        """Stop following the camera."""
        await self.camera.close()
        await super().close_tasks()
