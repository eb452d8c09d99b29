"""The queue page: a calibration script's verification results as they arrive, and its report.

The script is the sleep example, writing in its log what a calibration
script writes when its OCPS jobs finish ("OCPS job ... finished: bias
verification -> u/..."), naming the collections of the report repository:
the page reads each verification as it is announced, and makes the report
when the script ends. Then, in headless Chromium: the running script shows
its verifications, the finished one links to its report.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from selenium import webdriver
from selenium.webdriver.remote.webdriver import WebDriver

from lsst.ts.calibscripts.ui.queue_bridge import QueueBridge
from lsst.ts.calibscripts.ui.server import make_app

from ..ui.conftest import bridge, local_transport, queue
from ..ui.page_client import TIMEOUT, PageClient
from ..ui.test_browser import browser, wait
from .report_repository import ReportRepository
from .test_report_page import save_screenshot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None or shutil.which("chromedriver") is None,
        reason="headless browser test needs Chromium and ChromeDriver "
        "(Debian: apt-get install chromium chromium-driver)",
    ),
]

__all__ = ["bridge", "browser", "local_transport", "queue"]  # fixtures of the queue page's tests

#: What each job of a calibration run was for, and its key in ReportRepository.collections.
JOBS = (
    ("bias generation", "bias"),
    ("bias verification", "verifyBias"),
    ("dark generation", "dark"),
    ("dark verification", "verifyDark"),
    ("flat generation", "flat"),
    ("flat verification", "verifyFlat"),
    ("ptc from flat pairs", "ptc"),
    ("defects generation", "defects"),
)


async def results_of(client: TestClient, sal_index: int, ready: Any, what: str) -> dict[str, Any]:
    """Poll ``/api/results/<salIndex>`` until ``ready(results)``."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            response = await client.get(f"/api/results/{sal_index}")
            if response.status == 200:
                results = await response.json()
                if ready(results):
                    return results
            await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")  # pragma: no cover


def query(driver: WebDriver, selector: str) -> dict[str, str] | None:
    """Class, text and link of the first element matching ``selector``, read at once.

    The page redraws its lists at every update: an element found one moment
    may be gone the next.
    """
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e && {className: e.className, text: e.textContent, href: e.href || ''};",
        selector,
    )
    return dict(found) if found else None


def operate(driver: WebDriver, url: str, sal_index: int, tmp_path: Path) -> None:
    """What an operator sees (in a worker thread: the page's server runs in the test's loop)."""
    driver.get(url)
    results = "#current-script #verification-results"
    wait(driver, lambda d: query(d, f'{results} tr[data-image-type="BIAS"]'), "the BIAS verification")
    state = query(driver, "#current-script .badge")
    assert state is not None and state["text"] == "RUNNING", state
    wait(driver, lambda d: query(d, f'{results} tr[data-image-type="DARK"]'), "the DARK verification")
    dark = query(driver, f'{results} tr[data-image-type="DARK"]')
    assert dark is not None and "fail" in dark["className"].split(), dark
    assert "DARK calibration failed verification" in dark["text"]
    save_screenshot(driver, tmp_path / "queue-page-results.png")
    link = f'#finished-list li[data-sal-index="{sal_index}"] a.report-link'
    wait(driver, lambda d: (query(d, link) or {}).get("text") == "Report", "the report link")
    found = query(driver, link)
    assert found is not None and found["href"] == f"{url}reports/{sal_index}/", found
    save_screenshot(driver, tmp_path / "queue-page-report-link.png")
    driver.get(found["href"])
    wait(driver, lambda d: query(d, "#verification-dark"), "the report")
    assert driver.title == "Calibration report: LATISS"


async def test_results_as_they_arrive_and_the_report_link(
    report_repository: ReportRepository, bridge: QueueBridge, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    c = report_repository.collections
    config = yaml.safe_dump(
        {
            "checkpoints": [f"finished: {what} -> {c[key]}" for what, key in JOBS],
            "sleep_time": 1.0,
            "report": {"level": "INFO", "prefix": "OCPS job 1f2e"},
        }
    )
    app = make_app(bridge, suggested_options={"repo": str(report_repository.repo)})
    async with TestClient(TestServer(app)) as client:
        page = PageClient(client)
        await page.connect()
        try:
            sal_index = (await page.add(config))["salIndex"]
            operator = asyncio.create_task(
                asyncio.to_thread(operate, browser, str(client.make_url("/")), sal_index, tmp_path)
            )
            results = await results_of(
                client, sal_index, lambda r: r["report"]["state"] == "ready", "the report"
            )
            await operator
        finally:
            await page.close()
        assert results["collections"] == [c[key] for _, key in JOBS]
        assert results["finished"]
        verifications = {v["imageType"]: v for v in results["verifications"]}
        assert list(verifications) == ["BIAS", "DARK", "FLAT"]
        assert verifications["DARK"]["failedExposures"] == report_repository.darks
        assert not verifications["DARK"]["accepted"]
        assert (
            verifications["DARK"]["verdict"]
            == "DARK calibration failed verification and will not be certified."
        )
        assert verifications["DARK"]["failedTests"]["NOISE"] == 4 * 16
        assert verifications["BIAS"]["accepted"]
        # The report and its figures are served; nothing else is.
        response = await client.get(f"/reports/{sal_index}/")
        assert response.status == 200 and "Calibration report" in await response.text()
        response = await client.get(f"/reports/{sal_index}/gain-0.png")
        assert response.status == 200 and response.content_type == "image/png"
        for path, status in (
            (f"/reports/{sal_index}", 200),  # redirected to the page
            (f"/reports/{sal_index}/..%2Fsecret.png", 404),
            (f"/reports/{sal_index}/index.html.partial", 404),
            ("/reports/999999/", 404),
            ("/api/results/999999", 404),
        ):
            response = await client.get(path)
            assert response.status == status, path
