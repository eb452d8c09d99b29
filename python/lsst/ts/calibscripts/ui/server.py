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
==================================  ===============================================

Errors are ``{"error": message}`` with 400 (bad request), 409 (the queue
refused: its reason), 415 (not JSON), 422 (invalid configuration, with
``problems``), 502 (the script's schema is unusable), 503 (the queue is not
running) or 504 (the queue did not answer).
"""

from __future__ import annotations

__all__ = ["BRIDGE_KEY", "STATIC_DIR", "SUGGESTED_OPTIONS_KEY", "make_app"]

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ..sal import Location
from .config_check import ConfigCheck, check_config, parse_schema
from .queue_bridge import QueueBridge, QueueCommandError

#: Files of the page, served as they are (no build step).
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The application's `QueueBridge`.
BRIDGE_KEY = web.AppKey("bridge", QueueBridge)
#: Option values the page pre-fills in an empty CONFIG (see `make_app`).
SUGGESTED_OPTIONS_KEY = web.AppKey("suggested_options", dict[str, Any])
#: Interval of keep-alive comments on an idle event stream (s): proxies and
#: browsers keep the connection, and a gone page is noticed.
SSE_KEEPALIVE = 15.0

_QUEUE_ERROR_STATUS = {"refused": 409, "unavailable": 503, "timeout": 504}
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUIRED: Any = object()


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


def make_app(bridge: QueueBridge, *, suggested_options: Mapping[str, Any] | None = None) -> web.Application:
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

    Returns
    -------
    app : `aiohttp.web.Application`
        The application; its shutdown ends the open event streams.
    """
    app = web.Application(middlewares=[_error_middleware, _command_guard_middleware])
    app[BRIDGE_KEY] = bridge
    app[SUGGESTED_OPTIONS_KEY] = dict(suggested_options or {})
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

    async def end_streams(app: web.Application) -> None:
        app[BRIDGE_KEY].end_subscriptions()

    app.on_shutdown.append(end_streams)
    return app


# --- middleware ---------------------------------------------------------------


@web.middleware
async def _error_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return web.json_response({"error": e.message, **e.extra}, status=e.status)
    except QueueCommandError as e:
        return web.json_response({"error": str(e)}, status=_QUEUE_ERROR_STATUS[e.reason])


@web.middleware
async def _command_guard_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Accept commands only as JSON from this server's own pages.

    A page of another site open in the operator's browser could otherwise
    post a form to this server on localhost and command the queue: a JSON
    body cannot be sent across sites without the browser asking first
    (which this server never allows), and a browser names the page's site
    in ``Origin``.
    """
    if request.method == "POST":
        if request.content_type != "application/json":
            raise ApiError(415, f"Send commands as application/json, not {request.content_type}")
        origin = request.headers.get("Origin")
        if origin is not None and origin.partition("://")[2] != request.host:
            raise ApiError(403, f"Commands from pages of {origin} are not accepted")
    return await handler(request)


# --- request parsing ----------------------------------------------------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as e:
        raise ApiError(400, f"The request body is not valid JSON: {e}") from None
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
    return {**app[BRIDGE_KEY].snapshot(), "suggestedOptions": app[SUGGESTED_OPTIONS_KEY]}


async def _state(request: web.Request) -> web.StreamResponse:
    return web.json_response(_snapshot(request.app))


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
    finally:
        bridge.unsubscribe(subscription)
    return response


async def _send_event(response: web.StreamResponse, kind: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())


async def _available_scripts(request: web.Request) -> web.StreamResponse:
    bridge = request.app[BRIDGE_KEY]
    available = bridge.available_json()
    if available is None or _query_bool(request, "refresh", False):
        available = await bridge.show_available_scripts()
    return web.json_response(available)


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
    return web.json_response(
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
    return web.json_response({"salIndex": sal_index, "messages": messages})


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
    return check_config(schema, config)


def _check_json(check: ConfigCheck) -> dict[str, Any]:
    return {
        "valid": check.valid,
        "problems": [dataclasses.asdict(problem) for problem in check.problems],
        "options": [dataclasses.asdict(option) for option in check.options],
    }


async def _validate(request: web.Request) -> web.StreamResponse:
    check = await _check(request.app[BRIDGE_KEY], await _json_body(request))
    return web.json_response(_check_json(check))


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
    sal_index = await bridge.add(
        is_standard=_get(body, "isStandard", bool, True),
        path=_get(body, "path", str),
        config=_get(body, "config", str, ""),
        descr=_get(body, "descr", str, ""),
        location=location,
        location_sal_index=location_sal_index,
        log_level=_get(body, "logLevel", int, 0),
        pause_checkpoint=_get(body, "pauseCheckpoint", str, ""),
        stop_checkpoint=_get(body, "stopCheckpoint", str, ""),
    )
    return web.json_response({"salIndex": sal_index})


async def _stop(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    indices = _get(body, "salIndices", list)
    if not all(isinstance(index, int) and not isinstance(index, bool) for index in indices):
        raise ApiError(400, f"Field 'salIndices' must be a list of SAL indices, not {indices!r}")
    try:
        await request.app[BRIDGE_KEY].stop_scripts(indices, terminate=_get(body, "terminate", bool, False))
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return web.json_response({})


async def _pause(request: web.Request) -> web.StreamResponse:
    await request.app[BRIDGE_KEY].pause()
    return web.json_response({})


async def _resume(request: web.Request) -> web.StreamResponse:
    await request.app[BRIDGE_KEY].resume()
    return web.json_response({})


async def _requeue(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    location, location_sal_index = _get_location(body)
    sal_index = await request.app[BRIDGE_KEY].requeue(
        _get(body, "salIndex", int), location=location, location_sal_index=location_sal_index
    )
    return web.json_response({"salIndex": sal_index})


async def _move(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    location, location_sal_index = _get_location(body)
    await request.app[BRIDGE_KEY].move(
        _get(body, "salIndex", int), location=location, location_sal_index=location_sal_index
    )
    return web.json_response({})
