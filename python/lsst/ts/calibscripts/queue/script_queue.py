"""ScriptQueue: the CSC operators use to run SAL scripts (ATQueue, MTQueue)."""

from __future__ import annotations

__all__ = ["SalIndex", "ScriptQueue"]

import asyncio
import sys
from pathlib import Path

from ..resources import scripts_dir
from ..sal import AckCmd, BaseCsc, BaseMessage, Domain, ExpectedError, SalIndex, SalRetCode, State
from .launcher import make_launcher
from .queue_model import MAX_QUEUE_INDEX, QueueModel, script_indices
from .script_info import ScriptInfo, ScriptRequest

#: Time ``showSchema`` gives ``script 0 --schema`` (s).
SCHEMA_TIMEOUT = 60.0


class ScriptQueue(BaseCsc):
    """Queue of SAL scripts: MTQueue (index 1) or ATQueue (index 2).

    Scripts are executables found in the standard scripts directory (and
    an optional external one). ``add`` starts a script with SAL index
    ``index * 100000 + k`` (k = 1, 2, ... never reused while the queue
    runs), configures it and acknowledges with that index; while ENABLED
    and running, the queue runs its scripts one at a time, in order. A
    script that fails pauses the queue until ``resume``. The ``queue`` and
    ``script`` events report every change.

    Over a networked transport each script is a process
    (``python path INDEX``) on the same transport; over the in-process
    transport each runs in this process (see
    `~lsst.ts.calibscripts.queue.launcher.make_launcher`).

    Going to STANDBY (or FAULT, or closing) terminates every script.

    Parameters
    ----------
    index : `int`
        SAL index: 1 (MTQueue), 2 (ATQueue) or another positive index.
    standard_dir : path-like, optional
        Standard scripts; defaults to the package's scripts directory.
    external_dir : path-like, optional
        External scripts, if any.
    domain : `Domain`, optional
        Domain to use (created if not given).
    initial_state : `State`, optional
        Summary state after start; default STANDBY.

    Raises
    ------
    ValueError
        If ``index`` is out of range or a directory does not exist.
    """

    def __init__(
        self,
        index: int,
        *,
        standard_dir: str | Path | None = None,
        external_dir: str | Path | None = None,
        domain: Domain | None = None,
        initial_state: State = State.STANDBY,
    ) -> None:
        if not 1 <= index <= MAX_QUEUE_INDEX:
            raise ValueError(f"ScriptQueue index {index} is out of range 1..{MAX_QUEUE_INDEX}")
        standard = Path(standard_dir) if standard_dir is not None else scripts_dir()
        external = Path(external_dir) if external_dir is not None else None
        for kind, directory in (("standard", standard), ("external", external)):
            if directory is not None and not directory.is_dir():
                raise ValueError(f"The {kind} scripts directory {directory} does not exist")
        self.standard_dir = standard.resolve()
        self.external_dir = external.resolve() if external is not None else None
        super().__init__("ScriptQueue", index, initial_state=initial_state, domain=domain)
        self.model = QueueModel(
            domain=self.domain,
            launcher=make_launcher(self.domain),
            sal_indices=script_indices(index),
            standard_dir=self.standard_dir,
            external_dir=self.external_dir,
            log=self.log,
            queue_callback=self._put_queue,
            script_callback=self._put_script,
        )
        # Scripts load in parallel; each add still enters the queue in the
        # order the commands arrive.
        self.cmd_add.allow_multiple_callbacks = True
        self.cmd_requeue.allow_multiple_callbacks = True
        self.cmd_stopScripts.allow_multiple_callbacks = True

    async def start(self) -> None:
        """Follow the scripts' states, then start as a CSC."""
        await self.model.start()
        await super().start()

    async def handle_summary_state(self) -> None:
        """Run scripts only when ENABLED; terminate them all outside DISABLED/ENABLED."""
        enabled = self.summary_state == State.ENABLED
        if not self.disabled_or_enabled:
            await self.model.terminate_all()
        if enabled and not self.evt_availableScripts.has_data:
            await self._put_available_scripts()
        await self.model.set_enabled(enabled)

    async def close_tasks(self) -> None:
        """Terminate every script, then stop the CSC's own tasks."""
        await self.model.close()
        await super().close_tasks()

    # --- events ----------------------------------------------------------

    async def _put_queue(self, force: bool = False) -> None:
        await self.evt_queue.set_write(force_output=force, **self.model.state().event_fields())

    async def _put_script(self, info: ScriptInfo) -> None:
        await self.evt_script.set_write(force_output=True, **info.event_fields())

    async def _put_available_scripts(self) -> None:
        standard, external = self.model.available_scripts()
        await self.evt_availableScripts.set_write(
            standard=":".join(standard), external=":".join(external), force_output=True
        )

    # --- commands --------------------------------------------------------

    async def do_showAvailableScripts(self, data: BaseMessage) -> None:
        """Publish ``availableScripts``."""
        self.assert_enabled("showAvailableScripts")
        await self._put_available_scripts()

    async def do_showSchema(self, data: BaseMessage) -> None:
        """Run ``script 0 --schema`` and publish ``configSchema``."""
        self.assert_enabled("showSchema")
        full_path = self.model.full_path(data.isStandard, data.path)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(full_path),
            "0",
            "--schema",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), SCHEMA_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ExpectedError(f"{data.path} 0 --schema did not finish within {SCHEMA_TIMEOUT} s") from None
        if process.returncode != 0:
            tail = "\n".join(stderr.decode(errors="replace").strip().splitlines()[-5:])
            raise ExpectedError(f"{data.path} 0 --schema failed with exit code {process.returncode}: {tail}")
        await self.evt_configSchema.set_write(
            isStandard=data.isStandard, path=data.path, configSchema=stdout.decode(), force_output=True
        )

    async def do_showQueue(self, data: BaseMessage) -> None:
        """Publish ``queue``."""
        self.assert_enabled("showQueue")
        await self._put_queue(force=True)

    async def do_showScript(self, data: BaseMessage) -> None:
        """Publish ``script`` for one script (waiting, running or finished)."""
        self.assert_enabled("showScript")
        await self._put_script(self.model.get_script_info(data.scriptSalIndex))

    async def do_pause(self, data: BaseMessage) -> None:
        """Pause the queue; the running script goes on."""
        self.assert_enabled("pause")
        await self.model.pause()

    async def do_resume(self, data: BaseMessage) -> None:
        """Resume the queue."""
        self.assert_enabled("resume")
        await self.model.resume()

    async def do_add(self, data: BaseMessage) -> AckCmd:
        """Add a script; the final acknowledgement's result is its SAL index."""
        self.assert_enabled("add")
        await self.cmd_add.ack_in_progress(
            data, timeout=self.model.load_timeout + self.model.configure_timeout, result="Loading"
        )
        info = await self.model.add(
            ScriptRequest.from_command(data), location=data.location, location_sal_index=data.locationSalIndex
        )
        return self.cmd_add.make_ackcmd(data, SalRetCode.CMD_COMPLETE, result=str(info.index))

    async def do_move(self, data: BaseMessage) -> None:
        """Move a waiting script."""
        self.assert_enabled("move")
        await self.model.move(data.scriptSalIndex, data.location, data.locationSalIndex)

    async def do_requeue(self, data: BaseMessage) -> AckCmd:
        """Add a copy of a script; the final acknowledgement's result is its SAL index."""
        self.assert_enabled("requeue")
        await self.cmd_requeue.ack_in_progress(
            data, timeout=self.model.load_timeout + self.model.configure_timeout, result="Loading"
        )
        info = await self.model.requeue(data.scriptSalIndex, data.location, data.locationSalIndex)
        return self.cmd_requeue.make_ackcmd(data, SalRetCode.CMD_COMPLETE, result=str(info.index))

    async def do_stopScripts(self, data: BaseMessage) -> None:
        """Stop (or terminate) scripts, waiting or running."""
        self.assert_enabled("stopScripts")
        if not 1 <= data.length <= len(data.salIndices):
            raise ExpectedError(f"stopScripts length={data.length} must be 1..{len(data.salIndices)}")
        await self.model.stop_scripts(data.salIndices[: data.length], terminate=data.terminate)
