"""Benchmark the LATISS daily default on the simulated observatory.

Part 1, instant camera (exposures take no time): orchestration overhead per
image (script + kernel + components, excluding pixel simulation and
pipelines) and total pipeline time per image type.

Part 2, real-time exposures on a shortened configuration: does processing
overlap data taking? The goal is wall time <= camera time + processing of
the last type + 10 %.

Run: ``.venv/bin/python benchmarks/daily_default.py [--geometry full] [--skip-instant]``
(full geometry takes tens of minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.simulator.observatory import ObservatoryConfig, SimulatedObservatory


@dataclasses.dataclass
class RunTimings:
    """Timings of one run (s)."""

    wall: float
    take: float
    pixels: float
    n_images: int
    pipelines: dict[str, float]
    camera_time: float
    last_type_processing: float


async def run_once(config_text: str, *, geometry: str, time_scale: float, var_dir: Path) -> RunTimings:
    """Run the script once; return timings."""
    domain = sal.Domain()
    obs_config = ObservatoryConfig("LATISS", var_dir=var_dir, time_scale=time_scale, geometry=geometry)
    async with SimulatedObservatory(obs_config, domain=domain) as observatory:
        script = MakeLatissCalibrations(index=1, domain=domain)
        remote = sal.Remote(domain, "Script", 1, evt_max_history=0)
        checkpoints: list[tuple[float, str]] = []
        remote.evt_state.callback = lambda data: checkpoints.append((time.monotonic(), data.lastCheckpoint))
        ocps = sal.Remote(domain, "OCPS", 1, readonly=True, evt_max_history=0)
        results: list[dict[str, Any]] = []
        ocps.evt_job_result.callback = lambda data: results.append(json.loads(data.result))
        await asyncio.gather(script.start_task, remote.start_task, ocps.start_task)
        text = config_text + f"\nrepo: {obs_config.repo_path}\nn_processes: 1\n"
        await remote.cmd_configure.set_start(config=text, timeout=60)
        await remote.cmd_setGroupId.set_start(groupId="benchmark", timeout=60)
        t0 = time.monotonic()
        await remote.cmd_run.start(timeout=24 * 3600)
        wall = time.monotonic() - t0
        state = ScriptState(script.state.state)
        if state != ScriptState.DONE:
            raise RuntimeError(f"Script ended {state.name}: {script.state.reason}")
        take = 0.0
        starts = {name: t for t, name in checkpoints if name.startswith("Taking")}
        ends = {name.rsplit("type: ", 1)[1]: t for t, name in checkpoints if name.startswith("Images taken")}
        for name, t_start in starts.items():
            image_type = {"biases.": "BIAS", "darks.": "DARK", "flats.": "FLAT"}[name.split()[-1]]
            take += ends[image_type] - t_start
        per_type: dict[str, float] = collections.defaultdict(float)
        for result in results:
            pipeline = str(result["parameters"]["pipeline"]).split("/")[-1]
            per_type[pipeline] += float(str(result["executionDuration"]))
        n_images = sum(p.n_total for p in script.plans)
        camera_time = sum(sum(p.exposure_times) for p in script.plans) + n_images * 2.0
        await asyncio.gather(remote.close(), ocps.close())
        return RunTimings(
            wall=wall,
            take=take,
            pixels=observatory.camera.pixel_seconds,
            n_images=n_images,
            pipelines=dict(per_type),
            camera_time=camera_time * time_scale,
            last_type_processing=sum(v for k, v in per_type.items() if "Flat" in k or "cpPtc" in k),
        )


async def main(args: argparse.Namespace) -> None:
    print(f"LATISS daily default (generate_calibrations: true), geometry {args.geometry}")
    if not args.skip_instant:
        with tempfile.TemporaryDirectory() as tmp:
            r = await run_once(
                "generate_calibrations: true\ncalib_collection: LATISS/calib/bench",
                geometry=args.geometry,
                time_scale=1e-6,
                var_dir=Path(tmp),
            )
        overhead = (r.take - r.pixels) / r.n_images
        print("Part 1: instant camera")
        print(f"  wall time {r.wall:.1f} s for {r.n_images} images")
        print(f"  image taking {r.take:.1f} s, of which pixel simulation {r.pixels:.1f} s")
        print(
            f"  orchestration overhead per image: {overhead * 1000:.0f} ms "
            "(script, kernel, camera, OODS ingest)"
        )
        for pipeline, seconds in sorted(r.pipelines.items()):
            print(f"  pipeline {pipeline:<40} {seconds:7.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        config = (
            "generate_calibrations: true\ncalib_collection: LATISS/calib/bench2\n"
            "n_bias: 20\nn_dark: 20\nexp_times_dark: 2\nn_flat: 6\nexp_times_flat: 2\n"
        )
        r = await run_once(config, geometry=args.geometry, time_scale=1.0, var_dir=Path(tmp))
    limit = (r.camera_time + r.last_type_processing) * 1.1
    print("Part 2: real-time exposures (20 biases, 20 x 2 s darks, 6 x 2 s flats, plus discards)")
    print(f"  camera time {r.camera_time:.1f} s (exposures + 2 s read-out per image)")
    print(f"  processing of the last type (flats, gains) {r.last_type_processing:.1f} s")
    verdict = "met" if r.wall <= limit else "NOT met"
    print(f"  wall time {r.wall:.1f} s; goal <= {limit:.1f} s -> {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", default="full", help="full (default), reduced or NXxNY")
    parser.add_argument("--skip-instant", action="store_true", help="only part 2")
    asyncio.run(main(parser.parse_args()))
