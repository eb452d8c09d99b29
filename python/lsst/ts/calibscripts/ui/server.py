"""The queue page's web server: the page, a JSON API, and a live event stream.

Routes (JSON in and out; commands are ``POST`` with a JSON body):

==================================  ===============================================
``GET /``                           The page (``static/index.html``).
``GET /static/...``                 Its script and style sheet.
``GET /api/state``                  Snapshot: queue, available scripts, scripts,
                                    suggested options.
``GET /api/events``                 Server-sent events: ``snapshot`` first, then
                                    ``queue``, ``script``, ``log``, ``available``.
``GET /api/available-scripts``      Standard and external scripts (``?refresh=1``
                                    asks the queue again).
``GET /api/schema``                 ``?path=P&isStandard=true``: the schema YAML
                                    and its top-level option names.
``POST /api/config/validate``       ``{path, isStandard, config}``: problems
                                    (line, option, message) or the effective options.
``POST /api/queue/add``             ``{path, isStandard, config, descr, logLevel,
                                    pauseCheckpoint, stopCheckpoint, location,
                                    locationSalIndex}``: the new script's index.
``POST /api/queue/stop``            ``{salIndices, terminate}``.
``POST /api/queue/pause``           Pause the queue.
``POST /api/queue/resume``          Resume it.
``POST /api/queue/requeue``         ``{salIndex, location, locationSalIndex}``.
``POST /api/queue/move``            ``{salIndex, location, locationSalIndex}``.
``GET /api/logs/{salIndex}``        Log messages kept for a script (or the queue).
``GET /api/results/{salIndex}``     A calibration script's results: the collections
                                    its log named, each verification as it arrives,
                                    its report's state (see `ReportService`).
``GET /reports/{salIndex}/``        The script's report (made when the script ended,
                                    or now: a page saying what is being done, that
                                    reloads itself until the report is ready).
``GET /reports/{salIndex}/NAME``    The report's figures.
==================================  ===============================================

Errors are ``{"error": message}`` with 400 (bad request), 401 (no valid
token), 403 (a ``Host`` this server does not serve, or a request from a page
of another site), 404, 405, 409 (the queue refused: its reason), 413 (body
too large), 415 (not JSON), 422 (invalid configuration, with
``problems``), 500 (a fault of this server, named), 502 (the script's
schema is unusable), 503 (the queue is not running) or 504 (the queue did
not answer). The page itself and its static files answer errors as plain
text, for a person reading them in a browser.

Every request, the page and its files included, is checked first (see
`AccessPolicy`): its ``Host`` must be one this server serves (against DNS
rebinding), and if the policy has a token the request must carry it, as
``?token=`` (the answer then sets an HttpOnly, SameSite=Strict cookie that
the page's later requests carry), as that cookie, or as an
``Authorization: token ...`` header.

Every JSON answer and event is strict JSON: NaN and infinities are sent as
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

__all__ = [
    "ACCESS_KEY",
    "BRIDGE_KEY",
    "CONFIG_CHECK_TIMEOUT",
    "REPORTS_KEY",
    "STATIC_DIR",
    "SUGGESTED_OPTIONS_KEY",
    "dumps_json",
    "make_app",
]

import asyncio
import dataclasses
import datetime
import html
import http.cookies
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from ..queue.script_info import ScriptRequest
from ..sal import Location
from ..script.config_errors import ConfigProblem
from .access import AccessPolicy
from .config_check import ConfigCheck, check_config, parse_schema
from .queue_bridge import QueueBridge, QueueCommandError
from .reports import ReportService

#: Files of the page, served as they are (no build step).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The application's `QueueBridge`.
BRIDGE_KEY = web.AppKey("bridge", QueueBridge)
#: Option values the page pre-fills in an empty CONFIG (see `make_app`).
SUGGESTED_OPTIONS_KEY = web.AppKey("suggested_options", dict[str, Any])
#: The application's `AccessPolicy`.
ACCESS_KEY = web.AppKey("access", AccessPolicy)
#: The application's `ReportService` (the scripts' results and reports).
REPORTS_KEY = web.AppKey("reports", ReportService)
#: Longest a configuration check may take (s). It runs in a worker thread,
#: so that the event loop (the queue, the observatory, the running script)
#: goes on meanwhile; past this time the answer is a configuration problem.
CONFIG_CHECK_TIMEOUT = 5.0
#: Interval of keep-alive comments on an idle event stream (s): proxies and
#: browsers keep the connection, and a gone page is noticed.
SSE_KEEPALIVE = 15.0

_QUEUE_ERROR_STATUS = {"refused": 409, "unavailable": 503, "timeout": 504}
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUIRED: Any = object()
#: Set on a request whose token came as ``?token=``: the name of the cookie to set.
_TOKEN_COOKIE_KEY = web.RequestKey("token_cookie", str)
#: Headers of every answer: no other site may frame the page (clickjacking),
#: no address (which may carry the token) leaks as a referrer.
_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API answers with an error.

    Parameters
    ----------
    status : `int`
        HTTP status.
    message : `str`
        What is wrong, for the operator.
    **extra
        More JSON fields of the answer (e.g. ``problems``).
    """

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}


def make_app(
    bridge: QueueBridge,
    *,
    suggested_options: Mapping[str, Any] | None = None,
    access: AccessPolicy | None = None,
    reports: ReportService | None = None,
) -> web.Application:
    """Return the web application of the queue page.

    Parameters
    ----------
    bridge : `QueueBridge`
        The started bridge to the queue; the caller closes it.
    suggested_options : `dict`, optional
        Values the page writes into an empty CONFIG for the scripts whose
        schema has these options, e.g. ``{"repo": ...}`` with the
        simulated observatory's repository, which a calibration script
        must use instead of the summit's default.
    access : `AccessPolicy`, optional
        Which ``Host`` names are accepted and which token is required; by
        default the loopback names and no token (the policy of a server on
        ``127.0.0.1``).
    reports : `ReportService`, optional
        The calibration scripts' results and reports; by default one that
        finds the scripts' repository in their configuration, else in
        ``suggested_options["repo"]``, and writes the reports into a
        temporary directory. The application starts and closes it.

    Returns
    -------
    app : `aiohttp.web.Application`
        The application; its shutdown ends the open event streams.
    """
    app = web.Application(middlewares=[_error_middleware, _access_middleware, _command_guard_middleware])
    app[BRIDGE_KEY] = bridge
    app[SUGGESTED_OPTIONS_KEY] = dict(suggested_options or {})
    app[ACCESS_KEY] = access or AccessPolicy.for_address("127.0.0.1")
    repo = app[SUGGESTED_OPTIONS_KEY].get("repo")
    app[REPORTS_KEY] = reports or ReportService(bridge, default_repo=str(repo) if repo else None)
    app.on_response_prepare.append(_prepare_response)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/available-scripts", _available_scripts)
    app.router.add_get("/api/schema", _schema)
    app.router.add_post("/api/config/validate", _validate)
    app.router.add_post("/api/queue/add", _add)
    app.router.add_post("/api/queue/stop", _stop)
    app.router.add_post("/api/queue/pause", _pause)
    app.router.add_post("/api/queue/resume", _resume)
    app.router.add_post("/api/queue/requeue", _requeue)
    app.router.add_post("/api/queue/move", _move)
    app.router.add_get("/api/logs/{salIndex}", _logs)
    app.router.add_get("/api/results/{salIndex}", _results)
    app.router.add_get("/reports/{salIndex}", _report_redirect)
    app.router.add_get("/reports/{salIndex}/", _report_page)
    app.router.add_get("/reports/{salIndex}/{name}", _report_file)

    async def start_reports(app: web.Application) -> None:
        app[REPORTS_KEY].start()

    async def end_streams(app: web.Application) -> None:
        app[BRIDGE_KEY].end_subscriptions()

    async def close_reports(app: web.Application) -> None:
        await app[REPORTS_KEY].close()

    app.on_startup.append(start_reports)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(close_reports)
    return app


# --- middleware ---------------------------------------------------------------


def _is_page_path(request: web.Request) -> bool:
    """Is this a request for the page or its files (read by a person), not the API?"""
    return not request.path.startswith("/api/")


def _error_response(
    request: web.Request, status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """Answer an error: JSON ``{"error": message, ...}`` for the API, plain text for the page."""
    if _is_page_path(request):
        return web.Response(status=status, text=message + "\n", headers=headers)
    return _json_response({"error": message, **extra}, status=status, headers=headers)


@web.middleware
async def _error_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Turn every failure into an error answer that says what went wrong, never a traceback page."""
    try:
        return await handler(request)
    except ApiError as e:
        return _error_response(request, e.status, e.message, e.headers, **e.extra)
    except QueueCommandError as e:
        return _error_response(request, _QUEUE_ERROR_STATUS.get(e.reason, 502), str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise  # a redirection, not an error
        headers = {name: value for name, value in e.headers.items() if name.lower() == "allow"}
        if e.status == 404:
            message = f"Not found: {request.path}"
        elif e.status == 405:
            allowed = headers.get("Allow", "")
            message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
        else:
            message = e.text or e.reason
        return _error_response(request, e.status, message, headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client went away: nobody to answer
    except Exception as e:
        _log.exception("Failed to answer %s %s", request.method, request.path)
        return _error_response(
            request,
            500,
            f"The queue page's server failed to answer {request.method} {request.path}: "
            f"{type(e).__name__}: {e}",
        )


def _local_address(request: web.Request) -> tuple[str, int] | None:
    """Return the address and port the request's connection came in on, if known."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None


@web.middleware
async def _access_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Refuse requests for a ``Host`` this server does not serve, and those without the token.

    A page of another site can rename itself to this server's address (DNS
    rebinding): the browser then treats this server as that site, but still
    sends that site's name in ``Host``. Other users of the network, when
    the page is served beyond the loopback interface, do not have the
    token printed at start.
    """
    policy = request.app[ACCESS_KEY]
    local = _local_address(request)
    refusal = policy.host_refusal(request.headers.get(hdrs.HOST), local)
    if refusal is not None:
        raise ApiError(403, refusal)
    if policy.token is not None:
        query_token = request.query.get("token")
        presented = [token for token in request.query.getall("token", []) if token]
        cookie = policy.cookie_name(local[1]) if local is not None else None
        if cookie is not None and request.cookies.get(cookie):
            presented.append(request.cookies[cookie])
        scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
        if scheme.lower() == "token" and credentials.strip():
            presented.append(credentials.strip())
        if not policy.token_matches(presented):
            error = ApiError(
                401,
                ("The token given is not this server's. " if presented else "This page needs its token. ")
                + "Open the address that 'calibscripts ui' printed when it started "
                "(http://HOST:PORT/?token=...), or send the header 'Authorization: token TOKEN'. "
                "Lost it? Restart the page with --token TOKEN to choose one.",
            )
            error.headers["WWW-Authenticate"] = "token"
            raise error
        if query_token and cookie is not None and policy.token_matches([query_token]):
            request[_TOKEN_COOKIE_KEY] = cookie
    return await handler(request)


async def _prepare_response(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers, and the token cookie after a good ``?token=``."""
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    cookie = request.get(_TOKEN_COOKIE_KEY)
    token = request.app[ACCESS_KEY].token
    if cookie is not None and token is not None:
        # Added as a header: at this point the response's own cookies are already written out.
        morsel: http.cookies.Morsel[str] = http.cookies.Morsel()
        morsel.set(cookie, token, token)  # a checked token needs no quoting
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Strict"
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


@web.middleware
async def _command_guard_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Accept commands only as JSON from this server's own pages.

    A page of another site open in the operator's browser could otherwise
    post a form to this server on localhost and command the queue: a JSON
    body cannot be sent across sites without the browser asking first
    (which this server never allows), and a browser names the page's site
    in ``Origin``. Other requests naming another site in ``Origin`` (an
    event stream or a ``fetch`` from that site) are refused too.
    """
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None and origin.partition("://")[2] != request.host:
        what = "Commands" if request.method == "POST" else "Requests"
        raise ApiError(403, f"{what} from pages of {origin} are not accepted")
    if request.method == "POST" and request.content_type != "application/json":
        raise ApiError(415, f"Send commands as application/json, not {request.content_type}")
    return await handler(request)


# --- JSON ---------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Return ``value`` with every NaN or infinity a string, and every other value JSON's."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def dumps_json(value: Any) -> str:
    """Serialize ``value`` as strict JSON, as every answer and event of the page is.

    Parameters
    ----------
    value : `typing.Any`
        What to send.

    Returns
    -------
    text : `str`
        JSON that any parser accepts: NaN and infinities (which
        `json.dumps` would write as the invalid ``NaN`` and ``Infinity``)
        are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
        dates are ISO strings; other values not in JSON are their `str`.
    """
    try:
        return json.dumps(value, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(_json_safe(value), allow_nan=False)


def _json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps_json)


# --- request parsing ----------------------------------------------------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as e:  # not JSON, or not UTF-8
        raise ApiError(400, f"The request body is not valid JSON: {e}") from None
    except RecursionError:
        raise ApiError(400, "The request body is not valid JSON: it is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"The request body must be a JSON object, not {type(body).__name__}")
    return body


def _get(body: dict[str, Any], name: str, kind: type, default: Any = _REQUIRED) -> Any:
    """Return field ``name`` of a request body, checking its JSON type."""
    if name not in body:
        if default is _REQUIRED:
            raise ApiError(400, f"Missing field {name!r}")
        return default
    value = body[name]
    # JSON true is a Python int too: never accept one for the other.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"Field {name!r} must be a {kind.__name__}, not {value!r}")
    return value


def _get_location(body: dict[str, Any]) -> tuple[Location, int]:
    name = _get(body, "location", str, "LAST")
    try:
        location = Location[name.upper()]
    except KeyError:
        names = ", ".join(Location.__members__)
        raise ApiError(400, f"Unknown location {name!r}; use one of {names}") from None
    return location, _get(body, "locationSalIndex", int, 0)


def _query_bool(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0"):
        raise ApiError(400, f"Query parameter {name}={value!r} must be true or false")
    return value.lower() in ("true", "1")


# --- page and state -----------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def _snapshot(app: web.Application) -> dict[str, Any]:
    return {
        **app[BRIDGE_KEY].snapshot(),
        "suggestedOptions": app[SUGGESTED_OPTIONS_KEY],
        "results": app[REPORTS_KEY].snapshot(),
    }


async def _state(request: web.Request) -> web.StreamResponse:
    return _json_response(_snapshot(request.app))


async def _events(request: web.Request) -> web.StreamResponse:
    """Stream updates as server-sent events: a ``snapshot``, then every change."""
    bridge = request.app[BRIDGE_KEY]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    # Subscribe and take the snapshot with no await between: nothing is missed.
    subscription = bridge.subscribe()
    snapshot = _snapshot(request.app)
    try:
        await _send_event(response, "snapshot", snapshot)
        while True:
            try:
                async with asyncio.timeout(SSE_KEEPALIVE):
                    update = await subscription.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if update is None:
                break  # shutting down, or the page fell behind: it reconnects for a new snapshot
            await _send_event(response, update.kind, update.data)
    except ConnectionResetError:
        pass  # the page went away
    except Exception:
        # The answer has started: end the stream; the page reconnects for a new snapshot.
        _log.exception("The event stream failed")
    finally:
        bridge.unsubscribe(subscription)
    return response


async def _send_event(response: web.StreamResponse, kind: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {kind}\ndata: {dumps_json(data)}\n\n".encode())


async def _available_scripts(request: web.Request) -> web.StreamResponse:
    bridge = request.app[BRIDGE_KEY]
    available = bridge.available_json()
    if available is None or _query_bool(request, "refresh", False):
        available = await bridge.show_available_scripts()
    return _json_response(available)


async def _schema(request: web.Request) -> web.StreamResponse:
    path = request.query.get("path", "")
    if not path:
        raise ApiError(400, "Missing query parameter 'path'")
    is_standard = _query_bool(request, "isStandard", True)
    text = await request.app[BRIDGE_KEY].show_schema(
        is_standard, path, refresh=_query_bool(request, "refresh", False)
    )
    try:
        schema = parse_schema(text)
    except ValueError:
        schema = None  # shown as it is; checking a configuration says what is wrong with it
    options = list(schema.get("properties", {})) if schema is not None else []
    return _json_response(
        {
            "path": path,
            "isStandard": is_standard,
            "schema": text,
            "takesConfig": bool(text.strip()),
            "options": options,
        }
    )


async def _logs(request: web.Request) -> web.StreamResponse:
    try:
        sal_index = int(request.match_info["salIndex"])
    except ValueError:
        raise ApiError(400, f"{request.match_info['salIndex']!r} is not a SAL index") from None
    messages = request.app[BRIDGE_KEY].log_messages(sal_index)
    return _json_response({"salIndex": sal_index, "messages": messages})


# --- results and reports ----------------------------------------------------------

#: A report's figure file name (written by lsst.ts.calibscripts.report.build).
_REPORT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")


def _sal_index(request: web.Request) -> int:
    try:
        return int(request.match_info["salIndex"])
    except ValueError:
        raise ApiError(400, f"{request.match_info['salIndex']!r} is not a SAL index") from None


async def _results(request: web.Request) -> web.StreamResponse:
    sal_index = _sal_index(request)
    results = request.app[REPORTS_KEY].results(sal_index)
    if results is None:
        raise ApiError(404, f"Script {sal_index} has no results: its log named no output collection")
    return _json_response(results.to_json())


async def _report_redirect(request: web.Request) -> web.StreamResponse:
    # The figures are addressed relative to the page: it must end with a slash.
    raise web.HTTPFound(f"/reports/{_sal_index(request)}/")


_MAKING_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh}">
<title>Report of script {sal_index}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; }} .error {{ color: #a00; }}</style></head>
<body><h1>Report of script {sal_index}</h1><p id="report-state" class="{css}">{text}</p>
<p><a href="/">Back to the queue</a></p></body></html>
"""


async def _report_page(request: web.Request) -> web.StreamResponse:
    sal_index = _sal_index(request)
    reports = request.app[REPORTS_KEY]
    results = reports.request_report(sal_index)
    if results is None:
        raise ApiError(
            404,
            f"Script {sal_index} has no report: its log named no output collection "
            "(only calibration scripts have one, and only if this page followed them).",
        )
    page = reports.report_directory(sal_index) / "index.html"
    if results.state == "ready" and page.is_file():
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})
    if results.state == "failed":
        text, css, refresh, status = f"The report could not be made: {results.error}", "error", 3600, 500
    else:
        text, css, refresh, status = f"Making the report… {results.progress}", "", 1, 202
    body = _MAKING_PAGE.format(
        refresh=refresh, sal_index=sal_index, css=css, text=html.escape(text, quote=True)
    )
    return web.Response(
        status=status, text=body, content_type="text/html", headers={"Cache-Control": "no-cache"}
    )


async def _report_file(request: web.Request) -> web.StreamResponse:
    sal_index = _sal_index(request)
    name = request.match_info["name"]
    reports = request.app[REPORTS_KEY]
    results = reports.results(sal_index)
    path = reports.report_directory(sal_index) / name
    if results is None or results.state != "ready" or not _REPORT_FILE.match(name) or not path.is_file():
        raise ApiError(404, f"Not found: {request.path}")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


# --- configuration ------------------------------------------------------------


async def _check(bridge: QueueBridge, body: dict[str, Any]) -> ConfigCheck:
    """Check the configuration of a request against its script's schema."""
    path = _get(body, "path", str)
    is_standard = _get(body, "isStandard", bool, True)
    config = _get(body, "config", str, "")
    text = await bridge.show_schema(is_standard, path)
    try:
        schema = parse_schema(text)
    except ValueError as e:
        raise ApiError(502, f"{path}: {e}") from None
    except RecursionError:
        raise ApiError(502, f"{path}: the script's configuration schema is nested too deeply") from None
    try:
        # In a worker thread: a configuration slow to check must not stop the event loop.
        async with asyncio.timeout(CONFIG_CHECK_TIMEOUT):
            return await asyncio.to_thread(check_config, schema, config)
    except TimeoutError:
        message = (
            f"the configuration could not be checked in {CONFIG_CHECK_TIMEOUT:g} s; "
            "it is too large or too complex"
        )
    except Exception as e:
        # A fault of the checker, not of the operator: say what it is, never a traceback page.
        _log.exception("Checking a configuration of %s failed", path)
        message = f"the configuration could not be checked: {type(e).__name__}: {e}"
    return ConfigCheck(problems=[ConfigProblem(message)], options=[])


def _check_json(check: ConfigCheck) -> dict[str, Any]:
    return {
        "valid": check.valid,
        "problems": [dataclasses.asdict(problem) for problem in check.problems],
        "options": [dataclasses.asdict(option) for option in check.options],
    }


async def _validate(request: web.Request) -> web.StreamResponse:
    check = await _check(request.app[BRIDGE_KEY], await _json_body(request))
    return _json_response(_check_json(check))


# --- commands -----------------------------------------------------------------


async def _add(request: web.Request) -> web.StreamResponse:
    bridge = request.app[BRIDGE_KEY]
    body = await _json_body(request)
    check = await _check(bridge, body)
    if not check.valid:
        count = len(check.problems)
        raise ApiError(
            422,
            f"The configuration has {count} problem{'s' if count > 1 else ''}: "
            + "; ".join(problem.message for problem in check.problems),
            **_check_json(check),
        )
    location, location_sal_index = _get_location(body)
    script = ScriptRequest(
        is_standard=_get(body, "isStandard", bool, True),
        path=_get(body, "path", str),
        config=_get(body, "config", str, ""),
        descr=_get(body, "descr", str, ""),
        log_level=_get(body, "logLevel", int, 0),
        pause_checkpoint=_get(body, "pauseCheckpoint", str, ""),
        stop_checkpoint=_get(body, "stopCheckpoint", str, ""),
    )
    sal_index = await bridge.add(script, location=location, location_sal_index=location_sal_index)
    return _json_response({"salIndex": sal_index})


async def _stop(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    indices = _get(body, "salIndices", list)
    if not all(isinstance(index, int) and not isinstance(index, bool) for index in indices):
        raise ApiError(400, f"Field 'salIndices' must be a list of SAL indices, not {indices!r}")
    try:
        await request.app[BRIDGE_KEY].stop_scripts(indices, terminate=_get(body, "terminate", bool, False))
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return _json_response({})


async def _pause(request: web.Request) -> web.StreamResponse:
    await request.app[BRIDGE_KEY].pause()
    return _json_response({})


async def _resume(request: web.Request) -> web.StreamResponse:
    await request.app[BRIDGE_KEY].resume()
    return _json_response({})


async def _requeue(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    location, location_sal_index = _get_location(body)
    sal_index = await request.app[BRIDGE_KEY].requeue(
        _get(body, "salIndex", int), location=location, location_sal_index=location_sal_index
    )
    return _json_response({"salIndex": sal_index})


async def _move(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    location, location_sal_index = _get_location(body)
    await request.app[BRIDGE_KEY].move(
        _get(body, "salIndex", int), location=location, location_sal_index=location_sal_index
    )
    return _json_response({})
