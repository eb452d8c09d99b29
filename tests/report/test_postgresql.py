"""A report of a PostgreSQL-backed repository.

Needs a server: ``CALIBSCRIPTS_TEST_POSTGRESQL`` (see
``tests/cp/butler/test_postgresql.py``, whose fixture this uses); skipped,
with the reason, without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.report.build import make_report

from ..cp.butler.test_postgresql import postgresql_url
from .report_repository import CALIB_COLLECTION, make_report_repository

pytestmark = pytest.mark.slow

__all__ = ["postgresql_url"]  # the fixture


def test_report_of_a_postgresql_repository(tmp_path: Path, postgresql_url: tuple[str, str]) -> None:
    url, namespace = postgresql_url
    # Five biases verified against their own combination: NOISE fails (RN x sqrt(4/5)).
    made = make_report_repository(tmp_path, LATISS, n_bias=5, full=False, db=url, namespace=namespace)
    assert f"namespace: {namespace}" in (made.repo / "butler.yaml").read_text()
    result = make_report(made.repo, [CALIB_COLLECTION], tmp_path / "report", simulated=True)
    data = result.data
    (bias,) = data.verifications
    assert bias.image_type == "BIAS" and bias.collection == made.collections["verifyBias"]
    assert bias.outcome.failed_exposures == made.biases and not bias.outcome.accepted
    assert [p.quantity for p in data.history] == ["bias level"]
    assert [image.kind for image in data.images] == ["bias", "verifyBiasProc"]
    page = result.path.read_text()
    assert "BIAS calibration failed verification and will not be certified." in page
