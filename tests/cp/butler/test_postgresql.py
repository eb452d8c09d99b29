"""A PostgreSQL-backed repository: create, ingest, certify, look up.

Needs a reachable server: set ``CALIBSCRIPTS_TEST_POSTGRESQL`` to a URL such
as ``postgresql://postgres@localhost:5432/butler_test`` of a database with
the ``btree_gist`` extension. Skipped (with the reason) otherwise; SQLite is
the default everywhere else.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
from lsst.daf.butler import Butler
from lsst.images import Image, MaskedImage

from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.tasks.image_conventions import MASK_SCHEMA

from .test_repository import write_bias

URL_VARIABLE = "CALIBSCRIPTS_TEST_POSTGRESQL"


@pytest.fixture
def postgresql_url():
    url = os.environ.get(URL_VARIABLE)
    if not url:
        pytest.skip(f"no PostgreSQL server configured: set {URL_VARIABLE}=postgresql://USER@HOST:PORT/DB")
    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL driver not installed (psycopg[binary])")
    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as err:
        pytest.skip(f"PostgreSQL server at {url} not reachable: {err}")
    namespace = f"calibscripts_test_{uuid.uuid4().hex[:12]}"
    yield url, namespace
    with psycopg.connect(url) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {namespace} CASCADE")


def test_postgresql_repository(tmp_path, postgresql_url):
    url, namespace = postgresql_url
    root = create_repository(tmp_path / "repo", ["LATISS"], db=url, namespace=namespace)
    assert f"namespace: {namespace}" in (root / "butler.yaml").read_text()
    raw = write_bias(tmp_path / "bias.fits", 1)
    with Butler.from_config(str(root), writeable=True) as butler:
        assert ingest_raws(butler, [raw]).exposures == [2022092900001]
        butler.collections.register("u/test/bias")
        image = MaskedImage(Image(np.ones((4, 4), dtype=np.float32)), mask_schema=MASK_SCHEMA)
        butler.put(image, "bias", instrument="LATISS", detector=0, run="u/test/bias")
    certify_calibrations(
        root, "u/test/bias", "LATISS/calib", "bias", begin_date="2022-01-01", end_date="2023-01-01"
    )
    with Butler.from_config(str(root), collections=["LATISS/calib"]) as butler:
        bias = butler.get("bias", instrument="LATISS", detector=0, exposure=2022092900001)
    assert bias.image.array[0, 0] == 1.0
