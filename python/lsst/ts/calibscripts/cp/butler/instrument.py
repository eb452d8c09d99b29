"""Butler instrument classes for LATISS and LSSTComCam, without obs_base.

`lsst.pipe.base.Instrument` is the hook through which the Butler and
``pipetask`` know an instrument: its name, how to register its static
dimension records (instrument, detectors, physical filters) and which
formatter reads its raw files. The records come from the nominal camera
description in `lsst.ts.calibscripts.cp.camera.description`, so the Butler,
the simulator and the tasks agree on detector names and filters.

Register from the command line with::

    butler register-instrument REPO lsst.ts.calibscripts.cp.butler.instrument.Latiss

or, as `lsst.ts.calibscripts.cp.butler.repository.create_repository` does, by
calling `CalibInstrument.register`.
"""

from __future__ import annotations

__all__ = [
    "EXPOSURE_MAX",
    "CalibInstrument",
    "Latiss",
    "LsstComCam",
    "get_instrument",
    "instrument_names",
]

from typing import ClassVar

from lsst.daf.butler import DataId, Formatter, FormatterV2, Registry
from lsst.pipe.base import Instrument

from ..camera.description import LATISS, LSST_COMCAM, InstrumentDescription

EXPOSURE_MAX = 10**14
"""Exclusive upper bound of exposure and visit ids.

Rubin exposure ids are ``YYYYMMDDNNNNN`` (13 digits, e.g. 2022092900001);
the bound must exceed every such id because dimension packers rely on it.
"""


class CalibInstrument(Instrument):
    """An instrument described by an `InstrumentDescription`.

    Subclasses set `description`; everything else (name, dimension records,
    raw formatter) follows from it.

    Parameters
    ----------
    collection_prefix
        Prefix of the instrument's collections instead of its name, as in
        `lsst.pipe.base.Instrument`.
    """

    description: ClassVar[InstrumentDescription]
    """Nominal camera description this instrument registers."""

    @classmethod
    def getName(cls) -> str:
        """Return the Butler name of the instrument, e.g. ``LATISS``."""
        return cls.description.name

    def register(self, registry: Registry, *, update: bool = False) -> None:
        """Insert the instrument, detector and physical_filter records.

        Parameters
        ----------
        registry
            Registry of the repository to modify.
        update
            Replace existing records that differ from the description
            instead of raising.

        Raises
        ------
        lsst.daf.butler.registry.ConflictingDefinitionError
            If a record exists with different values and ``update`` is
            `False`.

        Notes
        -----
        The insertion is one transaction, so a failure leaves the registry
        unchanged, and repeating it with the same description is a no-op.
        """
        description = self.description
        name = description.name
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "detector_max": max(d.id for d in description.detectors) + 1,
                    "exposure_max": EXPOSURE_MAX,
                    "visit_max": EXPOSURE_MAX,
                    "visit_system": 0,
                    "class_name": f"{type(self).__module__}.{type(self).__qualname__}",
                },
                update=update,
            )
            for detector in description.detectors:
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": name,
                        "id": detector.id,
                        "full_name": detector.full_name,
                        "raft": detector.raft,
                        "name_in_raft": detector.name_in_raft,
                        "purpose": detector.purpose,
                    },
                    update=update,
                )
            for physical_filter in description.physical_filters():
                registry.syncDimensionData(
                    "physical_filter",
                    {"instrument": name, "name": physical_filter.name, "band": physical_filter.band},
                    update=update,
                )

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        """Return the formatter that reads this instrument's raw files.

        Parameters
        ----------
        dataId
            Data ID of the raw (unused: every raw of these cameras has the
            same per-amplifier layout, described by the file's own keywords).
        """
        # Imported here so that importing the instrument (e.g. by pipetask
        # for a pipeline's ``instrument:`` key) does not pull in astropy I/O.
        from .formatters import RawFormatter

        return RawFormatter


class Latiss(CalibInstrument):
    """LATISS, the Auxiliary Telescope's imaging spectrograph.

    One ITL detector, id 0, ``RXX_S00``; physical filters are
    ``<filter>~<grating>`` combinations.
    """

    description = LATISS


class LsstComCam(CalibInstrument):
    """LSSTComCam, the LSST Commissioning Camera.

    Raft R22 of nine ITL detectors, ``R22_S00`` .. ``R22_S22`` with ids 0..8.
    """

    description = LSST_COMCAM


_INSTRUMENT_CLASSES: dict[str, type[CalibInstrument]] = {cls.getName(): cls for cls in (Latiss, LsstComCam)}


def instrument_names() -> list[str]:
    """Return the Butler names of the supported instruments, sorted."""
    return sorted(_INSTRUMENT_CLASSES)


def get_instrument(name: str) -> CalibInstrument:
    """Return an instance of the instrument class with a Butler name.

    Parameters
    ----------
    name
        ``LATISS`` or ``LSSTComCam``.

    Raises
    ------
    KeyError
        If the name is not a supported instrument; the message lists them.
    """
    try:
        return _INSTRUMENT_CLASSES[name]()
    except KeyError:
        raise KeyError(
            f"Unknown instrument {name!r}; supported instruments: {', '.join(instrument_names())}."
        ) from None
