"""ReportService: the results of each calibration script on the queue page, and its report.

The page knows a script only by its events and its log. A calibration
script's log names the output collection of every OCPS job it ran
("OCPS job ... finished: bias verification -> u/ocps/..."), the verification
reports and the final summary name them again
(`lsst.ts.calibscripts.report.sources.collections_from_log`). From these the
service

* reads each verification as soon as its job finishes (the majority rule's
  numbers and verdict, the failed tests per test type), so that the page
  shows the running script's results as they arrive;
* makes the script's report (`lsst.ts.calibscripts.report.build.make_report`)
  when the script ends, or when the report is first opened, one report at
  a time in a worker thread, saying what it is doing.

The repository is the ``repo`` of the script's configuration when the
script was added from this page, else the one the page was started with
(the simulated observatory's).

Every change is handed to the page as a ``results`` update through the
`QueueBridge`.
"""

from __future__ import annotations

__all__ = ["ReportService", "ScriptResults"]

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml

from ..sal import ScriptProcessState, ScriptState
from .queue_bridge import QueueBridge, Subscription, Update

#: Default of ``number_verification_tests_threshold_<type>``.
DEFAULT_THRESHOLD = 8
#: Process states of a script whose process has ended.
_ENDED_PROCESS_STATES = {
    ScriptProcessState.DONE.name,
    ScriptProcessState.TERMINATED.name,
    ScriptProcessState.LOADFAILED.name,
    ScriptProcessState.CONFIGURE_FAILED.name,
}

ReportState = Literal["none", "waiting", "making", "ready", "failed"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class ScriptResults:
    """What the page shows of one script's results.

    Attributes
    ----------
    sal_index : `int`
        The script.
    collections : `list` [`str`]
        Output collections its log named, in order.
    generations : `dict` [`str`, `str`]
        Image type -> generation collection, from its finished jobs.
    verifications : `dict` [`str`, `dict`]
        Image type -> the verification's summary (JSON), as each arrives.
    finished : `bool`
        Has the script ended?
    state : `str`
        Its report: ``none`` (not asked for), ``waiting`` (for another
        report to be made), ``making``, ``ready`` or ``failed``.
    progress : `str`
        What the report maker is doing (or did last).
    error : `str`
        Why the report could not be made.
    made_from : `tuple` [`str`, ...]
        The collections of the report made (or being made); a report asked
        for again after the script named more is made again.
    """

    sal_index: int
    collections: list[str] = dataclasses.field(default_factory=list)
    generations: dict[str, str] = dataclasses.field(default_factory=dict)
    verifications: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    finished: bool = False
    state: ReportState = "none"
    progress: str = ""
    error: str = ""
    made_from: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """Where the page serves the report."""
        return f"/reports/{self.sal_index}/"

    def to_json(self) -> dict[str, Any]:
        """Return the results as the page reads them."""
        return {
            "salIndex": self.sal_index,
            "collections": list(self.collections),
            "verifications": [self.verifications[key] for key in sorted(self.verifications, key=_type_order)],
            "finished": self.finished,
            "report": {"state": self.state, "progress": self.progress, "error": self.error, "url": self.url},
        }


def _type_order(image_type: str) -> int:
    order = ("BIAS", "DARK", "FLAT")
    return order.index(image_type) if image_type in order else len(order)


class ReportService:
    """Follow the scripts' logs through a bridge; read their results; make their reports.

    Parameters
    ----------
    bridge : `QueueBridge`
        The page's bridge to the queue.
    default_repo : `str`, optional
        Repository of scripts whose configuration this page did not see
        (e.g. the simulated observatory's).
    directory : `pathlib.Path`, optional
        Where reports are written (``script-<salIndex>/``); a temporary
        directory removed at `close` by default.
    """

    def __init__(
        self, bridge: QueueBridge, *, default_repo: str | None = None, directory: Path | None = None
    ) -> None:
        self.bridge = bridge
        self.default_repo = default_repo
        self._own_directory = directory is None
        self._directory = directory
        self._results: dict[int, ScriptResults] = {}
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self._report_lock = asyncio.Lock()

    # --- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Start following the bridge's updates."""
        if self._follower is None:
            self._subscription = self.bridge.subscribe()
            self._follower = asyncio.create_task(self._follow(self._subscription))

    async def close(self) -> None:
        """Stop; remove the reports if they are in a temporary directory. Idempotent."""
        if self._subscription is not None:
            self.bridge.unsubscribe(self._subscription)
        tasks = [*self._tasks, *([self._follower] if self._follower is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._follower = None
        if self._own_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @property
    def directory(self) -> Path:
        """Where the reports are written (created when first needed)."""
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="calibscripts-reports-"))
        return self._directory

    # --- what the page asks -----------------------------------------------------------

    def results(self, sal_index: int) -> ScriptResults | None:
        """Return what is known of a script's results, or None."""
        return self._results.get(sal_index)

    def snapshot(self) -> list[dict[str, Any]]:
        """Return the results of every script that has some."""
        return [results.to_json() for results in self._results.values()]

    def report_directory(self, sal_index: int) -> Path:
        """Return the directory of a script's report."""
        return self.directory / f"script-{sal_index}"

    def request_report(self, sal_index: int) -> ScriptResults | None:
        """Ask for a script's report: start making it unless it is made or being made.

        Returns
        -------
        results : `ScriptResults` or None
            The script's results (its report's state), or None if its log
            named no collection: it has no report.
        """
        results = self._results.get(sal_index)
        if results is None or not results.collections:
            return None
        outdated = results.state == "ready" and (
            results.made_from != tuple(results.collections)
            or not (self.report_directory(sal_index) / "index.html").is_file()
        )
        if results.state in ("none", "failed") or outdated:
            # Set now, so that a second request before the task starts makes no second report.
            results.state = "waiting"
            results.progress = "Waiting for another report to be made"
            results.error = ""
            self._announce(results)
            self._spawn(self._make_report(results))
        return results

    # --- following ------------------------------------------------------------------

    async def _follow(self, subscription: Subscription) -> None:
        while (update := await subscription.get()) is not None:
            try:
                self._on_update(update)
            except Exception:
                _log.exception("Could not follow a %s update", update.kind)

    def _on_update(self, update: Update) -> None:
        if update.kind == "log":
            self._on_log(update.data)
        elif update.kind == "script":
            self._on_script(update.data)

    def _on_log(self, message: dict[str, Any]) -> None:
        from ..report.sources import collections_from_log, jobs_from_log

        sal_index = int(message["salIndex"])
        if sal_index == self.bridge.index:
            return  # the queue's own log
        text = str(message.get("message", ""))
        found = collections_from_log([text])
        if not found:
            return
        results = self._results.setdefault(sal_index, ScriptResults(sal_index))
        changed = False
        for collection in found:
            if collection not in results.collections:
                results.collections.append(collection)
                changed = True
        for _, what, collection in jobs_from_log([text]):
            image_type, _, purpose = what.partition(" ")
            if purpose == "generation":
                results.generations[image_type.upper()] = collection
            elif purpose == "verification" and image_type.upper() in ("BIAS", "DARK", "FLAT"):
                self._spawn(self._read_verification(results, image_type.upper(), collection))
        if changed:
            self._announce(results)

    def _on_script(self, script: dict[str, Any]) -> None:
        results = self._results.get(int(script["salIndex"]))
        if results is None or results.finished:
            return
        state = script.get("scriptState", "")
        ended = (state in ScriptState.__members__ and ScriptState[state].is_terminal) or script.get(
            "processState"
        ) in _ENDED_PROCESS_STATES
        if ended:
            results.finished = True
            self._announce(results)
            # Made when the script ends: the report is ready when the operator opens it.
            self.request_report(results.sal_index)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _announce(self, results: ScriptResults) -> None:
        self.bridge.publish("results", results.to_json())

    # --- reading and making --------------------------------------------------------

    def _config(self, sal_index: int) -> dict[str, Any]:
        text = self.bridge.script_config(sal_index)
        if not text:
            return {}
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}
        return config if isinstance(config, dict) else {}

    def _repo(self, sal_index: int) -> str | None:
        repo = self._config(sal_index).get("repo")
        return str(repo) if repo else self.default_repo

    def _thresholds(self, sal_index: int) -> dict[str, int]:
        config = self._config(sal_index)
        thresholds = {}
        for image_type in ("BIAS", "DARK", "FLAT"):
            value = config.get(f"number_verification_tests_threshold_{image_type.lower()}", DEFAULT_THRESHOLD)
            thresholds[image_type] = int(value) if isinstance(value, int) else DEFAULT_THRESHOLD
        return thresholds

    async def _read_verification(self, results: ScriptResults, image_type: str, collection: str) -> None:
        repo = self._repo(results.sal_index)
        if repo is None:
            return
        threshold = self._thresholds(results.sal_index)[image_type]
        generation = results.generations.get(image_type)
        try:
            summary = await asyncio.to_thread(
                _verification_json, repo, image_type, collection, generation, threshold
            )
        except Exception as e:
            summary = {"imageType": image_type, "collection": collection, "error": f"{type(e).__name__}: {e}"}
        results.verifications[image_type] = summary
        self._announce(results)

    async def _make_report(self, results: ScriptResults) -> None:
        from ..report.build import make_report

        repo = self._repo(results.sal_index)
        if repo is None:
            results.state = "failed"
            results.error = (
                "the script's repository is unknown: add it from this page (its config's repo), "
                "or start the page with --simulate"
            )
            self._announce(results)
            return
        loop = asyncio.get_running_loop()

        def progress(message: str) -> None:
            loop.call_soon_threadsafe(self._progress, results, message)

        async with self._report_lock:
            results.state = "making"
            results.made_from = tuple(results.collections)
            self._announce(results)
            try:
                await asyncio.to_thread(
                    make_report,
                    repo,
                    list(results.made_from),
                    self.report_directory(results.sal_index),
                    threshold=self._thresholds(results.sal_index),
                    progress=progress,
                )
            except Exception as e:
                _log.warning("The report of script %s failed: %s", results.sal_index, e)
                results.state = "failed"
                results.error = f"{type(e).__name__}: {e}"
            else:
                results.state = "ready"
        self._announce(results)

    def _progress(self, results: ScriptResults, message: str) -> None:
        results.progress = message
        self._announce(results)


def _verification_json(
    repo: str, image_type: str, collection: str, generation: str | None, threshold: int
) -> dict[str, Any]:
    """Read one verification (in a worker thread) and summarize it for the page."""
    from lsst.daf.butler import Butler

    from ..report.extract import extract_verification

    with Butler.from_config(repo) as butler:
        summary = extract_verification(
            butler, image_type, collection, generation_collection=generation, threshold=threshold
        )
    outcome = summary.outcome
    failed_tests: dict[str, int] = {}
    for row in summary.failed_rows:
        failed_tests[row.test] = failed_tests.get(row.test, 0) + 1
    return {
        "imageType": image_type,
        "collection": collection,
        "exposures": len(summary.exposures),
        "withFailures": len(outcome.exposures_with_failures),
        "failedExposures": list(outcome.failed_exposures),
        "maxFailedExposures": outcome.max_failed_exposures,
        "accepted": outcome.accepted,
        "allPassed": outcome.all_passed,
        "verdict": summary.verdict,
        "failedTests": dict(sorted(failed_tests.items())),
    }
