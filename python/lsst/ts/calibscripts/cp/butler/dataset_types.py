"""Names, dimensions and storage classes of the calibration dataset types.

The single place where ``bias``, ``dark``, ``flat``, ``defects`` and ``ptc``
are defined: the task connections use these constants, and
`register_calibration_dataset_types` registers them when a repository is
created, so that a pipeline looking one up as a prerequisite (e.g. ISR with
``doDefect=True`` before any defects exist) finds a known, empty dataset
type instead of failing.
"""

from __future__ import annotations

__all__ = [
    "BIAS",
    "CALIBRATION_DATASET_TYPES",
    "DARK",
    "DEFECTS",
    "FLAT",
    "PTC",
    "CalibrationDatasetType",
    "register_calibration_dataset_types",
]

import dataclasses

from lsst.daf.butler import Butler, DatasetType


@dataclasses.dataclass(frozen=True)
class CalibrationDatasetType:
    """Definition of a calibration dataset type.

    Attributes
    ----------
    name
        Dataset type name.
    dimensions
        Dimension names.
    storage_class
        Storage class name.
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str

    def to_dataset_type(self, butler: Butler) -> DatasetType:
        """Return the `~lsst.daf.butler.DatasetType` in a repository's universe."""
        return DatasetType(
            self.name, self.dimensions, self.storage_class, isCalibration=True, universe=butler.dimensions
        )


BIAS = CalibrationDatasetType("bias", ("instrument", "detector"), "MaskedImageV2")
"""Combined bias, ADU."""

DARK = CalibrationDatasetType("dark", ("instrument", "detector"), "MaskedImageV2")
"""Combined dark, electron/s."""

FLAT = CalibrationDatasetType("flat", ("instrument", "detector", "physical_filter"), "MaskedImageV2")
"""Combined flat, dimensionless."""

DEFECTS = CalibrationDatasetType("defects", ("instrument", "detector"), "ArrowAstropy")
"""Bad-pixel boxes (x0, y0, width, height), assembled-image pixels."""

PTC = CalibrationDatasetType("ptc", ("instrument", "detector"), "PhotonTransferCurve")
"""Photon transfer curve fit of a detector."""

CALIBRATION_DATASET_TYPES = (BIAS, DARK, FLAT, DEFECTS, PTC)
"""Every calibration dataset type the pipelines produce."""


def register_calibration_dataset_types(butler: Butler) -> None:
    """Register every calibration dataset type (idempotent).

    Parameters
    ----------
    butler
        Writeable Butler.

    Raises
    ------
    lsst.daf.butler.registry.ConflictingDefinitionError
        If the repository defines one of the names differently.
    """
    for definition in CALIBRATION_DATASET_TYPES:
        butler.registry.registerDatasetType(definition.to_dataset_type(butler))
