"""Simulated ATSpectrograph: LATISS filter wheel, grating wheel and linear stage."""

from __future__ import annotations

__all__ = ["ATSpectrographCsc"]

import asyncio

from ..cp.camera.description import LATISS
from ..sal import BaseCsc, BaseMessage, Domain, ExpectedError, State


class ATSpectrographCsc(BaseCsc):
    """Move LATISS's filter and grating wheels and the grating linear stage.

    Filters and gratings are those of the LATISS camera description; the
    slot of each is its position in that list. An unknown name or slot fails
    the command and lists the valid names.

    Parameters
    ----------
    time_scale : `float`, optional
        Wall-clock seconds per observatory second.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    #: Time to move a wheel (observatory seconds).
    wheel_move_time = 3.0
    #: Linear stage range (mm).
    stage_range = (0.0, 80.0)

    def __init__(
        self, *, time_scale: float = 1.0, initial_state: State = State.STANDBY, domain: Domain | None = None
    ) -> None:
        self.time_scale = time_scale
        self.filters = [f.name for f in LATISS.filters]
        self.gratings = list(LATISS.gratings)
        self.filter = self.filters[0]
        self.grating = self.gratings[0]
        self.stage_position = 0.0
        super().__init__("ATSpectrograph", initial_state=initial_state, domain=domain)

    async def start(self) -> None:
        """Report the positions."""
        await super().start()
        await self._report_filter()
        await self._report_grating()
        await self.evt_reportedLinearStagePosition.set_write(position=self.stage_position)

    async def _report_filter(self) -> None:
        await self.evt_reportedFilterPosition.set_write(
            slot=self.filters.index(self.filter), name=self.filter, band=LATISS.band(self.filter)
        )

    async def _report_grating(self) -> None:
        await self.evt_reportedDisperserPosition.set_write(
            slot=self.gratings.index(self.grating), name=self.grating, band=""
        )

    @staticmethod
    def _select(kind: str, names: list[str], name: str, slot: int) -> str:
        if name:
            if name not in names:
                raise ExpectedError(f"Unknown {kind} {name!r}; valid {kind}s: {', '.join(names)}")
            return name
        if not 0 <= slot < len(names):
            listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
            raise ExpectedError(f"Unknown {kind} slot {slot}; valid slots: {listing}")
        return names[slot]

    async def do_changeFilter(self, data: BaseMessage) -> None:
        """Put a filter in the beam, by name (if given) or slot."""
        self.assert_enabled("changeFilter")
        target = self._select("filter", self.filters, data.name, data.filter)
        await self.evt_filterInPosition.set_write(inPosition=False)
        if target != self.filter:
            await asyncio.sleep(self.wheel_move_time * self.time_scale)
        self.filter = target
        await self._report_filter()
        await self.evt_filterInPosition.set_write(inPosition=True)

    async def do_changeDisperser(self, data: BaseMessage) -> None:
        """Put a grating in the beam, by name (if given) or slot."""
        self.assert_enabled("changeDisperser")
        target = self._select("grating", self.gratings, data.name, data.disperser)
        await self.evt_disperserInPosition.set_write(inPosition=False)
        if target != self.grating:
            await asyncio.sleep(self.wheel_move_time * self.time_scale)
        self.grating = target
        await self._report_grating()
        await self.evt_disperserInPosition.set_write(inPosition=True)

    async def do_moveLinearStage(self, data: BaseMessage) -> None:
        """Move the grating linear stage to ``distanceFromHome`` (mm)."""
        self.assert_enabled("moveLinearStage")
        low, high = self.stage_range
        if not low <= data.distanceFromHome <= high:
            raise ExpectedError(f"distanceFromHome {data.distanceFromHome} mm is outside [{low}, {high}] mm")
        await self.evt_linearStageInPosition.set_write(inPosition=False)
        await asyncio.sleep(abs(data.distanceFromHome - self.stage_position) / 10.0 * self.time_scale)
        self.stage_position = data.distanceFromHome
        await self.evt_reportedLinearStagePosition.set_write(position=self.stage_position)
        await self.evt_linearStageInPosition.set_write(inPosition=True)

    async def do_homeLinearStage(self, data: BaseMessage) -> None:
        """Move the linear stage home."""
        self.assert_enabled("homeLinearStage")
        self.stage_position = 0.0
        await self.evt_reportedLinearStagePosition.set_write(position=0.0)
        await self.evt_linearStageInPosition.set_write(inPosition=True)
