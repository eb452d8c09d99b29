import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from lsst.ts.calibscripts.cp.butler import raw_file
from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, read_raw, read_raw_header, write_raw
from lsst.ts.calibscripts.cp.camera.description import LSST_COMCAM
from lsst.ts.calibscripts.cp.camera.geometry import make_itl_geometry, parse_section


def make_metadata(**kwargs):
    values = dict(
        instrument="LATISS",
        obs_id="AT_O_20220929_000007",
        day_obs=20220929,
        seq_num=7,
        img_type="FLAT",
        exposure_time=2.5,
        dark_time=2.6,
        date_obs=Time("2022-09-29T18:00:00.000", scale="tai"),
        date_end=Time("2022-09-29T18:00:02.500", scale="tai"),
        filter="SDSSr_65mm",
        grating="empty",
        group_id="2022-09-29T17:59:00.000",
        reason="flat",
        program="CALIB",
        test_type="FLAT",
        obs_note="unit test",
        telescope="AuxTel",
    )
    values.update(kwargs)
    return ObservationMetadata(**values)


def test_round_trip_is_bit_exact(tmp_path, model, detector, geometry):
    amps = model.expose("FLAT", 1.0, flux=20_000.0)
    path = tmp_path / "raw.fits"
    metadata = make_metadata()
    write_raw(path, metadata, detector, geometry, amps, extra_cards={"SIMULATE": True})
    raw = read_raw(path)
    assert raw.metadata == metadata
    assert raw.metadata.exposure_id == 2022092900007
    assert raw.detector_id == 0
    assert raw.header["DET_NAME"] == "RXX_S00"
    assert raw.header["DET_SER"] == "ITL-3800C-068"
    assert raw.header["SIMULATE"] is True
    assert raw.geometry == geometry
    assert list(raw.amps) == list(geometry.amp_names)
    for name, array in amps.items():
        assert raw.amps[name].dtype == np.int32
        assert np.array_equal(raw.amps[name], array)


def test_extensions_are_rice_compressed_with_sections(tmp_path, model, detector, geometry):
    amps = model.expose("BIAS")
    path = tmp_path / "bias.fits"
    metadata = make_metadata(img_type="BIAS", exposure_time=0.0, dark_time=0.0)
    write_raw(path, metadata, detector, geometry, amps)
    with fits.open(path, disable_image_compression=True) as hdul:
        assert len(hdul) == 17
        for hdu in hdul[1:]:
            assert hdu.header["ZCMPTYPE"] == "RICE_1"
    with fits.open(path) as hdul:
        for hdu, amp in zip(hdul[1:], geometry, strict=True):
            assert hdu.header["EXTNAME"] == amp.name
            assert hdu.header["DATASEC"] == amp.datasec
            assert hdu.header["BIASSEC"] == amp.biassec
            assert hdu.header["DETSEC"] == amp.detsec
            # DTV/DTM map the first data pixel read to its assembled position.
            x_raw = amp.data.x0 + 1
            x_det = hdu.header["DTM1_1"] * x_raw + hdu.header["DTV1"]
            box, flip_x, _ = parse_section(amp.detsec)
            assert x_det == (box.x1 if flip_x else box.x0 + 1)
    uncompressed = sum(a.nbytes for a in amps.values())
    assert path.stat().st_size < 0.6 * uncompressed


def test_geometry_comes_from_the_file(tmp_path, model, detector):
    # A layout no constructor in the geometry module produces by default.
    odd = make_itl_geometry(data_nx=12, data_ny=9, prescan=2, serial_overscan=7, parallel_overscan=3)
    rng = np.random.default_rng(3)
    amps = {a.name: rng.integers(0, 2**18, a.raw_shape) for a in odd}
    path = tmp_path / "odd.fits"
    write_raw(path, make_metadata(), detector, odd, amps)
    raw = read_raw(path)
    assert raw.geometry == odd
    assert raw.geometry.assembled_shape == (18, 96)
    assert all(np.array_equal(raw.amps[k], v) for k, v in amps.items())


def test_comcam_header_without_grating(tmp_path, geometry):
    from lsst.ts.calibscripts.simulator.camera_model import CameraModel

    det = LSST_COMCAM.detector(4)
    amps = CameraModel(det, geometry, seed=1).expose("BIAS")
    path = tmp_path / "cc.fits"
    metadata = make_metadata(
        instrument="LSSTComCam", obs_id="CC_O_20220929_000007", filter="r_03", grating=None
    )
    write_raw(path, metadata, det, geometry, amps)
    header = read_raw_header(path)
    assert "GRATING" not in header
    assert header["DET_NAME"] == "R22_S11"
    assert header["DAYOBS"] == "20220929"
    assert ObservationMetadata.from_header(header) == metadata


def test_write_refuses_bad_input(tmp_path, model, detector, geometry):
    amps = model.expose("BIAS")
    amps.pop("C00")
    with pytest.raises(ValueError, match="C00"):
        write_raw(tmp_path / "x.fits", make_metadata(), detector, geometry, amps)
    amps = model.expose("BIAS")
    amps["C10"] = amps["C10"][:-1]
    with pytest.raises(ValueError, match="C10"):
        write_raw(tmp_path / "x.fits", make_metadata(), detector, geometry, amps)


def test_header_missing_keys_named():
    with pytest.raises(KeyError, match="OBSID"):
        ObservationMetadata.from_header({"INSTRUME": "LATISS"})


def test_row_tiled_rice_is_decoded_directly(tmp_path, model, detector, geometry):
    # The cameras' layout takes the direct decoder, for every extension.
    amps = model.expose("FLAT", 1.0, flux=20_000.0)
    path = tmp_path / "raw.fits"
    write_raw(path, make_metadata(), detector, geometry, amps)
    decoded = raw_file._decode_row_tiled_rice(path.read_bytes())
    assert sorted(decoded) == list(range(1, len(amps) + 1))
    with fits.open(path) as hdul:
        for index, hdu in enumerate(hdul[1:], start=1):
            assert decoded[index].dtype == np.int32
            assert np.array_equal(decoded[index], hdu.data)


@pytest.mark.parametrize(
    "make_hdu",
    [
        lambda data: fits.CompImageHDU(data=data, compression_type="RICE_1", tile_shape=(4, data.shape[1])),
        lambda data: fits.CompImageHDU(data=data, compression_type="GZIP_2"),
        lambda data: fits.CompImageHDU(data=data.astype(np.int16), compression_type="RICE_1"),
        lambda data: fits.ImageHDU(data=data),
    ],
    ids=["rice-4-row-tiles", "gzip2", "rice-int16", "uncompressed"],
)
def test_other_layouts_are_read_by_astropy(tmp_path, model, detector, geometry, make_hdu):
    # Anything but row-tiled 32-bit RICE is left to Astropy's reader, with the same result.
    amps = model.expose("BIAS")
    path = tmp_path / "raw.fits"
    write_raw(path, make_metadata(), detector, geometry, amps)
    with fits.open(path) as hdul:
        hdus = [fits.PrimaryHDU(header=hdul[0].header)]
        for hdu in hdul[1:]:
            other = make_hdu(np.asarray(hdu.data))
            for card in hdu.header.cards:
                if card.keyword in ("EXTNAME", "DATASEC", "BIASSEC", "DETSEC", "DETSIZE"):
                    other.header[card.keyword] = card.value
            hdus.append(other)
    other_path = tmp_path / "other.fits"
    fits.HDUList(hdus).writeto(other_path)
    assert raw_file._decode_row_tiled_rice(other_path.read_bytes()) == {}
    raw = read_raw(other_path)
    assert raw.geometry == geometry
    for name, array in amps.items():
        assert raw.amps[name].dtype == np.int32
        assert np.array_equal(raw.amps[name], array)
