"""ScriptQueue behaviour, over the in-process transport and over Redis.

Every test drives the queue as an operator's panel does: commands through
a Remote, and waits on the ``queue`` and ``script`` events.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import ScriptQueue
from lsst.ts.calibscripts.sal import Location, ScriptProcessState, ScriptState
from lsst.ts.calibscripts.script.sleep_script import SleepScript

from .queue_client import TIMEOUT, QueueClient

QUICK = {"checkpoints": ["one"]}
# Pauses at checkpoint "hold" until resumed or stopped: a script that is
# certainly running when the test acts on it, without any sleeping.
HOLD: dict[str, Any] = {"config": {"checkpoints": ["hold", "after"]}, "pauseCheckpoint": "hold"}


async def test_available_scripts_and_schema(client: QueueClient, transport_name: str) -> None:
    await client.command("showAvailableScripts")
    available = await client.remote.evt_availableScripts.aget(timeout=10)
    assert "examples/sleep.py" in available.standard.split(":")
    assert available.external == "broken.py:more/sleep_copy.py:stubborn.py"

    await client.command("showSchema", isStandard=True, path="examples/sleep.py")
    schema = await client.remote.evt_configSchema.next(flush=False, timeout=10)
    assert (schema.isStandard, schema.path) == (True, "examples/sleep.py")
    assert yaml.safe_load(schema.configSchema) == SleepScript.get_schema()

    with pytest.raises(sal.AckError, match=re.escape("No script 'no/such.py'")):
        await client.command("showSchema", isStandard=True, path="no/such.py")
    with pytest.raises(sal.AckError, match="leads outside the scripts directory"):
        await client.command("showSchema", isStandard=True, path="../../sal/transport.py")
    with pytest.raises(sal.AckError, match=r"broken.py 0 --schema failed with exit code 1: .*no_such_module"):
        await client.command("showSchema", isStandard=False, path="broken.py")


async def test_scripts_run_in_queue_order(client: QueueClient, transport_name: str) -> None:
    await client.command("pause")
    a = await client.add(QUICK)
    b = await client.add(QUICK)
    c = await client.add(QUICK, location=Location.FIRST)
    d = await client.add(QUICK, is_standard=False, path="more/sleep_copy.py", location=Location.AFTER,
                         location_sal_index=a)  # fmt: skip
    assert [a, b, c, d] == [200001, 200002, 200003, 200004]
    await client.wait_queue(lambda q: client.waiting == [c, a, d, b], "the four scripts waiting")
    for index in (a, b, c, d):
        data = await client.wait_script(index, process_state=ScriptProcessState.CONFIGURED)
        assert data.scriptState == ScriptState.CONFIGURED

    await client.command("resume")
    await client.wait_finished(a, b, c, d)
    assert client.run_order == [c, a, d, b]
    assert client.past == [b, d, a, c]
    for index in (a, b, c, d):
        data = client.scripts[index]
        assert (data.processState, data.scriptState) == (ScriptProcessState.DONE, ScriptState.DONE)
        stamps = [
            data.timestampProcessStart,
            data.timestampConfigureStart,
            data.timestampConfigureEnd,
            data.timestampRunStart,
            data.timestampProcessEnd,
        ]
        assert stamps == sorted(stamps) and stamps[0] > 0
    assert client.scripts[d].isStandard is False
    assert client.scripts[d].path == "more/sleep_copy.py"


async def test_move(client: QueueClient, transport_name: str) -> None:
    await client.command("pause")
    a, b, c = [await client.add(QUICK) for _ in range(3)]
    await client.command("move", scriptSalIndex=c, location=Location.FIRST)
    await client.wait_queue(lambda q: client.waiting == [c, a, b], "c moved first")
    await client.command("move", scriptSalIndex=c, location=Location.AFTER, locationSalIndex=b)
    await client.wait_queue(lambda q: client.waiting == [a, b, c], "c moved after b")
    await client.command("move", scriptSalIndex=a, location=Location.BEFORE, locationSalIndex=c)
    await client.wait_queue(lambda q: client.waiting == [b, a, c], "a moved before c")
    await client.command("move", scriptSalIndex=a, location=Location.LAST)
    await client.wait_queue(lambda q: client.waiting == [b, c, a], "a moved last")

    with pytest.raises(sal.AckError, match="No script with SAL index 200099"):
        await client.command("move", scriptSalIndex=200099, location=Location.FIRST)
    with pytest.raises(sal.AckError, match="Unknown location 7"):
        await client.command("move", scriptSalIndex=a, location=7)
    with pytest.raises(sal.AckError, match="no such script is waiting"):
        await client.command("move", scriptSalIndex=a, location=Location.AFTER, locationSalIndex=200099)
    assert client.waiting == [b, c, a]

    await client.command("resume")
    await client.wait_finished(a, b, c)
    assert client.run_order == [b, c, a]


async def test_stop_and_terminate(client: QueueClient, transport_name: str) -> None:
    held = await client.add(**HOLD)
    waiting = await client.add(QUICK)
    await client.wait_script(held, script_state=ScriptState.PAUSED)

    # A waiting script leaves the queue; a running one stops; the queue goes on.
    await client.stop_scripts(waiting)
    data = await client.wait_script(waiting, process_state=ScriptProcessState.DONE)
    assert data.scriptState == ScriptState.STOPPED
    await client.stop_scripts(held)
    data = await client.wait_script(held, process_state=ScriptProcessState.DONE)
    assert data.scriptState == ScriptState.STOPPED
    await client.wait_finished(held, waiting)
    assert client.queue is not None and client.queue.running

    terminated = await client.add(**HOLD)
    await client.wait_script(terminated, script_state=ScriptState.PAUSED)
    await client.stop_scripts(terminated, terminate=True)
    await client.wait_script(terminated, process_state=ScriptProcessState.TERMINATED)

    after = await client.add(QUICK)
    await client.wait_finished(terminated, after)
    assert client.scripts[after].scriptState == ScriptState.DONE
    assert client.run_order == [held, terminated, after]

    with pytest.raises(sal.AckError, match="No script with SAL index 200099"):
        await client.stop_scripts(200099)


async def test_a_script_that_ignores_stop_is_terminated(client: QueueClient, transport_name: str) -> None:
    stubborn = await client.add(is_standard=False, path="stubborn.py")
    # Stop it once it is in run (a stop before run starts would simply work).
    async with sal.Remote(client.remote.salinfo.domain, "Script", stubborn, include=["state"]) as script:
        while (await script.evt_state.aget(timeout=TIMEOUT)).lastCheckpoint != "started":
            await script.evt_state.next(flush=False, timeout=TIMEOUT)
    await client.stop_scripts(stubborn)
    await client.wait_script(stubborn, process_state=ScriptProcessState.TERMINATED)
    await client.wait_finished(stubborn)
    assert client.queue is not None and client.queue.running


async def test_failure_halts_the_queue_until_resume(client: QueueClient, transport_name: str) -> None:
    failing = await client.add({"checkpoints": ["one"], "fail_run": True})
    following = await client.add(QUICK)
    queue = await client.wait_queue(lambda q: not q.running and q.currentSalIndex == 0, "the queue to halt")
    assert client.past == [failing]
    assert client.waiting == [following]
    assert queue.enabled
    data = client.scripts[failing]
    assert (data.processState, data.scriptState) == (ScriptProcessState.DONE, ScriptState.FAILED)
    assert client.scripts[following].processState == ScriptProcessState.CONFIGURED

    await client.command("resume")
    await client.wait_finished(following)
    assert client.scripts[following].scriptState == ScriptState.DONE


async def test_requeue(client: QueueClient, queue: ScriptQueue, transport_name: str) -> None:
    config = {"checkpoints": ["first", "second"], "report": {"level": "WARNING"}}
    original = await client.add(config, descr="original", stopCheckpoint="second")
    await client.wait_finished(original)
    assert client.scripts[original].scriptState == ScriptState.STOPPED  # at checkpoint "second"

    ack = await client.command("requeue", scriptSalIndex=original, location=Location.LAST)
    copy = int(ack.result)
    assert copy == original + 1
    await client.wait_finished(copy)
    assert client.scripts[copy].scriptState == ScriptState.STOPPED
    assert client.scripts[copy].path == client.scripts[original].path
    copied, source = queue.model.get_script_info(copy), queue.model.get_script_info(original)
    assert copied.request == source.request
    assert (copied.request.descr, copied.request.stop_checkpoint) == ("original", "second")
    await client.command("showScript", scriptSalIndex=original)
    with pytest.raises(sal.AckError, match="No script with SAL index 200099"):
        await client.command("requeue", scriptSalIndex=200099, location=Location.LAST)


async def test_add_fails_with_the_reason(client: QueueClient, transport_name: str) -> None:
    with pytest.raises(sal.AckError) as info:
        await client.add({"sleep_time": -1})
    result = info.value.ackcmd.result
    assert result.startswith(
        "Failed: Script:200001 (examples/sleep.py) could not be configured: config(sleep_time: -1\n) failed:"
    )
    assert "'sleep_time' = -1: -1 is less than the minimum of 0" in result
    data = await client.wait_script(200001, process_state=ScriptProcessState.CONFIGURE_FAILED)
    assert data.scriptState == ScriptState.CONFIGURE_FAILED

    with pytest.raises(sal.AckError, match=r"could not be configured: .*unknown_option"):
        await client.add({"unknown_option": 1})
    with pytest.raises(sal.AckError, match=re.escape("Script:200003 (broken.py) failed to load")):
        await client.add(is_standard=False, path="broken.py")
    await client.wait_script(200003, process_state=ScriptProcessState.LOADFAILED)
    with pytest.raises(sal.AckError, match=re.escape("No script 'no/such.py'")):
        await client.add(path="no/such.py")
    with pytest.raises(sal.AckError, match="Unknown location 9"):
        await client.add(QUICK, location=9)

    await client.wait_finished(200001, 200002, 200003)
    assert client.waiting == []
    # The queue did not halt: failing to add is not a failed run.
    assert client.queue is not None and client.queue.running
    good = await client.add(QUICK)
    assert good == 200004
    await client.wait_finished(good)


async def test_commands_need_enabled(client: QueueClient, transport_name: str) -> None:
    await client.command("disable")
    await client.wait_queue(lambda q: not q.enabled, "the queue to be disabled")
    with pytest.raises(sal.AckError, match="add not allowed in state DISABLED"):
        await client.add(QUICK)
    await client.command("enable")
    await client.wait_queue(lambda q: q.enabled, "the queue to be enabled")
    await client.wait_finished(await client.add(QUICK))
