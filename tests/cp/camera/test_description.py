import pytest

from lsst.ts.calibscripts.cp.camera.description import LATISS, LSST_COMCAM, get_instrument_description
from lsst.ts.calibscripts.cp.camera.geometry import AMP_NAMES


def test_latiss_detector():
    det = LATISS.detector(0)
    assert det is LATISS.detector("RXX_S00")
    assert det.serial == "ITL-3800C-068"
    assert set(det.gains) == set(AMP_NAMES)
    assert all(1.047 <= g <= 1.105 for g in det.gains.values())
    assert all(1.045 <= det.gains[f"C1{i}"] <= 1.08 for i in range(8))
    assert all(1.08 <= det.gains[f"C0{i}"] <= 1.105 for i in range(8))
    assert all(8.0 <= rn <= 10.3 for rn in det.read_noise.values())
    assert det.saturation == pytest.approx(120_000)
    assert LATISS.obs_id(20220929, 1) == "AT_O_20220929_000001"
    assert LATISS.exposure_id(20220929, 1) == 2022092900001


def test_comcam_detectors():
    assert [d.id for d in LSST_COMCAM.detectors] == list(range(9))
    assert LSST_COMCAM.detector(4).full_name == "R22_S11"
    assert LSST_COMCAM.detector(8).full_name == "R22_S22"
    for det in LSST_COMCAM.detectors:
        assert all(1.17 <= g <= 1.45 for g in det.gains.values())
        assert all(5.0 <= rn <= 11.0 for rn in det.read_noise.values())
    assert len({d.serial for d in LSST_COMCAM.detectors}) == 9
    assert LSST_COMCAM.obs_id(20241020, 12) == "CC_O_20241020_000012"


def test_physical_filters():
    assert LATISS.physical_filter("SDSSr_65mm", "empty") == "SDSSr_65mm~empty"
    assert LATISS.physical_filter("SDSSr_65mm") == "SDSSr_65mm~empty"
    assert LATISS.band("SDSSr_65mm~holo4_003") == "r"
    assert "empty~empty" in {f.name for f in LATISS.physical_filters()}
    assert LSST_COMCAM.physical_filter("r_03") == "r_03"
    assert [f.name for f in LSST_COMCAM.filters] == ["u_02", "g_01", "r_03", "i_06", "z_03", "y_04"]
    with pytest.raises(ValueError, match="grating"):
        LSST_COMCAM.physical_filter("r_03", "holo4_003")
    with pytest.raises(KeyError, match="filter"):
        LATISS.physical_filter("nope")


def test_lookup_errors_name_the_problem():
    assert get_instrument_description("LSSTComCam") is LSST_COMCAM
    with pytest.raises(KeyError, match="LSSTCam"):
        get_instrument_description("LSSTCam")
    with pytest.raises(KeyError, match="no detector 3"):
        LATISS.detector(3)


def test_descriptions_are_immutable():
    det = LATISS.detector(0)
    with pytest.raises(TypeError):
        det.gains["C10"] = 2.0  # type: ignore[index]
    hash(det)
