"""Assemble trimmed amplifiers into a detector image, and back.

Trimmed amplifier arrays are in readout order (as `overscan.correct_amp`
returns them); each is flipped according to its ``DETSEC`` and placed in the
assembled image (see `lsst.ts.calibscripts.cp.camera.geometry` for conventions).
The inverse, `amp_views`, gives each amp's region of an assembled image as a
view, which is how per-amp statistics and per-amp gains are applied.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ..camera.geometry import AmpGeometry, DetectorGeometry

__all__ = [
    "amp_view",
    "amp_views",
    "apply_gains",
    "assemble",
    "disassemble",
]


def assemble(
    amp_data: Mapping[str, np.ndarray], geometry: DetectorGeometry, dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Place trimmed amplifiers into the assembled detector image.

    Parameters
    ----------
    amp_data : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Trimmed data arrays (readout orientation) by amp name.
    geometry : `DetectorGeometry`
        Detector geometry.
    dtype : `numpy.dtype`-like, optional
        Output pixel type (default ``float32``).

    Returns
    -------
    image : `numpy.ndarray`
        Array of ``geometry.assembled_shape``.

    Raises
    ------
    ValueError
        If an amp is missing or its array has the wrong shape.
    """
    image: np.ndarray = np.empty(geometry.assembled_shape, dtype=dtype)
    for amp in geometry:
        if amp.name not in amp_data:
            raise ValueError(f"No data for amp {amp.name}")
        data = amp_data[amp.name]
        if data.shape != amp.data_shape:
            raise ValueError(f"Amp {amp.name}: data shape {data.shape} != {amp.data_shape}")
        image[amp.detector_slice] = amp.to_detector_orientation(data)
    return image


def amp_view(image: np.ndarray, amp: AmpGeometry) -> np.ndarray:
    """Return an amp's region of an assembled image (a view, detector orientation)."""
    return image[amp.detector_slice]


def amp_views(image: np.ndarray, geometry: DetectorGeometry) -> dict[str, np.ndarray]:
    """Return every amp's region of an assembled image as views.

    Parameters
    ----------
    image : `numpy.ndarray`
        Assembled image (or any array of the assembled shape, e.g. a mask).
    geometry : `DetectorGeometry`
        Detector geometry.

    Returns
    -------
    views : `dict` [`str`, `numpy.ndarray`]
        By amp name, in detector orientation; writing to a view writes the
        image.
    """
    if image.shape != geometry.assembled_shape:
        raise ValueError(f"Image shape {image.shape} != assembled shape {geometry.assembled_shape}")
    return {amp.name: image[amp.detector_slice] for amp in geometry}


def disassemble(image: np.ndarray, geometry: DetectorGeometry) -> dict[str, np.ndarray]:
    """Inverse of `assemble`: each amp's region in readout orientation (views)."""
    return {
        name: geometry.amp(name).to_readout_orientation(view)
        for name, view in amp_views(image, geometry).items()
    }


def apply_gains(
    image: np.ndarray, geometry: DetectorGeometry, gains: Mapping[str, float], *, inverse: bool = False
) -> np.ndarray:
    """Multiply each amp's region by its gain, in place (ADU -> electrons).

    Parameters
    ----------
    image : `numpy.ndarray`
        Assembled image (floating point), modified in place.
    geometry : `DetectorGeometry`
        Detector geometry.
    gains : `~collections.abc.Mapping` [`str`, `float`]
        Gain per amp, e-/ADU.
    inverse : `bool`, optional
        Divide instead (electrons -> ADU).

    Returns
    -------
    image : `numpy.ndarray`
        The same array, for chaining.
    """
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"apply_gains needs a floating-point image, got {image.dtype}")
    missing = [a.name for a in geometry if a.name not in gains]
    if missing:
        raise ValueError(f"No gain for amps {missing}")
    for name, view in amp_views(image, geometry).items():
        gain = float(gains[name])
        if gain <= 0:
            raise ValueError(f"Amp {name}: gain must be positive, got {gain}")
        view *= (1.0 / gain) if inverse else gain
    return image
