"""Certification into CALIBRATION collections and lookup by exposure."""

from __future__ import annotations

import numpy as np
import pytest
from lsst.daf.butler import Butler, CollectionType, DatasetRef
from lsst.images import Image, MaskedImage

from lsst.ts.calibscripts.cp.butler.certification import (
    CertificationConflictError,
    CertificationError,
    certify_calibrations,
)
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.tasks.image_conventions import MASK_SCHEMA

from .test_repository import write_bias

EXPOSURE_SEP29 = 2022092900001
EXPOSURE_OCT01 = 2022100100001


@pytest.fixture
def repo_with_two_biases(tmp_path):
    """Two bias runs (values 1 and 2), raws on 29 Sep and 1 Oct, a chain over both runs."""
    root = create_repository(tmp_path / "repo", ["LATISS"])
    files = [
        write_bias(tmp_path / "a.fits", 1, day_obs=20220929, start="2022-09-29T21:00:00"),
        write_bias(tmp_path / "b.fits", 1, day_obs=20221001, start="2022-10-01T21:00:00"),
    ]
    with Butler.from_config(str(root), writeable=True) as butler:
        ingest_raws(butler, files)
        for value, run in ((1.0, "u/test/biasA"), (2.0, "u/test/biasB")):
            butler.collections.register(run)
            image = MaskedImage(Image(np.full((4, 4), value, dtype=np.float32)), mask_schema=MASK_SCHEMA)
            butler.put(image, "bias", instrument="LATISS", detector=0, run=run)
        butler.collections.register("u/test/chain", CollectionType.CHAINED)
        butler.collections.redefine_chain("u/test/chain", ["u/test/biasB", "u/test/biasA"])
    return root


def lookup(root, collection, exposure):
    with Butler.from_config(str(root), collections=[collection]) as butler:
        bias = butler.get("bias", instrument="LATISS", detector=0, exposure=exposure)
    return float(bias.image.array[0, 0])


def test_lookup_by_exposure_picks_the_right_range(repo_with_two_biases):
    root = repo_with_two_biases
    calib = "LATISS/calib/daily"
    refs = certify_calibrations(
        root, "u/test/biasA", calib, "bias", begin_date="2022-09-28", end_date="2022-09-30"
    )
    assert len(refs) == 1 and isinstance(refs[0], DatasetRef)
    certify_calibrations(root, "u/test/biasB", calib, "bias", begin_date="2022-09-30", end_date="2022-10-02")
    assert lookup(root, calib, EXPOSURE_SEP29) == 1.0
    assert lookup(root, calib, EXPOSURE_OCT01) == 2.0
    with Butler.from_config(str(root)) as butler:
        assert butler.collections.get_info(calib).type is CollectionType.CALIBRATION


def test_overlapping_range_fails_plainly_and_certifies_nothing(repo_with_two_biases):
    root = repo_with_two_biases
    calib = "LATISS/calib/daily"
    certify_calibrations(root, "u/test/biasA", calib, "bias", begin_date="2022-09-28", end_date="2022-09-30")
    with pytest.raises(CertificationConflictError) as caught:
        certify_calibrations(
            root, "u/test/biasB", calib, "bias", begin_date="2022-09-29", end_date="2022-10-01"
        )
    message = str(caught.value)
    assert "Cannot certify bias into LATISS/calib/daily for [2022-09-29, 2022-10-01)" in message
    assert "instrument=LATISS, detector=0 is valid [2022-09-28, 2022-09-30)" in message
    assert "Nothing was certified" in message
    assert "JD" not in message and "2459" not in message
    assert caught.value.existing == [("instrument=LATISS, detector=0", "2022-09-28", "2022-09-30")]
    with Butler.from_config(str(root)) as butler:
        associations = list(
            butler.registry.queryDatasetAssociations(
                "bias", collections=[calib], collectionTypes={CollectionType.CALIBRATION}
            )
        )
    assert len(associations) == 1
    assert lookup(root, calib, EXPOSURE_SEP29) == 1.0


def test_chained_input_searches_every_child(repo_with_two_biases):
    root = repo_with_two_biases
    # The chain's first child holds biasB; find-first over the chain takes it.
    certify_calibrations(root, "u/test/chain", "LATISS/calib/chain", "bias", begin_date=None, end_date=None)
    assert lookup(root, "LATISS/calib/chain", EXPOSURE_OCT01) == 2.0


def test_certification_errors(repo_with_two_biases):
    root = repo_with_two_biases
    with pytest.raises(CertificationError, match="begin date must precede the end date"):
        certify_calibrations(
            root, "u/test/biasA", "c", "bias", begin_date="2022-10-01", end_date="2022-09-01"
        )
    with pytest.raises(CertificationError, match="No dark datasets found in u/test/biasA"):
        certify_calibrations(
            root, "u/test/biasA", "c", "dark", begin_date="2022-09-01", end_date="2022-10-01"
        )
    with pytest.raises(CertificationError, match="RUN collection, not a CALIBRATION collection"):
        certify_calibrations(root, "u/test/biasA", "u/test/biasB", "bias", begin_date=None, end_date=None)
    with pytest.raises(ValueError, match="Not an ISO date"):
        certify_calibrations(root, "u/test/biasA", "c", "bias", begin_date="yesterday", end_date=None)
