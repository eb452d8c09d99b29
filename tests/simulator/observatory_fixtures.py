"""Start a simulated observatory (reduced geometry, fast clock) for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.simulator.observatory import ObservatoryConfig, SimulatedObservatory

#: Observatory seconds per wall-clock second in tests: a 2 s read-out takes 20 ms.
TEST_TIME_SCALE = 0.01


@asynccontextmanager
async def running_observatory(
    var_dir: Path,
    instrument: str = "LATISS",
    *,
    with_ocps: bool = False,
    geometry: str = "reduced",
    repo: Path | None = None,
    subname: str | None = None,
) -> AsyncIterator[tuple[SimulatedObservatory, sal.Domain]]:
    """Run an observatory in ``var_dir``; yield it and a domain to talk to it.

    ``repo`` defaults to ``<var_dir>/repo/<instrument>``; give each of two
    observatories in one test its own ``subname`` (topic namespace).
    """
    domain = sal.Domain(subname=subname)
    config = ObservatoryConfig(
        instrument=instrument,
        repo=repo,
        var_dir=var_dir,
        time_scale=TEST_TIME_SCALE,
        geometry=geometry,
        with_ocps=with_ocps,
    )
    async with SimulatedObservatory(config, domain=domain) as observatory:
        yield observatory, domain


async def collect_image_in_oods(remote: sal.Remote, count: int, timeout: float = 30) -> list[sal.BaseMessage]:
    """Wait for ``count`` imageInOODS events."""
    return [await remote.evt_imageInOODS.next(flush=False, timeout=timeout) for _ in range(count)]
