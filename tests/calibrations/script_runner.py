"""Run a calibration script against a simulated observatory, as an operator would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.calibrations import BaseMakeCalibrations
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.simulator.observatory import ObservatoryConfig, SimulatedObservatory
from lsst.ts.calibscripts.simulator.reference_calibrations import BootstrapPlan

#: Observatory seconds per wall-clock second in tests.
TIME_SCALE = 0.002


@dataclass
class ScriptRun:
    """The outcome of one script run."""

    script: BaseMakeCalibrations
    final_state: ScriptState
    reason: str
    messages: list[tuple[int, str]] = field(default_factory=list)

    def text(self, min_level: int = 0) -> str:
        return "\n".join(m for level, m in self.messages if level >= min_level)


class LogWatch:
    """Collect a script's log messages; wait for one containing some text."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str]] = []
        self._arrived = asyncio.Event()

    def __call__(self, data: sal.BaseMessage) -> None:
        self.messages.append((data.level, data.message))
        self._arrived.set()

    async def wait_for(self, text: str, timeout: float = 120) -> None:
        async with asyncio.timeout(timeout):
            while not any(text in message for _, message in self.messages):
                self._arrived.clear()
                await self._arrived.wait()


@asynccontextmanager
async def observatory(
    var_dir: Path,
    instrument: str = "LATISS",
    geometry: str = "reduced",
    *,
    repo: Path | None = None,
    bootstrap: bool | None = None,
    bootstrap_plan: BootstrapPlan | None = None,
) -> AsyncIterator[SimulatedObservatory]:
    """Run a simulated observatory (repository ``<var_dir>/repo/<instrument>`` unless given).

    New repositories get no reference calibrations (tests/conftest.py sets
    ``CALIBSCRIPTS_BOOTSTRAP=0``) unless ``bootstrap`` is true.
    """
    config = ObservatoryConfig(
        instrument=instrument,
        repo=repo,
        var_dir=var_dir,
        time_scale=TIME_SCALE,
        geometry=geometry,
        bootstrap=bootstrap,
        bootstrap_plan=bootstrap_plan or BootstrapPlan(),
    )
    async with SimulatedObservatory(config, domain=sal.Domain()) as running:
        yield running


async def run_script(
    observatory: SimulatedObservatory,
    script_class: type[BaseMakeCalibrations],
    config: dict[str, object] | str,
    *,
    index: int = 1,
    while_running: object = None,
    block_id: str = "",
) -> ScriptRun:
    """Configure and run a script; return its final state and log messages.

    ``repo`` and ``n_processes`` are filled in unless given; ``block_id``
    is the queue's block id (the script's obs id).
    """
    # No options at all (the Daily Default) is an empty text, not "{}".
    text = config if isinstance(config, str) else (yaml.safe_dump(config) if config else "")
    parsed = yaml.safe_load(text) or {}
    extra = {
        k: v
        for k, v in {"repo": str(observatory.config.repo_path), "n_processes": 1}.items()
        if k not in parsed
    }
    text = (
        text + ("\n" if text and not text.endswith("\n") else "") + (yaml.safe_dump(extra) if extra else "")
    )
    domain = observatory.domain
    script = script_class(index=index, domain=domain)  # type: ignore[call-arg]
    remote = sal.Remote(domain, "Script", index, evt_max_history=0)
    watch = LogWatch()
    remote.evt_logMessage.callback = watch
    await asyncio.gather(script.start_task, remote.start_task)
    try:
        await remote.cmd_configure.set_start(config=text, blockId=block_id, timeout=30)
        await remote.cmd_setGroupId.set_start(groupId="test", timeout=30)
        run = asyncio.create_task(remote.cmd_run.start(timeout=3600))
        if while_running is not None:
            await while_running(script, remote, watch)  # type: ignore[operator]
        await script.done_task
        await run
        await asyncio.sleep(0)
    finally:
        await remote.close()
    return ScriptRun(script, ScriptState(script.state.state), script.state.reason, watch.messages)
