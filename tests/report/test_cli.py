"""``calibscripts report``: the report of a run's CALIBRATION collection, and the errors a user can fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst.ts.calibscripts.cli import main
from lsst.ts.calibscripts.report.render import SECTIONS

from .report_repository import CALIB_COLLECTION, ReportRepository

pytestmark = pytest.mark.slow


def test_report_of_a_calibration_collection(
    report_repository: ReportRepository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    assert (
        main(["report", str(report_repository.repo), CALIB_COLLECTION, "-o", str(output), "--no-history"])
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    # It says what it is doing, step by step, and where the report is.
    assert printed[0].endswith(f"Opening the repository {report_repository.repo}")
    assert any("Reading the DARK verification: 4 exposure-detector statistics" in line for line in printed)
    assert printed[-1].split("] ", 1)[1].startswith(f"Report written: {output / 'index.html'}")
    page = (output / "index.html").read_text()
    for key in SECTIONS:
        assert f'<section id="{key}"' in page
    for collection in report_repository.run_collections:
        assert collection in page
    assert not list(output.glob("history-*.png"))
    assert sorted(p.name for p in output.glob("*.png"))[:3] == ["bias-0.png", "dark-0.png", "defects-0.png"]


@pytest.mark.parametrize(
    ("collection", "message"),
    [
        ("u/no/such", "There is no collection 'u/no/such' in the repository."),
        ("LATISS/raw/all", "None of the collections LATISS/raw/all holds"),
    ],
)
def test_errors_are_one_line(
    report_repository: ReportRepository,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    collection: str,
    message: str,
) -> None:
    assert main(["report", str(report_repository.repo), collection, "-o", str(tmp_path), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"calibscripts: error: {message}") and error.count("\n") == 1
    assert not (tmp_path / "index.html").exists()


def test_no_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nothing"), "u/x", "-o", str(tmp_path / "out"), "--quiet"]) == 1
    assert capsys.readouterr().err.startswith("calibscripts: error: ")
