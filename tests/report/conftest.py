"""Session fixtures of the report tests: one small repository with a whole run, and its report.

The repository (`report_repository.make_report_repository`) takes a minute
of pipetask runs, so it is made once per session; tests only read it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.report.build import ReportResult, make_report

from .report_repository import ReportRepository, make_report_repository


@pytest.fixture(scope="session")
def report_repository(tmp_path_factory: pytest.TempPathFactory) -> ReportRepository:
    """LATISS (reduced geometry): bias, dark, flat with their verifications, PTC, defects."""
    return make_report_repository(tmp_path_factory.mktemp("report"), LATISS)


@pytest.fixture(scope="session")
def report(report_repository: ReportRepository, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    """The report of the run, from the output collections its log would name."""
    directory: Path = tmp_path_factory.mktemp("report-html")
    messages: list[str] = []
    result = make_report(
        report_repository.repo, report_repository.run_collections, directory, progress=messages.append
    )
    assert messages[-1].startswith("Report written:")
    return result
