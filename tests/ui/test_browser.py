"""End to end in headless Chromium: ``calibscripts ui --with-queue`` as an operator uses it.

Needs Debian's ``chromium`` and ``chromium-driver``; skipped, saying so,
only if they are not installed. The screenshot is saved in the test's
output directory (``queue-page.png``).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from lsst.ts.calibscripts import sal

from .page_client import TIMEOUT

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# Flags that work in containers without a display, sandbox or network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1000",
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs Chromium and ChromeDriver "
    "(Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture
def page_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run ``calibscripts ui --with-queue`` on a free port; yield the page's URL."""
    monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsst.ts.calibscripts.cli",
            "ui",
            "--with-queue",
            "--port",
            "0",
            "--no-browser",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put("")  # the command exited

    threading.Thread(target=read, daemon=True).start()
    try:
        while not (match := re.match(r"Queue page: (\S+)", line := lines.get(timeout=TIMEOUT))):
            assert line, f"the command exited: {''.join(output)}"
        yield match.group(1)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    """Wait until ``condition(driver)`` is true (Selenium checks it again and again)."""
    WebDriverWait(driver, TIMEOUT).until(condition, message=f"timed out waiting for {what}")


def replace_text(editor: WebElement, text: str) -> None:
    """Select all and type, as a person does (clear() sends no input event)."""
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(text)


def test_operator_adds_a_script_and_watches_it_run(
    page_url: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(page_url)
    css = browser.find_elements

    def text_of(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    wait(browser, lambda d: text_of("connection") == "live", "the event stream")
    assert text_of("queue-name") == "ATQueue"
    wait(browser, lambda d: css(By.CSS_SELECTOR, '[data-path="examples/sleep.py"]'), "the available scripts")

    # The filter narrows AVAILABLE SCRIPTS.
    browser.find_element(By.ID, "script-filter").send_keys("sleep")
    latiss = '[data-path="auxtel/make_latiss_calibrations.py"]'
    wait(browser, lambda d: not css(By.CSS_SELECTOR, latiss), "the filter")
    browser.find_element(By.CSS_SELECTOR, '[data-path="examples/sleep.py"]').click()
    wait(browser, lambda d: "sleep_time:" in text_of("schema-view"), "the schema")

    # An invalid configuration is refused, each problem shown at its line and option.
    editor = browser.find_element(By.ID, "config-editor")
    replace_text(editor, "checkpoints: [one, two]\nsleep_time: -1\nreprot: {level: WARNING}\n")
    wait(browser, lambda d: len(css(By.CSS_SELECTOR, "#config-problems li")) == 2, "two problems")
    problems = css(By.CSS_SELECTOR, "#config-problems li")
    located = {(p.get_attribute("data-line"), p.get_attribute("data-option")): p.text for p in problems}
    assert set(located) == {("2", "sleep_time"), ("3", "reprot")}
    assert "less than the minimum of 0" in located[("2", "sleep_time")]
    assert "did you mean 'report'?" in located[("3", "reprot")]
    assert [line.text for line in css(By.CSS_SELECTOR, "#config-gutter div.error")] == ["2", "3"]
    assert text_of("config-status") == "✗ 2 problems"
    assert not browser.find_element(By.ID, "add-button").is_enabled()

    # A valid one shows what the script will receive, defaults included, and can be added.
    replace_text(editor, "checkpoints: [one, two, three]\nsleep_time: 0.2\nreport: {level: WARNING}\n")
    wait(browser, lambda d: text_of("config-status") == "✓ valid", "a valid config")
    assert not css(By.CSS_SELECTOR, "#config-problems li")
    default = browser.find_element(By.CSS_SELECTOR, '#effective-table tr[data-option="fail_run"]')
    assert default.get_attribute("class") == "default"
    add = browser.find_element(By.ID, "add-button")
    wait(browser, lambda d: add.is_enabled(), "ADD to be enabled")
    add.click()
    wait(browser, lambda d: "as script 200001" in text_of("add-status"), "the add")

    # It runs to DONE; its log appears, warnings highlighted.
    badge = '#finished-list li[data-sal-index="200001"] .badge'
    wait(browser, lambda d: [b.text for b in css(By.CSS_SELECTOR, badge)] == ["DONE"], "DONE")
    wait(browser, lambda d: len(css(By.CSS_SELECTOR, "#log-view .log-entry.warning")) == 3, "the log")
    messages = [m.text for m in css(By.CSS_SELECTOR, "#log-view .log-entry .message")]
    assert messages == ["Reached checkpoint one", "Reached checkpoint two", "Reached checkpoint three"]
    assert "script 200001" in text_of("log-source")

    browser.save_screenshot(str(tmp_path / "queue-page.png"))
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
