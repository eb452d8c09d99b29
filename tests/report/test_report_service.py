"""ReportService without a queue: what it takes from scripts' logs and states (no repository needed)."""

from __future__ import annotations

import asyncio
from typing import Any

from lsst.ts.calibscripts.ui.queue_bridge import Subscription, Update
from lsst.ts.calibscripts.ui.reports import ReportService


class FakeBridge:
    """The parts of QueueBridge the service uses."""

    index = 2

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.configs: dict[int, str] = {}
        self.subscription: Subscription | None = None

    def subscribe(self) -> Subscription:
        self.subscription = Subscription()
        return self.subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.published.append((kind, data))

    def script_config(self, sal_index: int) -> str | None:
        return self.configs.get(sal_index)


def log(sal_index: int, message: str) -> Update:
    return Update("log", {"salIndex": sal_index, "message": message})


def state(sal_index: int, script_state: str, process_state: str = "RUNNING") -> Update:
    return Update(
        "script", {"salIndex": sal_index, "scriptState": script_state, "processState": process_state}
    )


async def settle(service: ReportService) -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_results_from_the_log_and_a_report_when_the_script_ends() -> None:
    bridge = FakeBridge()
    service = ReportService(bridge)  # type: ignore[arg-type]
    service.start()
    try:
        assert bridge.subscription is not None
        for update in (
            log(2, "OCPS job q finished: bias generation -> u/ocps/queue"),  # the queue's own log
            log(200001, "Reached checkpoint one"),
            log(200002, "OCPS job a1 started: bias generation (cpBias.yaml)"),
            log(200002, "OCPS job a1 finished: bias generation -> u/ocps/a1"),
            log(200002, "Final summary:\nBIAS:\n    generation collection: u/ocps/a1\n    certified: no"),
            state(200001, "DONE", "DONE"),
            state(200002, "RUNNING"),
        ):
            bridge.subscription.put(update)
        await settle(service)
        assert service.results(2) is None and service.results(200001) is None
        assert service.request_report(200001) is None
        results = service.results(200002)
        assert results is not None and results.collections == ["u/ocps/a1"]
        assert results.generations == {"BIAS": "u/ocps/a1"} and not results.finished
        assert results.state == "none"
        # It ends: its report is asked for, and fails at once: no repository is known.
        bridge.subscription.put(state(200002, "FAILED", "DONE"))
        await settle(service)
        assert results.finished and results.state == "failed"
        assert "repository is unknown" in results.error
        assert results.to_json()["report"] == {
            "state": "failed",
            "progress": "Waiting for another report to be made",
            "error": results.error,
            "url": "/reports/200002/",
        }
        assert [kind for kind, _ in bridge.published] == ["results"] * len(bridge.published)
        assert [data["salIndex"] for _, data in bridge.published] == [200002] * len(bridge.published)
        assert service.snapshot() == [results.to_json()]
    finally:
        await service.close()


async def test_repository_and_thresholds_from_the_scripts_configuration() -> None:
    bridge = FakeBridge()
    bridge.configs[200003] = "repo: /data/repo\nnumber_verification_tests_threshold_dark: 4\n"
    bridge.configs[200004] = "not: [valid"
    service = ReportService(bridge, default_repo="/sim/repo")  # type: ignore[arg-type]
    assert service._repo(200003) == "/data/repo"
    assert service._repo(200004) == "/sim/repo"
    assert service._repo(200005) == "/sim/repo"
    assert service._thresholds(200003) == {"BIAS": 8, "DARK": 4, "FLAT": 8}
    await service.close()
