"""What the calibration tasks agree on about the images they exchange.

Every processed image (ISR output, combined calibration, verification
residual) is an `lsst.images.MaskedImage` whose mask follows `MASK_SCHEMA`
and whose ``metadata`` carries flat key/value pairs. Downstream tasks find
everything they need in that metadata, never in a side channel:

* the observation (copied from the raw primary header: ``EXPID``,
  ``OBSID``, ``EXPTIME``, ``DARKTIME``, ``DATE-OBS``...);
* the amplifier layout of the assembled image (``LSST ISR AMP DETSEC <amp>``),
  so that per-amplifier statistics work on any geometry, full or reduced;
* what ISR did and measured (``LSST ISR UNITS``, ``LSST ISR GAIN <amp>``,
  ``LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>``, whose key
  `lsst.ts.calibscripts.cp.overscan.overscan_residual_key` gives...);
* for combined calibrations, their inputs and statistics
  (``LSST CALIB INPUT <i> EXPID``, ``LSST CALIB PERCENTILE <p> <amp>``...).

Keys with spaces follow the Rubin ISR header convention (they appear as
``HIERARCH`` cards in afw FITS files).
"""

from __future__ import annotations

__all__ = [
    "CALIB_TYPE_KEY",
    "CALIB_UNITS_KEY",
    "EXPOSURE_ID_KEY",
    "MASK_SCHEMA",
    "OBSERVATION_KEYS",
    "UNITS_KEY",
    "amp_boxes",
    "amp_section_key",
    "calib_input_key",
    "calib_percentile_key",
    "float_metadata",
    "gain_key",
    "overscan_median_key",
    "read_noise_key",
]

from collections.abc import Mapping
from typing import Any

from lsst.images import MaskPlane, MaskSchema

from ..geometry import Box, parse_section

MASK_SCHEMA = MaskSchema(
    [
        MaskPlane("BAD", "Known defect, or no usable input (e.g. every input clipped)."),
        MaskPlane("SAT", "At or above the saturation level in the raw image."),
        MaskPlane("CR", "Cosmic ray (grown)."),
    ]
)
"""Mask planes of every image the calibration tasks write."""

EXPOSURE_ID_KEY = "EXPID"
"""Rubin exposure id (``YYYYMMDDNNNNN``) of a processed exposure."""

OBSERVATION_KEYS = (
    "INSTRUME",
    "DETECTOR",
    "DET_NAME",
    "DET_SER",
    "OBSID",
    "DAYOBS",
    "SEQNUM",
    "IMGTYPE",
    "EXPTIME",
    "DARKTIME",
    "DATE-OBS",
    "DATE-END",
    "FILTER",
    "GRATING",
    "GROUPID",
)
"""Raw primary-header keys ISR copies into its output metadata."""

UNITS_KEY = "LSST ISR UNITS"
"""Pixel units after ISR: ``adu`` or ``electron``."""

CALIB_TYPE_KEY = "LSST CALIB TYPE"
"""Type of a combined calibration: ``bias``, ``dark`` or ``flat``."""

CALIB_UNITS_KEY = "LSST CALIB UNITS"
"""Pixel units of a combined calibration: ``adu`` (bias), ``electron/s``
(dark) or ``dimensionless`` (flat)."""


def overscan_median_key(amp: str) -> str:
    """Key of the median serial-overscan level (ADU) subtracted from an amp."""
    return f"LSST ISR OVERSCAN SERIAL MEDIAN {amp}"


def gain_key(amp: str) -> str:
    """Key of the gain (e-/ADU) ISR used or would use for an amp."""
    return f"LSST ISR GAIN {amp}"


def read_noise_key(amp: str) -> str:
    """Key of the nominal read noise (e-) of an amp."""
    return f"LSST ISR READNOISE {amp}"


def amp_section_key(amp: str) -> str:
    """Key of an amp's region of the assembled image, as a FITS section."""
    return f"LSST ISR AMP DETSEC {amp}"


def calib_input_key(index: int, item: str) -> str:
    """Key describing input ``index`` of a combined calibration.

    Parameters
    ----------
    index
        Position of the input (0-based).
    item
        ``EXPID``, ``DATE``, ``EXPTIME``, ``DARKTIME`` or ``SCALE``.
    """
    return f"LSST CALIB INPUT {index} {item}"


def calib_percentile_key(percentile: float, amp: str) -> str:
    """Key of a percentile of a combined calibration's pixels in an amp."""
    return f"LSST CALIB PERCENTILE {percentile:g} {amp}"


def amp_boxes(metadata: Mapping[str, Any]) -> dict[str, Box]:
    """Return the assembled-image region of each amplifier.

    Parameters
    ----------
    metadata
        Metadata of an image written by the ISR task (or derived from one).

    Returns
    -------
    boxes
        Amp name -> 0-based box in ``[y, x]`` array coordinates, in the
        order the keys appear.

    Raises
    ------
    KeyError
        If the metadata has no amp sections (not an ISR product).
    """
    prefix = amp_section_key("")
    boxes = {
        key[len(prefix) :]: parse_section(str(value))[0]
        for key, value in metadata.items()
        if key.startswith(prefix)
    }
    if not boxes:
        raise KeyError(f"Image metadata has no '{prefix}<amp>' keys; was it written by the ISR task?")
    return boxes


def float_metadata(metadata: Mapping[str, Any], key: str, default: float | None = None) -> float:
    """Return a numeric metadata value as a float.

    Parameters
    ----------
    metadata
        Image metadata.
    key
        Key to read.
    default
        Value if the key is missing or `None`; if this is also `None`, a
        missing key raises.

    Raises
    ------
    KeyError
        If the key is missing and no default is given.
    """
    value = metadata.get(key)
    if value is None:
        if default is None:
            raise KeyError(f"Image metadata lacks {key!r}.")
        return default
    return float(value)
