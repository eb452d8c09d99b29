"""Benchmark of the MEANCLIP combination on 20 full-size LATISS frames.

Compares, on the same stack of 20 ``float32`` 4072 x 4000 frames
(ISR-like bias residuals: 8.5 e- Gaussian noise plus cosmic-ray-like
outliers in 0.01% of the pixels):

* `lsst.ts.calibscripts.cp.algorithms.combine.combine`: 3 sigma x 3 iterations, with
  the afw first iteration about the median (the default) and about the mean,
  on 1 and 2 threads;
* ``ccdproc.Combiner``: three ``sigma_clipping(3, 3, func="median",
  dev_func="std")`` passes then ``average_combine`` -- what
  ``ccdproc.combine(..., sigma_clip=True)`` runs per chunk, with 3 clipping
  iterations instead of its fixed 1. It is run on a band of rows and its
  time scaled to the full frame (printed as such);
* a plain ``numpy.mean`` over the stacked array: the memory-bandwidth floor.

Peak memory is traced with `tracemalloc` (NumPy reports its buffers to it)
and given relative to the input stack. Run: ``python benchmarks/combine.py``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lsst.ts.calibscripts.cp.algorithms.combine import CombineConfig, FirstCentre, combine

FULL_SHAPE = (4000, 4072)


def make_frames(n_frames: int, shape: tuple[int, int], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        frame = rng.standard_normal(shape, dtype=np.float32)
        frame *= 8.5
        hits = rng.random(shape, dtype=np.float32) < 1e-4
        frame[hits] += rng.uniform(200.0, 20_000.0, int(hits.sum())).astype(np.float32)
        frames.append(frame)
    return frames


def best_time(function: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(function: Callable[[], Any]) -> int:
    """Peak bytes allocated while ``function`` runs (its result included)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def ccdproc_time(frames: list[np.ndarray], rows: int) -> float:
    """Seconds for ccdproc on the first ``rows`` rows of every frame."""
    from astropy import units as u
    from astropy.nddata import CCDData
    from ccdproc import Combiner  # type: ignore[import-untyped]

    band = [CCDData(frame[:rows], unit=u.electron) for frame in frames]

    def run() -> Any:
        combiner = Combiner(band)
        # Three cumulative clipping passes (its ``maxiters`` cannot be passed
        # through: ccdproc sets it to 1 itself).
        for _ in range(3):
            combiner.sigma_clipping(low_thresh=3, high_thresh=3, func="median", dev_func="std")
        return combiner.average_combine()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return best_time(run, 1)


def bench_numpy_mean(frames: list[np.ndarray], repeat: int) -> tuple[float, int]:
    """Time and peak extra memory of numpy.mean over the pre-stacked frames."""
    stacked = np.stack(frames)
    seconds = best_time(lambda: stacked.mean(axis=0), repeat)
    peak = peak_memory(lambda: stacked.mean(axis=0))
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--ccdproc-rows", type=int, default=200, help="rows of the band given to ccdproc")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    frames = make_frames(args.frames, FULL_SHAPE)
    stack_bytes = sum(frame.nbytes for frame in frames)
    ny, nx = FULL_SHAPE
    print(f"Input: {args.frames} frames of {nx} x {ny} float32 = {stack_bytes / 2**30:.2f} GiB")

    t_mean, mem_mean = bench_numpy_mean(frames, args.repeat)
    gc.collect()
    print(f"numpy.mean (pre-stacked)      {t_mean:7.3f} s  peak extra {mem_mean / 2**20:7.1f} MiB")

    centres: tuple[FirstCentre, ...] = ("median", "mean")
    results: dict[tuple[str, int], float] = {}
    for centre in centres:
        for threads in (1, 2):
            config = CombineConfig(first_centre=centre, n_threads=threads)

            def run(config: CombineConfig = config) -> Any:
                return combine(frames, config=config)

            seconds = best_time(run, args.repeat)
            results[(centre, threads)] = seconds
            label = f"combine first={centre:<6} threads={threads}"
            print(f"{label:<29} {seconds:7.3f} s  {seconds / t_mean:5.1f} x numpy.mean")
    for centre in centres:
        config = CombineConfig(first_centre=centre)

        def run_once(config: CombineConfig = config) -> Any:
            return combine(frames, config=config)

        peak = peak_memory(run_once)
        total = (stack_bytes + peak) / stack_bytes
        print(
            f"combine first={centre:<6} peak extra {peak / 2**20:7.1f} MiB "
            f"(outputs included); inputs + extra = {total:.2f} x input stack"
        )

    rows = min(args.ccdproc_rows, ny)
    t_band = ccdproc_time(frames, rows)
    t_ccdproc = t_band * ny / rows
    print(f"ccdproc Combiner (3 sigma x 3, median centre) on {rows} rows: {t_band:.2f} s, ", end="")
    print(f"scaled to {ny} rows: {t_ccdproc:.1f} s")
    for (mode, n_threads), seconds in results.items():
        label = f"combine first={mode:<6} threads={n_threads}"
        print(f"  speed-up over ccdproc, {label}: {t_ccdproc / seconds:6.1f} x")


if __name__ == "__main__":
    main()
