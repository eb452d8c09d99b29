"""ExampleOcps: a small CSC for kernel tests."""

from __future__ import annotations

import asyncio

from lsst.ts.calibscripts import sal


class ExampleOcps(sal.BaseCsc):
    """An OCPS whose execute command behaves as its pipeline field says.

    pipeline values: "ok", "fail", "expected", "timeout", "cancel",
    "progress:<in-progress timeout>:<duration>", "sleep:<duration>".
    """

    def __init__(self, index: int, **kwargs: object) -> None:
        super().__init__("OCPS", index, **kwargs)  # type: ignore[arg-type]
        self.cmd_execute.allow_multiple_callbacks = True
        self.executed: list[str] = []

    async def do_execute(self, data: sal.BaseMessage) -> None:
        self.executed.append(data.pipeline)
        kind, *args = data.pipeline.split(":")
        match kind:
            case "ok":
                pass
            case "fail":
                raise RuntimeError("something broke")
            case "expected":
                raise sal.ExpectedError("not possible now")
            case "timeout":
                raise TimeoutError("gave up")
            case "cancel":
                raise asyncio.CancelledError()
            case "progress":
                await self.cmd_execute.ack_in_progress(data, timeout=float(args[0]), result='{"job_id": "1"}')
                await asyncio.sleep(float(args[1]))
            case "sleep":
                await asyncio.sleep(float(args[0]))
        await self.evt_job_result.set_write(job_id=data.pipeline, exit_code=0, result="{}", force_output=True)

    async def do_abort_job(self, data: sal.BaseMessage) -> None:
        self.assert_enabled("abort_job")
