"""Fixtures that run kernel tests over each transport: in-process and Redis.

Import them where they are needed (``from tests.transports import ...``):
``transport_name`` runs a pytest test once per transport;
``redis_transport`` selects Redis for a `unittest.TestCase` class
(``@pytest.mark.usefixtures("redis_transport")``), which pytest cannot
parametrize. Both select the transport through the environment, as a user
would, so every `Domain` made during the test uses it. `SlowSubscriptions`
is an in-process transport on which a Remote takes time to start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` (no persistence) for the session."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_transport(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Select the Redis transport for the test."""
    monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_server.url)
    return "redis"


@pytest.fixture(params=["local", "redis"])
def transport_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Select each transport in turn."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_transport"))
    monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)
    return "local"


class SlowSubscriptions(sal.LocalTransport):
    """The in-process transport, with subscriptions to some components made slow.

    Parameters
    ----------
    component : `str`
        Topics of this component take ``delay`` seconds to subscribe to.
    delay : `float`, optional
        The delay (s).
    """

    def __init__(self, component: str, delay: float = 0.2) -> None:
        super().__init__()
        self.component = component
        self.delay = delay

    async def subscribe(self, topic_name: str, *args: Any, **kwargs: Any) -> sal.Subscription:
        if f".{self.component}." in topic_name:
            await asyncio.sleep(self.delay)
        return await super().subscribe(topic_name, *args, **kwargs)
