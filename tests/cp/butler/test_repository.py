"""Repository creation, instruments and raw ingest (no pipetask)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time
from lsst.daf.butler import Butler, CollectionType

from lsst.ts.calibscripts.cp.butler.ingest import (
    RawIngestError,
    day_obs_timespan,
    ingest_raws,
)
from lsst.ts.calibscripts.cp.butler.instrument import Latiss, LsstComCam, get_instrument
from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, write_raw
from lsst.ts.calibscripts.cp.butler.repository import (
    RepositoryError,
    create_repository,
    ensure_repository,
    raw_collection,
)
from lsst.ts.calibscripts.cp.camera.description import LATISS, LSST_COMCAM
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry


def write_bias(
    path,
    seq_num,
    *,
    instrument=LATISS,
    detector=0,
    day_obs=20220929,
    grating="empty",
    filter="empty",
    start="2022-09-29T21:00:00",
):
    geometry = reduced_itl_geometry()
    start = Time(start, scale="tai")
    metadata = ObservationMetadata(
        instrument=instrument.name,
        obs_id=instrument.obs_id(day_obs, seq_num),
        day_obs=day_obs,
        seq_num=seq_num,
        img_type="BIAS",
        exposure_time=0.0,
        dark_time=0.0,
        date_obs=start,
        date_end=start,
        filter=filter,
        grating=grating,
        group_id="group-1",
        reason="bias",
        program="CALIB",
    )
    amps = {amp.name: np.full(amp.raw_shape, 10_000, dtype=np.int32) for amp in geometry}
    write_raw(path, metadata, instrument.detector(detector), geometry, amps, overwrite=True)
    return path


def test_day_obs_timespan_rolls_over_at_noon():
    span = day_obs_timespan(20220929)
    assert span.begin == Time("2022-09-29T12:00:00", scale="tai")
    assert span.end == Time("2022-09-30T12:00:00", scale="tai")


def test_create_registers_instruments_and_dataset_types(tmp_path):
    root = create_repository(tmp_path / "repo", ["LATISS", "LSSTComCam"])
    with Butler.from_config(str(root)) as butler:
        instruments = {r.name: r for r in butler.query_dimension_records("instrument")}
        assert set(instruments) == {"LATISS", "LSSTComCam"}
        assert instruments["LATISS"].class_name == "lsst.ts.calibscripts.cp.butler.instrument.Latiss"
        assert instruments["LATISS"].exposure_max > 2022092900001
        detectors = {(r.instrument, r.id): r.full_name for r in butler.query_dimension_records("detector")}
        assert detectors[("LATISS", 0)] == "RXX_S00"
        assert [detectors[("LSSTComCam", i)] for i in range(9)] == [f"R22_S{i // 3}{i % 3}" for i in range(9)]
        filters = {r.name for r in butler.query_dimension_records("physical_filter", instrument="LATISS")}
        assert "SDSSr_65mm~empty" in filters and "empty~holo4_003" in filters
        for name in ("raw", "bias", "dark", "flat", "defects", "ptc"):
            assert butler.get_dataset_type(name).name == name
        assert butler.get_dataset_type("flat").isCalibration()
        assert butler.collections.get_info("LATISS/raw/all").type is CollectionType.RUN
    # The storage classes and formatters live in the repository's own config.
    assert "lsst.ts.calibscripts.cp.butler.formatters.RawFormatter" in (root / "butler.yaml").read_text()


def test_create_refuses_existing_repository_and_bad_instrument(tmp_path):
    root = create_repository(tmp_path / "repo")
    with pytest.raises(RepositoryError, match=r"already exists.*--exist-ok"):
        create_repository(root)
    with pytest.raises(KeyError, match="supported instruments: LATISS, LSSTComCam"):
        create_repository(tmp_path / "other", ["HSC"])
    assert not (tmp_path / "other" / "butler.yaml").exists()
    # ensure_repository reuses it and adds an instrument.
    assert ensure_repository(root, ["LATISS", "LSSTComCam"]) == root
    with Butler.from_config(str(root)) as butler:
        assert {r.name for r in butler.query_dimension_records("instrument")} == {"LATISS", "LSSTComCam"}


def test_instrument_classes():
    assert Latiss.getName() == "LATISS"
    assert LsstComCam.getName() == "LSSTComCam"
    assert get_instrument("LATISS").makeDefaultRawIngestRunName() == "LATISS/raw/all"
    assert raw_collection("LSSTComCam") == "LSSTComCam/raw/all"
    from lsst.ts.calibscripts.cp.butler.formatters import RawFormatter

    assert get_instrument("LATISS").getRawFormatter({}) is RawFormatter


def test_ingest_defines_exposures_from_headers(tmp_path):
    root = create_repository(tmp_path / "repo", ["LATISS"])
    files = [write_bias(tmp_path / f"bias{i}.fits", i) for i in (1, 2)]
    with Butler.from_config(str(root), writeable=True) as butler:
        result = ingest_raws(butler, files)
        assert result.exposures == [2022092900001, 2022092900002]
        assert len(result.ingested) == 2 and not result.skipped
        record = next(
            iter(
                butler.query_dimension_records(
                    "exposure", where="exposure = 2022092900001", instrument="LATISS"
                )
            )
        )
        assert record.obs_id == "AT_O_20220929_000001"
        assert record.observation_type == "bias"
        assert record.physical_filter == "empty~empty"
        assert record.day_obs == 20220929
        assert record.group == "group-1"
        assert record.seq_num == 1
        assert record.science_program == "CALIB"
        assert record.timespan.begin == Time("2022-09-29T21:00:00", scale="tai")
        raw = butler.get(
            "raw", instrument="LATISS", detector=0, exposure=2022092900002, collections="LATISS/raw/all"
        )
        assert raw.geometry.assembled_shape == reduced_itl_geometry().assembled_shape
        # The datastore points at the file where it is (direct ingest, absolute path).
        uri = butler.getURI(
            "raw", instrument="LATISS", detector=0, exposure=2022092900001, collections="LATISS/raw/all"
        )
        assert uri.ospath == str(files[0].resolve())

        # Ingesting again is harmless.
        again = ingest_raws(butler, files)
        assert not again.ingested and len(again.skipped) == 2


def test_ingest_errors_name_the_problem_and_ingest_nothing(tmp_path):
    root = create_repository(tmp_path / "repo", ["LATISS"])
    good = write_bias(tmp_path / "good.fits", 1)
    comcam = write_bias(tmp_path / "comcam.fits", 2, instrument=LSST_COMCAM, grating=None, filter="r_03")
    with Butler.from_config(str(root), writeable=True) as butler:
        with pytest.raises(RawIngestError, match=r"missing\.fits: no such file"):
            ingest_raws(butler, [good, tmp_path / "missing.fits"])
        with pytest.raises(RawIngestError, match="LSSTComCam not registered"):
            ingest_raws(butler, [good, comcam])
        assert not butler.query_datasets("raw", collections="LATISS/raw/all", explain=False)
        ingest_raws(butler, [good])
        # Another file claiming the same exposure and detector is refused.
        duplicate = write_bias(tmp_path / "copy.fits", 1)
        with pytest.raises(RawIngestError, match=r"already has raw .*exposure=2022092900001"):
            ingest_raws(butler, [duplicate])
