"""What the calibration tasks agree on about the images they exchange.

Every processed image (ISR output, combined calibration, verification
residual) is an `lsst.images.MaskedImage` whose mask follows `MASK_SCHEMA`
and whose ``metadata`` carries flat key/value pairs. Downstream tasks find
everything they need in that metadata, never in a side channel:

* the observation (copied from the raw primary header: ``EXPID``,
  ``OBSID``, ``EXPTIME``, ``DARKTIME``, ``DATE-OBS``...);
* the amplifier layout, copied from the raw's own keywords
  (``LSST ISR AMP DETSEC <amp>``, ``... DATASEC``, ``... BIASSEC``,
  ``... NAXIS1``, ``... NAXIS2``), from which `detector_geometry` rebuilds
  the `~lsst.ts.calibscripts.cp.camera.geometry.DetectorGeometry`, so that every
  per-amplifier algorithm works on any geometry, full or reduced;
* what ISR did and measured (``LSST ISR UNITS``, ``LSST ISR GAIN <amp>``,
  ``LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>``, whose key
  `lsst.ts.calibscripts.cp.algorithms.overscan.overscan_residual_key` gives...);
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
    "amp_layout_metadata",
    "amp_section_key",
    "calib_input_key",
    "calib_percentile_key",
    "copy_layout",
    "detector_geometry",
    "excluded_pixels",
    "float_metadata",
    "gain_key",
    "overscan_median_key",
    "read_image_and_mask",
    "read_noise_key",
    "read_without_variance",
]

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box, Image, Mask, MaskedImage, MaskPlane, MaskSchema

from ..camera.geometry import DetectorGeometry, amp_geometry_from_sections

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


def amp_section_key(amp: str, item: str = "DETSEC") -> str:
    """Key of one item of an amplifier's layout.

    Parameters
    ----------
    amp
        Amplifier name.
    item
        ``DETSEC`` (region of the assembled image, reversed ranges for
        flipped axes), ``DATASEC``, ``BIASSEC`` (raw sections), ``NAXIS1``
        or ``NAXIS2`` (raw amplifier size).
    """
    return f"LSST ISR AMP {item} {amp}"


def amp_layout_metadata(geometry: DetectorGeometry) -> dict[str, str | int]:
    """Return the layout keys describing every amplifier of a geometry."""
    metadata: dict[str, str | int] = {}
    for amp in geometry:
        metadata[amp_section_key(amp.name, "DETSEC")] = amp.detsec
        metadata[amp_section_key(amp.name, "DATASEC")] = amp.datasec
        metadata[amp_section_key(amp.name, "BIASSEC")] = amp.biassec
        metadata[amp_section_key(amp.name, "NAXIS1")] = amp.raw_shape[1]
        metadata[amp_section_key(amp.name, "NAXIS2")] = amp.raw_shape[0]
    return metadata


def detector_geometry(metadata: Mapping[str, Any]) -> DetectorGeometry:
    """Rebuild the detector geometry from an image's layout keys.

    Parameters
    ----------
    metadata
        Metadata of an image written by the ISR task or derived from one.

    Returns
    -------
    geometry
        The geometry of the raws the image was made from.

    Raises
    ------
    KeyError
        If the metadata has no (or incomplete) layout keys.
    """
    prefix = amp_section_key("", "DETSEC")
    names = [key[len(prefix) :] for key in metadata if key.startswith(prefix)]
    if not names:
        raise KeyError(f"Image metadata has no '{prefix}<amp>' keys; was it written by the ISR task?")
    amps = []
    for name in names:
        try:
            amps.append(
                amp_geometry_from_sections(
                    name=name,
                    raw_shape=(
                        int(metadata[amp_section_key(name, "NAXIS2")]),
                        int(metadata[amp_section_key(name, "NAXIS1")]),
                    ),
                    datasec=str(metadata[amp_section_key(name, "DATASEC")]),
                    biassec=str(metadata[amp_section_key(name, "BIASSEC")]),
                    detsec=str(metadata[amp_section_key(name, "DETSEC")]),
                )
            )
        except KeyError as err:
            raise KeyError(f"Image metadata lacks the layout key {err.args[0]!r} of amp {name}.") from None
    return DetectorGeometry.from_amps(amps)


def copy_layout(source: Mapping[str, Any], destination: dict[str, Any]) -> None:
    """Copy the amplifier layout keys of one image's metadata into another's."""
    prefix = amp_section_key("", "").rstrip()
    for key, value in source.items():
        if key.startswith(prefix):
            destination[key] = value


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


def read_image_and_mask(handle: DeferredDatasetHandle) -> tuple[Image, Mask, dict[str, Any]]:
    """Read an image dataset's pixels, mask and metadata, but not its variance.

    Reading the planes as components skips decompressing the variance, and
    is several times faster than a whole read of a file with an uncompressed
    image.

    Parameters
    ----------
    handle
        Handle of a ``MaskedImageV2`` dataset.

    Returns
    -------
    image, mask, metadata
        The planes and metadata as stored.
    """
    parts = handle.get(component="components", parameters={"components": ["image", "mask"]})
    image: Image = parts["image"]
    # The metadata is not a component: a one-pixel cut-out reads it without
    # decompressing the planes.
    corner = image.bbox.start
    one_pixel = Box.factory[corner.y : corner.y + 1, corner.x : corner.x + 1]
    metadata = dict(handle.get(parameters={"bbox": one_pixel}).metadata)
    return image, parts["mask"], metadata


def read_without_variance(handle: DeferredDatasetHandle) -> MaskedImage:
    """Read an image dataset as a `MaskedImage`, but not its variance.

    For the tasks that measure ISR outputs (statistics, flat levels, photon
    transfer pairs) and never look at the variance; `read_image_and_mask`
    reads ``handle``. The variance plane of the image returned is a
    stand-in of ones, not the stored variance.
    """
    image, mask, metadata = read_image_and_mask(handle)
    return MaskedImage(image, mask=mask, metadata=metadata)


def excluded_pixels(image: MaskedImage, planes: Iterable[str]) -> np.ndarray:
    """Return where an image has any of some mask planes set.

    Parameters
    ----------
    image
        The image.
    planes
        Mask plane names; those the image's schema lacks are skipped (no
        pixel of the image can have them).

    Returns
    -------
    excluded
        Boolean array of the image's shape.
    """
    excluded = np.zeros(image.image.array.shape, dtype=bool)
    for plane in planes:
        if plane in image.mask.schema.names:
            excluded |= image.mask.get(plane)
    return excluded
