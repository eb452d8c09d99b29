"""IdiomCsc: a CSC of the ts_xml Test component, written as for salobj."""

__all__ = ["SCALAR_FIELDS", "IdiomCsc"]

import asyncio

from lsst.ts.calibscripts import salobj, utils

SCALAR_FIELDS = (
    "boolean0",
    "byte0",
    "short0",
    "int0",
    "long0",
    "longLong0",
    "unsignedShort0",
    "unsignedInt0",
    "float0",
    "double0",
    "string0",
)


class IdiomCsc(salobj.BaseCsc):
    """Echo setScalars/setArrays as events and telemetry; fault and wait on command."""

    version = "1.2.3"
    valid_simulation_modes = (0, 1)
    enable_cmdline_state = True

    def __init__(self, index, initial_state=None, override="", simulation_mode=0):
        super().__init__(
            name="Test",
            index=index,
            initial_state=initial_state,
            override=override,
            simulation_mode=simulation_mode,
        )
        # What happened, in order: transition hooks and summary states.
        self.history = []
        self.heartbeat_interval = 0.1
        self.fail_end_enable = False

    async def begin_start(self, data):
        self.history.append(f"begin_start({data.configurationOverride})")

    async def end_start(self, data):
        self.history.append("end_start")

    async def begin_enable(self, data):
        self.history.append("begin_enable")

    async def end_enable(self, data):
        self.history.append("end_enable")
        if self.fail_end_enable:
            raise RuntimeError("end_enable fails on purpose")

    async def handle_summary_state(self):
        self.history.append(f"handle_summary_state({self.summary_state.name})")

    async def do_setScalars(self, data):
        self.assert_enabled()
        # Build a message field by field, as salobj code does.
        event = self.evt_scalars.DataType()
        for name in SCALAR_FIELDS:
            setattr(event, name, getattr(data, name))
        self.evt_scalars.data = event
        await self.evt_scalars.write()
        await self.tel_scalars.set_write(**{name: getattr(data, name) for name in SCALAR_FIELDS})

    async def do_setArrays(self, data):
        self.assert_enabled()
        values = {name: getattr(data, name) for name in SCALAR_FIELDS if name != "string0"}
        await self.evt_arrays.set_write(**values, force_output=True)
        await self.tel_arrays.set_write(**values)

    async def do_fault(self, data):
        self.assert_enabled()
        await self.fault(code=17, report=f"fault commanded at {utils.current_tai():.0f}")

    async def do_wait(self, data):
        self.assert_enabled()
        if data.duration > 1:
            await self.cmd_wait.ack_in_progress(data, timeout=data.duration)
        await asyncio.sleep(data.duration)
        if data.ack != salobj.SalRetCode.CMD_COMPLETE:
            return self.salinfo.make_ackcmd(
                private_seqNum=data.private_seqNum, ack=data.ack, error=3, result="as asked"
            )
        return None
