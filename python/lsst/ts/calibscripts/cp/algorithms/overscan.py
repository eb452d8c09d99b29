"""Overscan correction and trimming of raw amplifier arrays.

For each amplifier of a raw image (readout order, see
`lsst.ts.calibscripts.cp.camera.geometry`):

1. Serial overscan: for every raw row, the median of the serial overscan
   columns, skipping the ``edge_skip`` columns nearest each edge of the
   overscan (the first few carry charge deferred from the last data column;
   the last few can show readout artefacts). That per-row level is
   subtracted from the whole row, so the slow row-direction bias drift
   disappears along with the level.
2. Optionally the parallel overscan: after step 1, the median of each column
   over the parallel overscan rows (again skipping ``edge_skip`` rows at each
   edge) is subtracted from that column.
3. Trim to the data section.

The residual standard deviation of the serial overscan after subtracting its
per-row level (a 3-sigma, 3-iteration clipped standard deviation, in ADU) is
what ISR records as ``LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>``: an
empirical read noise in ADU.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..camera.geometry import AmpGeometry, DetectorGeometry
from .statistics import median_last_axis, sigma_clipped_stats

__all__ = [
    "OverscanConfig",
    "OverscanResult",
    "correct_amp",
    "correct_and_assemble",
    "correct_overscan",
    "overscan_residual_key",
    "serial_overscan_level",
]


def overscan_residual_key(amp_name: str) -> str:
    """Header key under which ISR records an amp's overscan residual stdev."""
    return f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp_name}"


@dataclass(frozen=True)
class OverscanConfig:
    """How to correct the overscan.

    Parameters
    ----------
    edge_skip : `int`
        Serial overscan columns skipped at each edge (default 3).
    do_parallel : `bool`
        Also subtract the parallel overscan (default `False`).
    parallel_edge_skip : `int`
        Parallel overscan rows skipped at each edge (default 3).
    residual_sigma : `float`
        Clip (sigma) of the residual standard deviation (default 3.0).
    residual_iterations : `int`
        Clip iterations of the residual standard deviation (default 3).
    """

    edge_skip: int = 3
    do_parallel: bool = False
    parallel_edge_skip: int = 3
    residual_sigma: float = 3.0
    residual_iterations: int = 3


@dataclass(frozen=True)
class OverscanResult:
    """Overscan-corrected, trimmed amplifier.

    Attributes
    ----------
    data : `numpy.ndarray`
        Data section, ``float32``, readout orientation, ADU above bias.
    serial_level : `numpy.ndarray`
        Per-row serial overscan level subtracted from each data row, ADU.
    parallel_level : `numpy.ndarray` or `None`
        Per-column parallel overscan level, ADU (when corrected).
    residual_stdev : `float`
        Clipped standard deviation of the serial overscan about its per-row
        level, ADU.
    """

    data: np.ndarray
    serial_level: np.ndarray
    parallel_level: np.ndarray | None
    residual_stdev: float


def _used_columns(amp: AmpGeometry, edge_skip: int) -> slice:
    box = amp.serial_overscan
    if box.width <= 2 * edge_skip:
        raise ValueError(
            f"Amp {amp.name}: serial overscan of {box.width} columns leaves nothing after skipping "
            f"{edge_skip} at each edge"
        )
    return slice(box.x0 + edge_skip, box.x1 - edge_skip)


def serial_overscan_level(raw: np.ndarray, amp: AmpGeometry, edge_skip: int = 3) -> np.ndarray:
    """Per-row median of the serial overscan over every raw row.

    Parameters
    ----------
    raw : `numpy.ndarray`
        Raw amplifier array (readout order).
    amp : `AmpGeometry`
        Its geometry.
    edge_skip : `int`, optional
        Columns skipped at each edge of the overscan.

    Returns
    -------
    level : `numpy.ndarray`
        ``float64`` array of length ``raw.shape[0]``.
    """
    columns = _used_columns(amp, edge_skip)
    # np.median(raw[:, columns], axis=1), from sorted rows (the same values, 10x faster).
    return median_last_axis(raw[:, columns])


def correct_amp(raw: np.ndarray, amp: AmpGeometry, config: OverscanConfig | None = None) -> OverscanResult:
    """Correct one amplifier's overscan and trim it to its data section.

    Parameters
    ----------
    raw : `numpy.ndarray`
        Raw amplifier array (readout order), of shape ``amp.raw_shape``.
    amp : `AmpGeometry`
        Its geometry.
    config : `OverscanConfig`, optional
        Options; defaults as documented there.

    Returns
    -------
    result : `OverscanResult`
        Trimmed data and the levels and residual measured.

    Raises
    ------
    ValueError
        If the array does not have the amp's raw shape.
    """
    config = config or OverscanConfig()
    if raw.shape != amp.raw_shape:
        raise ValueError(f"Amp {amp.name}: raw array shape {raw.shape} != geometry {amp.raw_shape}")
    level = serial_overscan_level(raw, amp, config.edge_skip)
    # Float32 is exact for 18-bit integers and halves memory and bandwidth.
    corrected = raw.astype(np.float32)
    corrected -= level.astype(np.float32)[:, None]

    columns = _used_columns(amp, config.edge_skip)
    rows = slice(amp.serial_overscan.y0, amp.serial_overscan.y1)
    residual = sigma_clipped_stats(
        corrected[rows, columns], sigma=config.residual_sigma, iterations=config.residual_iterations
    ).stdev

    parallel_level: np.ndarray | None = None
    if config.do_parallel:
        box = amp.parallel_overscan
        skip = config.parallel_edge_skip
        if box.height <= 2 * skip:
            raise ValueError(
                f"Amp {amp.name}: parallel overscan of {box.height} rows leaves nothing after skipping "
                f"{skip} at each edge"
            )
        parallel_level = median_last_axis(corrected[box.y0 + skip : box.y1 - skip, box.x0 : box.x1].T)
        corrected[:, box.x0 : box.x1] -= parallel_level.astype(np.float32)[None, :]

    data = corrected[amp.data_slice].copy()  # own the trimmed pixels; drop the rest
    return OverscanResult(
        data=data,
        serial_level=level[amp.data.y0 : amp.data.y1],
        parallel_level=parallel_level,
        residual_stdev=float(residual),
    )


def correct_overscan(
    raw_amps: Mapping[str, np.ndarray], geometry: DetectorGeometry, config: OverscanConfig | None = None
) -> dict[str, OverscanResult]:
    """Correct and trim every amplifier of a detector.

    Parameters
    ----------
    raw_amps : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Raw amplifier arrays by amp name.
    geometry : `DetectorGeometry`
        Detector geometry (e.g. `lsst.ts.calibscripts.cp.butler.raw_file.RawImage.geometry`).
    config : `OverscanConfig`, optional
        Options.

    Returns
    -------
    results : `dict` [`str`, `OverscanResult`]
        By amp name, in the geometry's order.
    """
    missing = [a.name for a in geometry if a.name not in raw_amps]
    if missing:
        raise ValueError(f"Raw image lacks amps {missing}")
    return {amp.name: correct_amp(raw_amps[amp.name], amp, config) for amp in geometry}


def correct_and_assemble(
    raw_amps: Mapping[str, np.ndarray],
    geometry: DetectorGeometry,
    config: OverscanConfig | None = None,
    *,
    saturation: float | None = None,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, OverscanResult]]:
    """Correct every amplifier and write it straight into the assembled image.

    The same pixels as `correct_overscan` followed by
    `lsst.ts.calibscripts.cp.algorithms.assembly.assemble` (each is
    ``float32(raw) - float32(level)``), without the intermediate full-amp
    and trimmed copies: only the overscan columns and the data section are
    converted, the data straight into its place in the detector image.

    Parameters
    ----------
    raw_amps
        Raw amplifier arrays by amp name.
    geometry
        Detector geometry.
    config
        Options; with ``do_parallel`` the amps go through `correct_amp`
        (the parallel overscan needs the whole corrected amp).
    saturation
        If given, also return where the raw data pixels are at or above
        this level, assembled.
    n_threads
        Amplifiers processed at once (the result does not depend on it).

    Returns
    -------
    image
        Assembled ``float32`` image, ADU above the bias level.
    saturated
        Assembled boolean image, or `None` without ``saturation``.
    results
        By amp name: the levels and residuals measured; each ``data`` is a
        view of the amp's region of ``image`` in readout orientation.
    """
    config = config or OverscanConfig()
    missing = [a.name for a in geometry if a.name not in raw_amps]
    if missing:
        raise ValueError(f"Raw image lacks amps {missing}")
    image = np.empty(geometry.assembled_shape, dtype=np.float32)
    saturated = None if saturation is None else np.empty(geometry.assembled_shape, dtype=bool)

    def process(amp: AmpGeometry) -> OverscanResult:
        raw = raw_amps[amp.name]
        destination = image[amp.detector_slice]
        if saturated is not None:
            assert saturation is not None
            np.greater_equal(
                amp.to_detector_orientation(raw[amp.data_slice]),
                saturation,
                out=saturated[amp.detector_slice],
            )
        if config.do_parallel:
            result = correct_amp(raw, amp, config)
            destination[...] = amp.to_detector_orientation(result.data)
            return OverscanResult(
                amp.to_readout_orientation(destination),
                result.serial_level,
                result.parallel_level,
                result.residual_stdev,
            )
        if raw.shape != amp.raw_shape:
            raise ValueError(f"Amp {amp.name}: raw array shape {raw.shape} != geometry {amp.raw_shape}")
        level = serial_overscan_level(raw, amp, config.edge_skip)
        level32 = level.astype(np.float32)
        columns = _used_columns(amp, config.edge_skip)
        rows = slice(amp.serial_overscan.y0, amp.serial_overscan.y1)
        overscan = raw[rows, columns].astype(np.float32)
        overscan -= level32[rows, None]
        residual = sigma_clipped_stats(
            overscan, sigma=config.residual_sigma, iterations=config.residual_iterations
        ).stdev
        data_rows = slice(amp.data.y0, amp.data.y1)
        # float32(raw) - float32(level), written in detector orientation.
        np.subtract(
            amp.to_detector_orientation(raw[amp.data_slice]),
            amp.to_detector_orientation(np.broadcast_to(level32[data_rows, None], amp.data_shape)),
            out=destination,
            dtype=np.float32,
            casting="unsafe",
        )
        return OverscanResult(
            data=amp.to_readout_orientation(destination),
            serial_level=level[data_rows],
            parallel_level=None,
            residual_stdev=float(residual),
        )

    amps = list(geometry)
    if n_threads > 1:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            results = list(pool.map(process, amps))
    else:
        results = [process(amp) for amp in amps]
    return image, saturated, {amp.name: result for amp, result in zip(amps, results, strict=True)}
