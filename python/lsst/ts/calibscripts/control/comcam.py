"""ComCam: the LSST Commissioning Camera."""

from __future__ import annotations

__all__ = ["ComCam"]

import logging
from typing import Any

from ..sal import Domain
from .base_camera import BaseCamera


class ComCam(BaseCamera):
    """LSSTComCam use-case class: CCCamera, CCHeaderService, CCOODS.

    Parameters
    ----------
    domain : `Domain`
        Domain to use.
    log : `logging.Logger`, optional
        Logger.
    """

    #: Time allowed for a filter change (s).
    filter_change_timeout = 60.0

    def __init__(self, domain: Domain, log: logging.Logger | None = None) -> None:
        super().__init__("CCCamera", ["CCCamera", "CCHeaderService", "CCOODS"], domain, log)

    async def setup_instrument(self, filter: str | None = None, **kwargs: Any) -> None:
        """Change the filter, only when it differs from the one in the beam.

        Raises
        ------
        TypeError
            For an unknown keyword.
        lsst.ts.calibscripts.sal.AckError
            If the camera refuses (unknown filter; the message lists the valid ones).
        """
        if kwargs:
            raise TypeError(f"ComCam.setup_instrument got unknown arguments {sorted(kwargs)}")
        if filter is None:
            return
        current = self.camera.evt_endSetFilter.get()
        if current is not None and current.filterName == filter:
            self.log.debug("Filter %s already in the beam", filter)
            return
        await self.camera.cmd_setFilter.set_start(name=filter, timeout=self.filter_change_timeout)
