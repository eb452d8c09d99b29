"""LATISS: the Auxiliary Telescope's imaging spectrograph."""

from __future__ import annotations

__all__ = ["LATISS"]

import logging
from typing import Any

from ..sal import Domain
from .base_camera import BaseCamera


class LATISS(BaseCamera):
    """LATISS use-case class: ATCamera, ATSpectrograph, ATHeaderService, ATOODS.

    Parameters
    ----------
    domain : `Domain`
        Domain to use.
    log : `logging.Logger`, optional
        Logger.
    """

    def __init__(self, domain: Domain, log: logging.Logger | None = None) -> None:
        super().__init__("ATCamera", ["ATCamera", "ATSpectrograph", "ATHeaderService", "ATOODS"], domain, log)
        self.spectrograph = self.remotes["ATSpectrograph"]

    async def setup_instrument(
        self,
        filter: str | int | None = None,
        grating: str | int | None = None,
        linear_stage: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Set filter, grating and linear stage; None leaves one unchanged.

        A name selects by name, an integer by slot.

        Raises
        ------
        TypeError
            For an unknown keyword.
        lsst.ts.calibscripts.sal.AckError
            If the spectrograph refuses (e.g. unknown name; the message lists
            the valid ones).
        """
        if kwargs:
            raise TypeError(f"LATISS.setup_instrument got unknown arguments {sorted(kwargs)}")
        if filter is not None:
            fields = {"name": filter} if isinstance(filter, str) else {"filter": filter}
            await self.spectrograph.cmd_changeFilter.set_start(timeout=self.long_timeout, **fields)
        if grating is not None:
            fields = {"name": grating} if isinstance(grating, str) else {"disperser": grating}
            await self.spectrograph.cmd_changeDisperser.set_start(timeout=self.long_timeout, **fields)
        if linear_stage is not None:
            await self.spectrograph.cmd_moveLinearStage.set_start(
                distanceFromHome=float(linear_stage), timeout=self.long_timeout
            )
