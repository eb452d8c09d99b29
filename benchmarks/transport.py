"""Benchmark the transports: command round trips and event fan-out, Redis vs in-process.

For each transport, prints the median and 99th percentile latency of

- a command -> final acknowledgement round trip, with the CSC in this
  process (its own Domain, so over Redis every message crosses the server)
  and, for Redis, with the CSC in another process, as a script and its
  queue are;
- an event written once and read by 10 Remotes, each with its own Domain
  (its own connection, over Redis), until all have it.

Goal (issue 6): median command round trip through Redis under 2 ms.

Uses the server at ``$CALIBSCRIPTS_REDIS_URL`` if set, else starts a
private ``redis-server`` on a free port.

Run: ``.venv/bin/python benchmarks/transport.py [--n N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR
from lsst.ts.calibscripts.sal.testing import set_random_topic_subname

N_READERS = 10


class BenchCsc(sal.BaseCsc):
    def __init__(self, domain: sal.Domain) -> None:
        super().__init__("OCPS", 1, initial_state=sal.State.ENABLED, domain=domain)

    async def do_execute(self, data: sal.BaseMessage) -> None:
        pass

    async def do_abort_job(self, data: sal.BaseMessage) -> None:
        pass


def summarize(name: str, seconds: list[float]) -> None:
    us = sorted(s * 1e6 for s in seconds)
    p99 = us[min(len(us) - 1, int(0.99 * len(us)))]
    print(f"  {name:<44} median {statistics.median(us):8.1f} us   p99 {p99:8.1f} us", flush=True)


async def command_round_trip(remote: sal.Remote, n: int) -> list[float]:
    for _ in range(min(200, n)):  # warm up
        await remote.cmd_execute.set_start(pipeline="x", timeout=10)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await remote.cmd_execute.set_start(pipeline="x", timeout=10)
        times.append(time.perf_counter() - t0)
    return times


async def event_fan_out(make_transport: Callable[[], sal.Transport], n: int) -> list[float]:
    async with contextlib.AsyncExitStack() as stack:
        writer_domain = await stack.enter_async_context(sal.Domain(make_transport()))
        csc = await stack.enter_async_context(BenchCsc(writer_domain))
        readers = []
        for _ in range(N_READERS):
            domain = await stack.enter_async_context(sal.Domain(make_transport()))
            remote = sal.Remote(domain, "OCPS", 1, readonly=True, include=["job_result"], evt_max_history=0)
            readers.append(await stack.enter_async_context(remote))
        times = []
        for i in range(n + min(200, n)):
            t0 = time.perf_counter()
            await csc.evt_job_result.set_write(job_id=str(i))
            for reader in readers:
                await reader.evt_job_result.next(flush=False, timeout=10)
            times.append(time.perf_counter() - t0)
        return times[-n:]


async def bench_in_process_csc(make_transport: Callable[[], sal.Transport], n: int) -> list[float]:
    async with (
        sal.Domain(make_transport()) as csc_domain,
        sal.Domain(make_transport()) as remote_domain,
        BenchCsc(csc_domain),
        sal.Remote(remote_domain, "OCPS", 1, include=["summaryState"]) as remote,
    ):
        return await command_round_trip(remote, n)


async def bench_child_process_csc(n: int) -> list[float]:
    """Round trips to a CSC in a child process (same transport settings)."""
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", stdin=subprocess.PIPE)
    try:
        async with (
            sal.Domain() as domain,
            sal.Remote(domain, "OCPS", 1, include=["summaryState"]) as remote,
        ):
            # The child is ready when its own summaryState arrives (history
            # may hold one from the CSC of the previous measurement).
            while (await remote.evt_summaryState.next(flush=False, timeout=60)).private_origin != child.pid:
                pass
            return await command_round_trip(remote, n)
    finally:
        assert child.stdin is not None
        child.stdin.close()  # tells the child to exit
        await asyncio.wait_for(child.wait(), 30)


async def serve() -> None:
    """Run the benchmark CSC until standard input closes (child process mode)."""
    async with sal.Domain() as domain, BenchCsc(domain):
        await asyncio.to_thread(sys.stdin.read)


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """The server named by the environment, or a private one."""
    url = os.environ.get(REDIS_URL_ENV_VAR)
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


async def main(n: int) -> None:
    set_random_topic_subname()
    print(f"In-process transport, {n} iterations")
    summarize("command -> final ack", await bench_in_process_csc(sal.LocalTransport, n))
    summarize(f"event -> {N_READERS} readers (all read)", await event_fan_out(sal.LocalTransport, n))

    if not os.environ.get(REDIS_URL_ENV_VAR) and not RedisServer.available():
        print(
            "Redis transport: skipped (redis-server is not installed and CALIBSCRIPTS_REDIS_URL is not set)"
        )
        return
    with redis_url() as url:
        os.environ[sal.TRANSPORT_ENV_VAR] = "redis"
        os.environ[REDIS_URL_ENV_VAR] = url
        print(f"Redis transport ({url}), {n} iterations")
        summarize(
            "command -> final ack, CSC in this process", await bench_in_process_csc(sal.make_transport, n)
        )
        summarize("command -> final ack, CSC in another process", await bench_child_process_csc(n))
        summarize(f"event -> {N_READERS} readers (all read)", await event_fan_out(sal.make_transport, n))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="iterations per measurement (default 2000)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve() if args.serve else main(args.n))
