"""Benchmark the in-process transport: command round trips and event fan-out.

Prints the median and 99th percentile latency of a command -> final ack
round trip, and of an event reaching 10 readers, plus messages per second.
Goal (issue 2): median command round trip under 100 microseconds.

Run: ``.venv/bin/python benchmarks/sal_roundtrip.py [--n N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal.testing import set_random_topic_subname


class BenchCsc(sal.BaseCsc):
    def __init__(self) -> None:
        super().__init__("OCPS", 1, initial_state=sal.State.ENABLED)

    async def do_execute(self, data: sal.BaseMessage) -> None:
        pass

    async def do_abort_job(self, data: sal.BaseMessage) -> None:
        pass


def summarize(name: str, seconds: list[float], total: float, messages: int) -> None:
    us = sorted(s * 1e6 for s in seconds)
    p99 = us[min(len(us) - 1, int(0.99 * len(us)))]
    print(
        f"{name:<34} median {statistics.median(us):7.1f} us   p99 {p99:7.1f} us   "
        f"{messages / total:9.0f} messages/s"
    )


async def command_round_trip(csc: BenchCsc, remote: sal.Remote, n: int) -> None:
    for _ in range(200):  # warm up
        await remote.cmd_execute.set_start(pipeline="x", timeout=5)
    times = []
    t_start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await remote.cmd_execute.set_start(pipeline="x", timeout=5)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_start
    # Each round trip is two messages: the command and its final ack.
    summarize("command -> final ack", times, total, 2 * n)


async def event_fan_out(csc: BenchCsc, domain: sal.Domain, n: int, n_readers: int = 10) -> None:
    readers = [sal.Remote(domain, "OCPS", 1, readonly=True, include=["job_result"]) for _ in range(n_readers)]
    await asyncio.gather(*(r.start_task for r in readers))
    times = []
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await csc.evt_job_result.set_write(job_id=str(i))
        for reader in readers:
            await reader.evt_job_result.next(flush=False, timeout=5)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_start
    summarize(f"event -> {n_readers} readers (all read)", times, total, n * n_readers)
    for reader in readers:
        await reader.close()


async def main(n: int) -> None:
    set_random_topic_subname()
    domain = sal.Domain()
    async with BenchCsc() as csc, sal.Remote(domain, "OCPS", 1, include=["summaryState"]) as remote:
        print(f"In-process transport, {n} iterations")
        await command_round_trip(csc, remote, n)
        await event_fan_out(csc, domain, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="iterations (default 5000)")
    asyncio.run(main(parser.parse_args().n))
