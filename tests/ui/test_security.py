"""Who may use the queue page: Host allow-list, token off loopback, strict JSON, no traceback pages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cli import main
from lsst.ts.calibscripts.queue import ScriptQueue
from lsst.ts.calibscripts.script.config_errors import ConfigProblem
from lsst.ts.calibscripts.ui import server
from lsst.ts.calibscripts.ui.access import AccessPolicy, split_host
from lsst.ts.calibscripts.ui.cli import UiOptions
from lsst.ts.calibscripts.ui.config_check import ConfigCheck, EffectiveOption
from lsst.ts.calibscripts.ui.queue_bridge import QueueBridge
from lsst.ts.calibscripts.ui.server import dumps_json, make_app

from .page_client import PageClient, serving

QUICK = "checkpoints: [one, two]\n"
TOKEN = "a-token-for-the-tests_0123456789"
# The address the page is said to serve in the token tests; the test server listens on
# 127.0.0.1, so the policy is that of a page served on the network.
NETWORK_ADDRESS = "192.0.2.10"


def strict_json(text: str) -> Any:
    """Parse ``text`` as a browser does: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def served_port(page: PageClient) -> int:
    """Port of the test server behind ``page``."""
    assert isinstance(page.client, TestClient) and page.client.port is not None
    return page.client.port


async def answer(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    """Return the status and the strictly parsed JSON body of an API answer."""
    assert response.headers["Content-Type"].startswith("application/json"), await response.text()
    return response.status, strict_json(await response.text())


# --- Host ---------------------------------------------------------------------


async def test_dns_rebinding_headers_are_refused(page: PageClient, queue: ScriptQueue) -> None:
    port = served_port(page)
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    body = {"path": "examples/sleep.py", "config": QUICK}
    for method, path in (
        ("POST", "/api/queue/add"),
        ("POST", "/api/config/validate"),
        ("POST", "/api/queue/pause"),
        ("GET", "/api/state"),
        ("GET", "/api/events"),
    ):
        response = await page.client.request(method, path, json=body, headers=rebound)
        status, data = await answer(response)
        assert status == 403, (path, data)
        message = data["error"]
        assert f"does not serve the Host 'evil.example:{port}'" in message
        assert "DNS rebinding" in message
        for accepted in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert accepted in message
        assert "--allow-host" in message
    # The page itself answers in plain text, for a person.
    response = await page.client.get("/", headers=rebound)
    assert response.status == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert f"does not serve the Host 'evil.example:{port}'" in await response.text()
    assert queue.model.queue == [] and queue.model.history == []
    assert page.queue["running"] is True


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "LocalHost", "[0:0:0:0:0:0:0:1]"])
async def test_the_loopback_names_are_accepted(page: PageClient, name: str) -> None:
    port = served_port(page)
    response = await page.client.get("/api/state", headers={"Host": f"{name}:{port}"})
    status, data = await answer(response)
    assert status == 200, data
    assert data["queue"]["name"] == "ATQueue"
    response = await page.client.post(
        "/api/queue/pause", json={}, headers={"Host": f"{name}:{port}", "Origin": f"http://{name}:{port}"}
    )
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "host",
    [
        "localhost:{other}",  # another port
        "localhost",  # port 80
        "127.0.0.1.nip.io:{port}",  # a public name that resolves to loopback
        "192.168.1.5:{port}",
        "evil.example",
        "localhost:{port}/x",
        "a b:{port}",
        "",
    ],
)
async def test_other_hosts_are_refused(page: PageClient, host: str) -> None:
    port = served_port(page)
    response = await page.client.get("/api/state", headers={"Host": host.format(port=port, other=port + 1)})
    status, data = await answer(response)
    assert status == 403, data
    assert data["error"].startswith("Refused: ")


async def test_a_request_without_host_is_refused(page: PageClient) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served_port(page))
    try:
        writer.write(b"GET /api/state HTTP/1.0\r\n\r\n")
        reply = (await reader.read()).decode()
    finally:
        writer.close()
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.0 403 Forbidden"), reply
    assert "no Host header" in strict_json(body)["error"]


async def test_allow_host_adds_names(bridge: QueueBridge) -> None:
    access = AccessPolicy.for_address("127.0.0.1", allow_hosts=["calib.example", "tunnel.example:9000"])
    assert access.token is None
    async with TestClient(TestServer(make_app(bridge, access=access))) as client:
        port = client.port
        for host, status in (
            (f"calib.example:{port}", 200),
            ("tunnel.example:9000", 200),
            (f"tunnel.example:{port}", 403),
            (f"other.example:{port}", 403),
        ):
            response = await client.get("/api/state", headers={"Host": host})
            assert response.status == status, (host, await response.text())


async def test_requests_from_pages_of_other_sites_are_refused(page: PageClient) -> None:
    response = await page.client.get("/api/events", headers={"Origin": "http://evil.example"})
    status, data = await answer(response)
    assert status == 403
    assert data["error"] == "Requests from pages of http://evil.example are not accepted"
    response = await page.client.post("/api/queue/pause", json={}, headers={"Origin": "null"})
    assert response.status == 403


async def test_answers_forbid_framing_and_referrers(page: PageClient) -> None:
    response = await page.client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["Referrer-Policy"] == "no-referrer"


# --- token --------------------------------------------------------------------


@pytest.fixture
async def network_client(bridge: QueueBridge) -> AsyncIterator[TestClient[Any, Any]]:
    """A client of the page as served on a network address, with its token."""
    access = AccessPolicy.for_address(NETWORK_ADDRESS, token=TOKEN)
    async with TestClient(TestServer(make_app(bridge, access=access))) as client:
        yield client


async def test_off_loopback_a_token_is_required_everywhere(network_client: TestClient[Any, Any]) -> None:
    client = network_client
    for method, path in (
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/api/state"),
        ("GET", "/api/events"),
        ("POST", "/api/queue/pause"),
        ("POST", "/api/config/validate"),
    ):
        response = await client.request(method, path, json={})
        assert response.status == 401, (path, await response.text())
        assert response.headers["WWW-Authenticate"] == "token"
        text = await response.text()
        assert "This page needs its token" in text
        assert "http://HOST:PORT/?token=" in text
        assert "Set-Cookie" not in response.headers
    assert client.session.cookie_jar.filter_cookies(client.make_url("/")) == {}


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("query", "wrong-token-0123456789"),
        ("query", TOKEN[:-1]),
        ("query", TOKEN + "x"),
        ("query", "é" * 20),
        ("header", "token wrong-token-0123456789"),
        ("header", f"Bearer {TOKEN}"),
        ("header", f"Basic {TOKEN}"),
        ("cookie", "wrong-token-0123456789"),
    ],
)
async def test_a_wrong_token_is_refused(network_client: TestClient[Any, Any], where: str, value: str) -> None:
    client = network_client
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    if where == "query":
        params["token"] = value
    elif where == "header":
        headers["Authorization"] = value
    else:
        headers["Cookie"] = f"calibscripts-ui-token-{client.port}={value}"
    for path in ("/api/state", "/api/events"):
        response = await client.get(path, params=params, headers=headers)
        status, data = await answer(response)
        assert status == 401, data
        if where != "header":
            assert data["error"].startswith("The token given is not this server's.")
    response = await client.post("/api/queue/pause", json={}, params=params, headers=headers)
    assert response.status == 401


async def test_the_token_in_the_address_sets_a_cookie_for_the_page(
    network_client: TestClient[Any, Any], queue: ScriptQueue
) -> None:
    client = network_client
    response = await client.get("/", params={"token": TOKEN})
    assert response.status == 200
    assert "Available scripts" in await response.text()
    cookie = response.cookies[f"calibscripts-ui-token-{client.port}"]
    assert cookie.value == TOKEN
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    # The page's own later requests carry only the cookie: the event stream and commands work.
    page = PageClient(client)
    await page.connect()
    try:
        await page.post("/api/queue/pause")
        await page.wait_for(lambda: page.queue["running"] is False, "the queue to pause")
        check = await page.post("/api/config/validate", {"path": "examples/sleep.py", "config": QUICK})
        assert check["valid"] is True
    finally:
        await page.close()
    # The token in the address works for the API directly too.
    response = await client.get("/api/state", params={"token": TOKEN})
    assert response.status == 200


async def test_the_token_in_a_header_is_accepted(network_client: TestClient[Any, Any]) -> None:
    client = network_client
    for authorization in (f"token {TOKEN}", f"Token {TOKEN}"):
        headers = {"Authorization": authorization}
        response = await client.get("/api/state", headers=headers)
        assert response.status == 200
        assert "Set-Cookie" not in response.headers  # a script, not a browser: no cookie
        async with client.get("/api/events", headers=headers) as events:
            assert events.status == 200
            assert events.headers["Content-Type"] == "text/event-stream"
            assert (await events.content.readline()).decode() == "event: snapshot\n"
    # The served address is accepted by name; another one is refused, token or not.
    port = client.port
    headers = {"Authorization": f"token {TOKEN}"}
    response = await client.get("/api/state", headers={**headers, "Host": f"{NETWORK_ADDRESS}:{port}"})
    assert response.status == 200
    response = await client.get("/api/state", headers={**headers, "Host": f"evil.example:{port}"})
    assert response.status == 403


async def test_a_token_can_be_asked_for_on_loopback(bridge: QueueBridge) -> None:
    access = AccessPolicy.for_address("127.0.0.1", token=TOKEN)
    async with TestClient(TestServer(make_app(bridge, access=access))) as client:
        assert (await client.get("/api/state")).status == 401
        assert (await client.get("/api/state", params={"token": TOKEN})).status == 200


def test_the_policy_follows_the_served_address() -> None:
    loopback = AccessPolicy.for_address("127.0.0.1")
    assert loopback.loopback and loopback.token is None
    assert loopback.names == {"localhost", "127.0.0.1", "[::1]"}
    assert AccessPolicy.for_address("localhost").token is None
    assert AccessPolicy.for_address("::1").token is None
    other_loopback = AccessPolicy.for_address("127.0.0.2")
    assert other_loopback.token is None and "127.0.0.2" in other_loopback.names

    network = AccessPolicy.for_address(NETWORK_ADDRESS)
    assert not network.loopback
    assert network.names == {NETWORK_ADDRESS}
    assert network.token is not None and len(network.token) >= 40
    assert AccessPolicy.for_address(NETWORK_ADDRESS).token != network.token  # new at each start
    assert AccessPolicy.for_address(NETWORK_ADDRESS, token=TOKEN).token == TOKEN
    everywhere = AccessPolicy.for_address("0.0.0.0")
    assert everywhere.token is not None and not everywhere.loopback
    assert {"localhost", "127.0.0.1"} <= everywhere.names
    assert AccessPolicy.for_address("calib.example.org").token is not None  # a name: not loopback

    with pytest.raises(ValueError, match="--allow-host 'http://x': not a host name"):
        AccessPolicy.for_address("127.0.0.1", allow_hosts=["http://x"])
    with pytest.raises(ValueError, match="the port must be a number from 1 to 65535"):
        AccessPolicy.for_address("127.0.0.1", allow_hosts=["x:0"])
    for bad in ("short", "x" * 15, "spaces are not allowed here", "é" * 20):
        with pytest.raises(ValueError, match="--token must have at least 16 characters"):
            AccessPolicy.for_address(NETWORK_ADDRESS, token=bad)


def test_host_values_are_split_as_browsers_write_them() -> None:
    assert split_host("LocalHost:8765") == ("localhost", 8765)
    assert split_host("[::1]:8765") == ("[::1]", 8765)
    assert split_host("::1") == ("[::1]", None)
    assert split_host("127.0.0.1") == ("127.0.0.1", None)
    for bad in ("[::1", "[::1]x", "[nope]:1", "a:b", "a:99999", "a/b", "a b", "é.example"):
        with pytest.raises(ValueError, match="'"):
            split_host(bad)


# --- the command --------------------------------------------------------------


async def test_served_on_every_interface_the_address_printed_carries_the_token(
    local_transport: None,
) -> None:
    options = UiOptions(host="0.0.0.0", with_queue=True, port=0, open_browser=False)
    async with serving(options) as banner:
        url = urlsplit(banner.url)
        token = parse_qs(url.query)["token"][0]
        assert len(token) >= 40
        assert "Every request must carry the token" in banner.getvalue()
        local = f"http://127.0.0.1:{url.port}"
        jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP address, as a browser keeps them
        async with aiohttp.ClientSession(base_url=local, cookie_jar=jar) as session:
            async with session.get("/api/state") as response:
                assert response.status == 401
            async with session.get("/api/events") as response:
                assert response.status == 401
            async with session.get("/", params={"token": token}) as response:
                assert response.status == 200
            page = PageClient(session)
            await page.connect()  # with the cookie
            try:
                assert (await page.get("/api/state"))["queue"]["name"] == "ATQueue"
            finally:
                await page.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--allow-host", "http://calib.example/"], "--allow-host 'http://calib.example/': not a host name"),
        (["--token", "short"], "--token must have at least 16 characters"),
    ],
)
def test_unusable_access_options_are_a_one_line_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)
    assert main(["ui", "--with-queue", "--port", "0", "--no-browser", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("calibscripts ui: error: ")
    assert message in err
    assert err.count("\n") == 1


# --- strict JSON, and errors that say what went wrong -------------------------


def test_non_finite_numbers_are_sent_as_strings() -> None:
    value = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": {1: (2, None, True)}}
    assert strict_json(dumps_json(value)) == {
        "a": "NaN",
        "b": ["Infinity", "-Infinity", 1.5],
        "c": {"1": [2, None, True]},
    }


@pytest.mark.parametrize(
    "config",
    [
        "checkpoints: [a]\nsleep_time: .nan\n",
        "checkpoints: [a]\nsleep_time: .inf\n",
        "checkpoints: [a]\nsleep_time: -.inf\n",
        "checkpoints: [.nan]\n",
        "checkpoints: [a]\nreport: {level: INFO, prefix: .NaN}\n",
        "checkpoints: [a]\nnote: &x [*x]\n",
        "checkpoints: [a]\ndate: 2050-13-45\n",
        "checkpoints: [a]\nwhen: 2030-01-01\n",
        "? [a, b]\n: c\n",
        "- a\n- b\n",
        "checkpoints: !!python/object/apply:os.system [echo]\n",
        "checkpoints: [a]\nsleep_time: 1e999\n",
        "a: " + "[" * 400 + "]" * 400 + "\n",
        "\x00\x01",
        "checkpoints: [a]\n" + "x" * 300_000,
    ],
)
async def test_validate_answers_are_strict_json_and_never_500(page: PageClient, config: str) -> None:
    response = await page.client.post(
        "/api/config/validate", json={"path": "examples/sleep.py", "config": config}
    )
    status, data = await answer(response)
    assert status == 200, data
    assert isinstance(data["valid"], bool)
    if not data["valid"]:
        assert data["problems"] and all(problem["message"] for problem in data["problems"])


async def test_effective_options_with_nan_are_strict_json(
    page: PageClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the checker lets through, the answer is JSON a browser parses."""
    options = [
        EffectiveOption("sleep_time", float("nan"), "config"),
        EffectiveOption("limits", [float("inf"), -float("inf")], "default"),
    ]
    monkeypatch.setattr(server, "check_config", lambda schema, text: ConfigCheck([], options))
    response = await page.client.post(
        "/api/config/validate", json={"path": "examples/sleep.py", "config": ""}
    )
    status, data = await answer(response)
    assert status == 200
    assert data["options"] == [
        {"option": "sleep_time", "value": "NaN", "source": "config"},
        {"option": "limits", "value": ["Infinity", "-Infinity"], "source": "default"},
    ]


@pytest.mark.parametrize(
    "error",
    [
        ValueError("month must be in 1..12"),
        TypeError("sequence item 0: expected str instance, int found"),
        RecursionError("maximum recursion depth exceeded"),
        KeyError("x"),
    ],
)
async def test_a_failure_of_the_checker_is_a_named_problem(
    page: PageClient, queue: ScriptQueue, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(schema: Any, text: str) -> ConfigCheck:
        raise error

    monkeypatch.setattr(server, "check_config", fail)
    check = await page.post("/api/config/validate", {"path": "examples/sleep.py", "config": QUICK})
    assert check["valid"] is False
    expected = f"the configuration could not be checked: {type(error).__name__}: {error}"
    assert check["problems"] == [{"message": expected, "line": None, "option": ""}]
    added = await page.add(QUICK, status=422)
    assert expected in added["error"]
    assert queue.model.queue == [] and queue.model.history == []


async def test_a_slow_check_is_cut_short_and_the_page_goes_on(
    page: PageClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(schema: Any, text: str) -> ConfigCheck:
        time.sleep(1.0)
        return ConfigCheck([], [])

    monkeypatch.setattr(server, "check_config", slow)
    monkeypatch.setattr(server, "CONFIG_CHECK_TIMEOUT", 0.2)
    validate = asyncio.create_task(
        page.post("/api/config/validate", {"path": "examples/sleep.py", "config": QUICK})
    )
    start = time.monotonic()
    await page.get("/api/state")  # the event loop is not held while the check runs
    assert time.monotonic() - start < 0.5
    check = await validate
    assert check["problems"] == [
        ConfigProblem(
            "the configuration could not be checked in 0.2 s; it is too large or too complex"
        ).__dict__
    ]


async def test_malformed_requests_get_json_errors(page: PageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client = page.client
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, Any, dict[str, str], int, str]] = [
        ("POST", "/api/config/validate", b"\xff\xfe", json_type, 400, "not valid JSON"),
        ("POST", "/api/config/validate", b"[" * 100_000, json_type, 400, "not valid JSON"),
        ("POST", "/api/config/validate", b"[1]", json_type, 400, "must be a JSON object"),
        ("POST", "/api/config/validate", b'{"path": "examples/sleep.py", "config": 5}', json_type, 400,
         "Field 'config' must be a str"),
        ("POST", "/api/config/validate", b'{"path": 5}', json_type, 400, "Field 'path' must be a str"),
        ("POST", "/api/config/validate", b"x" * (2 << 20), json_type, 413, "Maximum request body size"),
        ("GET", "/api/no/such/thing", None, {}, 404, "Not found: /api/no/such/thing"),
        ("GET", "/api/queue/pause", None, {}, 405, "GET is not allowed on /api/queue/pause"),
        ("GET", "/api/logs/x", None, {}, 400, "'x' is not a SAL index"),
        ("GET", "/api/logs/" + "9" * 5000, None, {}, 400, "is not a SAL index"),
    ]  # fmt: skip
    for method, path, data, headers, status, message in cases:
        response = await client.request(method, path, data=data, headers=headers)
        got, body = await answer(response)
        assert got == status, (path, body)
        assert message in body["error"], (path, body)

    def broken() -> dict[str, Any]:
        raise RuntimeError("the bridge broke")

    assert isinstance(client, TestClient) and client.app is not None
    monkeypatch.setattr(client.app[server.BRIDGE_KEY], "snapshot", broken)
    status, body = await answer(await client.get("/api/state"))
    assert status == 500
    assert body["error"] == (
        "The queue page's server failed to answer GET /api/state: RuntimeError: the bridge broke"
    )
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert await response.text() == "Not found: /no/such/page\n"
