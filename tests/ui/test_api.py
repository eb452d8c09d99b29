"""The queue page's API, with the queue in this process: what the page shows and does."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import ScriptQueue, ScriptRequest
from lsst.ts.calibscripts.script.sleep_script import SleepScript
from lsst.ts.calibscripts.ui.queue_bridge import QueueBridge
from lsst.ts.calibscripts.ui.server import make_app

from .page_client import PageClient

QUICK = "checkpoints: [one, two]\n"
# Pauses at checkpoint "hold" until resumed or stopped: certainly running when the test acts.
HOLD: dict[str, Any] = {"config": "checkpoints: [hold, after]\n", "pauseCheckpoint": "hold"}


async def test_page_and_its_files_are_served(page: PageClient) -> None:
    response = await page.client.get("/")
    assert response.status == 200
    assert "Available scripts" in await response.text()
    for name, content_type in (("app.js", "javascript"), ("style.css", "text/css")):
        response = await page.client.get(f"/static/{name}")
        assert response.status == 200
        assert content_type in response.headers["Content-Type"]


async def test_state_names_the_queue_and_its_scripts(page: PageClient) -> None:
    state = await page.get("/api/state")
    assert state["queue"] | {"alive": True} == {
        "name": "ATQueue",
        "salIndex": 2,
        "summaryState": "ENABLED",
        "alive": True,
        "enabled": True,
        "running": True,
        "currentSalIndex": 0,
        "waiting": [],
        "past": [],
    }
    assert state["suggestedOptions"] == {}
    available = await page.get("/api/available-scripts")
    assert {"examples/sleep.py", "auxtel/make_latiss_calibrations.py", "maintel/make_comcam_bias.py"} <= set(
        available["standard"]
    )
    assert available["external"] == []


async def test_schema_comes_from_the_script(page: PageClient) -> None:
    answer = await page.get("/api/schema?path=examples/sleep.py&isStandard=true")
    assert (answer["path"], answer["isStandard"], answer["takesConfig"]) == ("examples/sleep.py", True, True)
    assert yaml.safe_load(answer["schema"]) == SleepScript.get_schema()
    assert answer["options"] == ["checkpoints", "sleep_time", "fail_run", "fail_cleanup", "report"]

    missing = await page.get("/api/schema?path=no/such.py", status=409)
    assert "No script 'no/such.py'" in missing["error"]
    no_path = await page.get("/api/schema", status=400)
    assert no_path["error"] == "Missing query parameter 'path'"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "checkpoints: [a]\nsleep_time: 1\nsleep_time: 2\n",
            [(3, "sleep_time", "duplicated key 'sleep_time' (first given on line 2)")],
        ),
        (
            "checkpoints: [a]\nchekpoints: [b]\n",
            [(2, "chekpoints", "unknown config option 'chekpoints'; did you mean 'checkpoints'?")],
        ),
        (
            "sleep_time: soon\nreport:\n  level: LOUD\n",
            [
                (3, "report.level", "'LOUD' is not one of ['DEBUG', 'INFO', 'WARNING', 'ERROR']"),
                (1, "sleep_time", "'soon' is not of type 'number'"),
            ],
        ),
        ("checkpoints: [a]\nfail_run=true\n", [(2, "fail_run", "write fail_run: true")]),
        ("checkpoints: [a\n", [(2, "", "configuration is not valid YAML")]),
    ],
)
async def test_validation_locates_each_problem(
    page: PageClient, config: str, expected: list[tuple[int, str, str]]
) -> None:
    check = await page.post("/api/config/validate", {"path": "examples/sleep.py", "config": config})
    assert check["valid"] is False
    assert check["options"] == []
    problems = check["problems"]
    assert [(p["line"], p["option"]) for p in problems] == [(line, option) for line, option, _ in expected]
    for problem, (line, _, text) in zip(problems, expected, strict=True):
        assert problem["message"].startswith(f"line {line}")
        assert text in problem["message"]


async def test_valid_config_shows_every_option_and_its_source(page: PageClient) -> None:
    config = "metadata: {note: ignored like the script does}\nsleep_time: 0.5\ncheckpoints: [a, b]\n"
    check = await page.post("/api/config/validate", {"path": "examples/sleep.py", "config": config})
    assert check == {
        "valid": True,
        "problems": [],
        "options": [
            {"option": "checkpoints", "value": ["a", "b"], "source": "config"},
            {"option": "sleep_time", "value": 0.5, "source": "config"},
            {"option": "fail_run", "value": False, "source": "default"},
            {"option": "fail_cleanup", "value": False, "source": "default"},
            {
                "option": "report",
                "value": {"level": "INFO", "prefix": "Reached checkpoint"},
                "source": "default",
            },
        ],
    }


async def test_added_script_runs_to_done_with_its_log(page: PageClient) -> None:
    answer = await page.add(QUICK + "sleep_time: 0.01\nreport: {level: WARNING}\n", descr="API test")
    index = answer["salIndex"]
    assert index == 200001
    await page.wait_script(index, "DONE")
    script = await page.wait_script(index, "DONE", field="processState")
    await page.wait_for(lambda: index in page.queue["past"] and page.queue["currentSalIndex"] == 0, "the end")
    assert script["path"] == "examples/sleep.py"
    assert (script["lastCheckpoint"], script["numCheckpoints"], script["totalCheckpoints"]) == ("two", 2, 2)
    assert script["duration"] == pytest.approx(0.02)
    assert script["classname"] == "SleepScript"
    assert 0 < script["timestampRunStart"] <= script["timestampProcessEnd"]

    log = (await page.get(f"/api/logs/{index}"))["messages"]
    assert [(m["levelName"], m["message"]) for m in log] == [
        ("WARNING", "Reached checkpoint one"),
        ("WARNING", "Reached checkpoint two"),
    ]
    assert [m["seq"] for m in log] == sorted(m["seq"] for m in log)
    assert page.log_of(index) == ["Reached checkpoint one", "Reached checkpoint two"]
    # The queue's own log is kept under its index.
    queue_log = (await page.get("/api/logs/2"))["messages"]
    assert any("Running Script:200001" in m["message"] for m in queue_log)


async def test_invalid_config_is_not_sent_to_the_queue(page: PageClient, queue: ScriptQueue) -> None:
    answer = await page.add("checkpoints: [a]\nsleep_time: -1\n", status=422)
    assert answer["error"].startswith("The configuration has 1 problem: line 2: config option 'sleep_time'")
    assert [(p["line"], p["option"]) for p in answer["problems"]] == [(2, "sleep_time")]
    assert queue.model.queue == [] and queue.model.history == []


async def test_queue_refusal_is_reported_with_its_reason(page: PageClient) -> None:
    answer = await page.add(QUICK, isStandard=False, status=409)
    assert answer["error"] == "No external scripts directory: cannot find external script 'examples/sleep.py'"


async def test_pause_stop_resume(page: PageClient) -> None:
    await page.post("/api/queue/pause")
    await page.wait_for(lambda: page.queue["running"] is False, "the queue to pause")
    waiting = (await page.add(QUICK))["salIndex"]
    await page.wait_for(lambda: page.queue["waiting"] == [waiting], "the script to wait")
    await page.wait_script(waiting, "CONFIGURED")
    await page.post("/api/queue/stop", {"salIndices": [waiting]})
    await page.wait_for(lambda: page.queue["waiting"] == [], "the waiting script to leave")

    held = (await page.add(HOLD["config"], pauseCheckpoint=HOLD["pauseCheckpoint"]))["salIndex"]
    await page.post("/api/queue/resume")
    script = await page.wait_script(held, "PAUSED")
    assert script["lastCheckpoint"] == "hold"
    assert page.queue["currentSalIndex"] == held
    await page.post("/api/queue/stop", {"salIndices": [held], "terminate": False})
    await page.wait_script(held, "STOPPED")
    await page.wait_script(held, "DONE", field="processState")


async def test_move_and_requeue(page: PageClient) -> None:
    await page.post("/api/queue/pause")
    first = (await page.add(QUICK))["salIndex"]
    second = (await page.add(QUICK))["salIndex"]
    await page.post("/api/queue/move", {"salIndex": second, "location": "FIRST"})
    await page.wait_for(lambda: page.queue["waiting"] == [second, first], "the move")
    copy = (await page.post("/api/queue/requeue", {"salIndex": first, "location": "AFTER",
                                                   "locationSalIndex": second}))["salIndex"]  # fmt: skip
    await page.wait_for(lambda: page.queue["waiting"] == [second, copy, first], "the copy")
    await page.post("/api/queue/resume")
    for index in (first, second, copy):
        await page.wait_script(index, "DONE")
    assert page.scripts[copy]["path"] == "examples/sleep.py"

    bad = await page.post("/api/queue/move", {"salIndex": first, "location": "FIRST"}, status=409)
    assert "only waiting scripts can be moved" in bad["error"]


async def test_failure_halts_the_queue_and_says_why(page: PageClient) -> None:
    index = (await page.add("checkpoints: [a]\nfail_run: true\n"))["salIndex"]
    script = await page.wait_script(index, "FAILED")
    assert "fail_run is true" in script["reason"]
    await page.wait_for(lambda: page.queue["running"] is False, "the queue to halt")
    await page.wait_for(
        lambda: any("the queue is paused" in m for m in page.log_of(2)), "the queue's warning"
    )
    errors = [m for m in (await page.get(f"/api/logs/{index}"))["messages"] if m["levelName"] == "ERROR"]
    assert errors and "fail_run is true" in errors[0]["traceback"]


async def test_a_late_page_gets_everything_in_its_snapshot(page: PageClient) -> None:
    index = (await page.add(QUICK))["salIndex"]
    await page.wait_for(lambda: page.queue["past"] == [index], "the script to finish")
    late = PageClient(page.client)
    await late.connect()
    try:
        assert late.scripts[index]["scriptState"] == "DONE"
        assert late.queue["past"] == [index]
        assert late.available is not None and "examples/sleep.py" in late.available["standard"]
    finally:
        await late.close()


async def test_a_bridge_started_later_asks_for_earlier_scripts(queue: ScriptQueue) -> None:
    async with sal.Domain() as domain:
        async with QueueBridge(domain, 2) as first:
            index = await first.add(ScriptRequest(is_standard=True, path="examples/sleep.py", config=QUICK))
            subscription = first.subscribe()
            while (view := first.script_view(index)) is None or view.processState.name != "DONE":
                assert await subscription.get() is not None
        async with QueueBridge(domain, 2) as late, TestClient(TestServer(make_app(late))) as client:
            page = PageClient(client)
            await page.connect()
            try:
                await page.wait_for(
                    lambda: page.scripts.get(index, {}).get("path") == "examples/sleep.py", "it"
                )
                assert page.scripts[index]["processState"] == "DONE"
            finally:
                await page.close()


async def test_commands_must_be_json_from_this_site(page: PageClient) -> None:
    response = await page.client.post("/api/queue/pause", data="x")
    assert response.status == 415
    response = await page.client.post("/api/queue/pause", json={}, headers={"Origin": "http://evil.example"})
    assert response.status == 403
    assert (await response.json())["error"] == "Commands from pages of http://evil.example are not accepted"
    bad_type = await page.post("/api/queue/stop", {"salIndices": [True]}, status=400)
    assert "list of SAL indices" in bad_type["error"]
    missing = await page.post("/api/queue/requeue", {}, status=400)
    assert missing["error"] == "Missing field 'salIndex'"
    bad_location = await page.post("/api/queue/move", {"salIndex": 1, "location": "MIDDLE"}, status=400)
    assert bad_location["error"] == "Unknown location 'MIDDLE'; use one of FIRST, LAST, BEFORE, AFTER"
    assert page.queue["running"] is True  # nothing got through


async def test_a_queue_that_is_not_running_is_reported_at_once(local_transport: None) -> None:
    async with (
        sal.Domain() as domain,
        QueueBridge(domain, 1, name="MTQueue") as bridge,
        TestClient(TestServer(make_app(bridge))) as client,
    ):
        page = PageClient(client)
        assert (await page.get("/api/state"))["queue"]["alive"] is False
        answer = await page.post("/api/queue/pause", status=503)
        assert answer["error"].startswith("MTQueue (ScriptQueue:1) is not running: no heartbeat seen")
