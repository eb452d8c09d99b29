"""Script discovery, path checks, launcher choice and construction errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import (
    InProcessLauncher,
    ScriptQueue,
    SubprocessLauncher,
    find_scripts,
    make_launcher,
    resolve_script,
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
