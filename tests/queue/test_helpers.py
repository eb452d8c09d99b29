"""Script discovery, path checks, launcher choice, construction errors, and the events' meaning."""

from __future__ import annotations

import types
from pathlib import Path
from typing import cast

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import (
    MAX_HISTORY,
    MAX_QUEUE_LENGTH,
    InProcessLauncher,
    QueueState,
    ScriptQueue,
    ScriptRequest,
    SubprocessLauncher,
    find_scripts,
    make_launcher,
    resolve_script,
    script_indices,
)
from lsst.ts.calibscripts.resources import scripts_dir
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR, RedisTransport


def test_find_scripts(external_dir: Path) -> None:
    assert find_scripts(external_dir) == ["broken.py", "more/sleep_copy.py", "stubborn.py"]
    assert "examples/sleep.py" in find_scripts(scripts_dir())


def test_resolve_script(external_dir: Path) -> None:
    assert resolve_script(external_dir, "more/sleep_copy.py") == external_dir / "more" / "sleep_copy.py"
    for path, problem in [
        ("", "must be relative"),
        (str(external_dir / "broken.py"), "must be relative"),
        ("../external/../../x.py", "leads outside"),
        ("nothing.py", "No script 'nothing.py'"),
        ("more", "No script 'more'"),
        ("not_executable.py", "is not executable"),
    ]:
        with pytest.raises(sal.ExpectedError, match=problem):
            resolve_script(external_dir, path)


async def test_launcher_follows_the_transport() -> None:
    local = sal.Domain(sal.LocalTransport(), subname="one")
    assert isinstance(make_launcher(local), InProcessLauncher)

    redis = sal.Domain(RedisTransport("redis://example:1/0"), subname="two")
    launcher = make_launcher(redis)
    assert isinstance(launcher, SubprocessLauncher)
    assert launcher.environment == {
        sal.TRANSPORT_ENV_VAR: "redis",
        REDIS_URL_ENV_VAR: "redis://example:1/0",
        "LSST_TOPIC_SUBNAME": "two",
    }

    class Other(sal.Transport):
        """A transport of another kind that no child process can reach."""

        name = "other"

        async def publish(self, topic_name: str, message: sal.BaseMessage) -> None:
            raise NotImplementedError

        async def subscribe(
            self,
            topic_name: str,
            model: type[sal.BaseMessage],
            callback: sal.MessageCallback,
            *,
            history: bool,
        ) -> sal.Subscription:
            raise NotImplementedError

    with pytest.raises(TypeError, match="Cannot launch scripts over the 'other' transport"):
        make_launcher(sal.Domain(Other()))


async def test_queue_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="index 0 is out of range"):
        ScriptQueue(0)
    with pytest.raises(ValueError, match=r"external scripts directory .* does not exist"):
        ScriptQueue(2, external_dir=tmp_path / "missing")


def _message(fields: dict[str, object]) -> sal.BaseMessage:
    """Return an event or command with these fields, as a follower reads it."""
    return cast(sal.BaseMessage, types.SimpleNamespace(**fields))


def test_queue_state_reads_back_as_written() -> None:
    state = QueueState(enabled=True, running=False, current=200003, waiting=(200005, 200004), past=(200002,))
    fields = state.event_fields()
    assert (len(fields["salIndices"]), len(fields["pastSalIndices"])) == (MAX_QUEUE_LENGTH, MAX_HISTORY)
    assert fields["salIndices"][:3] == [200005, 200004, 0]
    assert QueueState.from_event(_message(fields)) == state
    assert state.listed == {200002, 200003, 200004, 200005}
    assert QueueState().listed == set()


def test_script_request_reads_back_as_sent() -> None:
    request = ScriptRequest(
        is_standard=False, path="a/b.py", config="x: 1", descr="why", log_level=10, stop_checkpoint="end"
    )
    fields = request.command_fields()
    assert fields["isStandard"] is False and fields["logLevel"] == 10
    assert ScriptRequest.from_command(_message({**fields, "location": 2, "locationSalIndex": 0})) == request


def test_script_indices() -> None:
    indices = script_indices(2)
    assert (indices[0], indices[-1], len(indices)) == (200001, 299999, 99999)
    assert 200000 not in indices and 300000 not in indices
