"""The report as a person sees it: headless Chromium opens the page from disk.

Needs Debian's ``chromium`` and ``chromium-driver`` (skipped, saying so,
without them). The screenshot is saved in the test's directory
(``report.png``), and also into ``$CALIBSCRIPTS_SCREENSHOT_DIR`` if set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from lsst.ts.calibscripts.report.build import ReportResult
from lsst.ts.calibscripts.report.render import SECTIONS

from ..ui.test_browser import browser, wait
from .report_repository import ReportRepository

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None or shutil.which("chromedriver") is None,
        reason="headless browser test needs Chromium and ChromeDriver "
        "(Debian: apt-get install chromium chromium-driver)",
    ),
]

__all__ = ["browser"]  # the fixture, from the queue page's browser test

#: Background of a failed row (the report's style sheet: #f8d0d0).
FAIL_BACKGROUND = "rgba(248, 208, 208, 1)"


def classes(element: WebElement) -> list[str]:
    """The CSS classes of an element."""
    return (element.get_attribute("class") or "").split()


def save_screenshot(driver: WebDriver, path: Path) -> None:
    driver.save_screenshot(str(path))
    copy_to = os.environ.get("CALIBSCRIPTS_SCREENSHOT_DIR")
    if copy_to:
        shutil.copy(path, Path(copy_to) / path.name)


def test_report_in_a_browser(
    report: ReportResult, report_repository: ReportRepository, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(report.path.as_uri())
    css = browser.find_elements

    # Each section is there, in order, with its heading.
    sections = css(By.CSS_SELECTOR, "section.report-section")
    assert [s.get_attribute("id") for s in sections] == list(SECTIONS)
    assert [s.find_element(By.TAG_NAME, "h2").text for s in sections] == list(SECTIONS.values())
    for key in ("bias", "dark", "flat"):
        assert css(By.ID, f"verification-{key}")
    for table in ("gains-table", "ptc-table"):
        assert len(css(By.CSS_SELECTOR, f"#{table} tbody tr")) == 16 * (4 if table == "gains-table" else 1)

    # Every image loads (they load lazily: bring each into view).
    images = css(By.TAG_NAME, "img")
    assert len(images) == report.figures
    for image in images:
        browser.execute_script("arguments[0].scrollIntoView()", image)

        def loaded(driver: WebDriver, image: WebElement = image) -> bool:
            return bool(driver.execute_script("return arguments[0].complete", image))

        wait(browser, loaded, "an image")
        width = browser.execute_script("return arguments[0].naturalWidth", image)
        assert width > 0, image.get_attribute("src")

    # A failing exposure stands out, in the summary and in its tables.
    darks = report_repository.darks
    assert "fail" in classes(browser.find_element(By.CSS_SELECTOR, '#summary tr[data-image-type="DARK"]'))
    row = browser.find_element(By.CSS_SELECTOR, f'#exposures-dark tr.exposure[data-exposure="{darks[0]}"]')
    assert "fail" in classes(row)
    cell = row.find_element(By.TAG_NAME, "td")
    assert cell.value_of_css_property("background-color") == FAIL_BACKGROUND
    assert row.find_elements(By.TAG_NAME, "td")[-1].text == "failed"
    assert "fail" in classes(browser.find_element(By.CSS_SELECTOR, "#verification-dark p.verdict"))

    # The tests table filters as one types and sorts by a clicked heading.
    tools = browser.find_element(By.CSS_SELECTOR, '.table-tools[data-for="tests-dark"]')
    rows = css(By.CSS_SELECTOR, "#tests-dark tbody tr")
    assert tools.find_element(By.CLASS_NAME, "count").text == f"{len(rows)} of {len(rows)} rows"
    # "rn": the NOISE test's criterion names the read noise RN.
    tools.find_element(By.CLASS_NAME, "filter").send_keys(f"{darks[1]} c10 rn")
    visible = [r for r in rows if r.is_displayed()]
    assert [r.text.split()[:4] for r in visible] == [[str(darks[1]), "RXX_S00", "C10", "NOISE"]]
    assert "fail" in classes(visible[0])
    tools.find_element(By.CLASS_NAME, "filter").clear()
    tools.find_element(By.CLASS_NAME, "filter").send_keys(" ")  # an input event with no words
    tools.find_element(By.CLASS_NAME, "failures-only").click()
    visible = [r for r in rows if r.is_displayed()]
    assert visible and all("fail" in classes(r) for r in visible)
    assert len(visible) == sum(1 for r in rows if "fail" in classes(r))
    tools.find_element(By.CLASS_NAME, "failures-only").click()
    heading = browser.find_element(By.XPATH, '//table[@id="tests-dark"]/thead/tr/th[text()="Tested"]')
    browser.execute_script("arguments[0].scrollIntoView()", heading)
    heading.click()
    values = [
        float(v)
        for v in browser.execute_script(
            "return Array.from(document.querySelectorAll('#tests-dark tbody tr'))"
            ".map(r => r.cells[5].getAttribute('data-value')).filter(v => v !== null)"
        )
    ]
    assert values == sorted(values) and len(values) > 100
    assert "sorted-asc" in classes(heading)

    browser.execute_script("window.scrollTo(0, 0)")
    save_screenshot(browser, tmp_path / "report.png")
    browser.execute_script("document.getElementById('verification-dark').scrollIntoView()")
    save_screenshot(browser, tmp_path / "report-verification.png")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
