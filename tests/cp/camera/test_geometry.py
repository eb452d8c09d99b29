import numpy as np
import pytest

from lsst.ts.calibscripts.cp.camera.geometry import (
    AMP_NAMES,
    Box,
    amp_geometry_from_sections,
    format_section,
    itl_geometry,
    make_itl_geometry,
    parse_section,
    reduced_itl_geometry,
)


def test_full_size_itl_layout():
    geom = itl_geometry()
    assert geom.assembled_shape == (4000, 4072)
    assert geom.amp_names == AMP_NAMES
    c10 = geom.amp("C10")
    assert c10.raw_shape == (2048, 576)
    assert c10.data.shape == (2000, 509)
    assert c10.prescan_slice == (slice(0, 2000), slice(0, 3))
    assert c10.serial_overscan.shape == (2000, 64)
    assert c10.parallel_overscan.shape == (48, 509)
    assert c10.datasec == "[4:512,1:2000]"
    assert c10.biassec == "[513:576,1:2000]"
    # Flipped axes are written as reversed ranges, as in LSST raws.
    assert c10.detsec == "[509:1,1:2000]"
    assert geom.amp("C17").detsec == "[4072:3564,1:2000]"
    assert geom.amp("C07").detsec == "[4072:3564,4000:2001]"
    assert geom.amp("C00").detsec == "[509:1,4000:2001]"
    assert geom.detsize == "[1:4072,1:4000]"


def test_reduced_geometry_has_same_layout():
    full, small = itl_geometry(), reduced_itl_geometry()
    assert small.amp_names == full.amp_names
    assert small.assembled_shape == (200, 512)
    for a, b in zip(full, small, strict=True):
        assert (a.flip_x, a.flip_y) == (b.flip_x, b.flip_y)
        assert a.detector.x0 // a.data.width == b.detector.x0 // b.data.width
        assert a.detector.y0 // a.data.height == b.detector.y0 // b.data.height


@pytest.mark.parametrize(
    ("section", "box", "flip_x", "flip_y"),
    [
        ("[4:512,1:2000]", Box(3, 0, 509, 2000), False, False),
        ("[509:1,1:2000]", Box(0, 0, 509, 2000), True, False),
        ("[4072:3564,4000:2001]", Box(3563, 2000, 509, 2000), True, True),
    ],
)
def test_section_round_trip(section, box, flip_x, flip_y):
    assert parse_section(section) == (box, flip_x, flip_y)
    assert format_section(box, flip_x, flip_y) == section


@pytest.mark.parametrize("bad", ["4:512,1:2000", "[0:10,1:5]", "[a:b,c:d]", ""])
def test_parse_section_rejects_garbage(bad):
    with pytest.raises(ValueError, match="section"):
        parse_section(bad)


def test_amp_geometry_from_sections_matches_constructor():
    for amp in reduced_itl_geometry():
        rebuilt = amp_geometry_from_sections(amp.name, amp.raw_shape, amp.datasec, amp.biassec, amp.detsec)
        assert rebuilt == amp


def test_orientation_and_pixel_mapping_agree():
    geom = reduced_itl_geometry()
    rng = np.random.default_rng(1)
    for amp in geom:
        readout = rng.integers(0, 1000, amp.data_shape)
        placed = amp.to_detector_orientation(readout)
        assert np.array_equal(amp.to_readout_orientation(placed), readout)
        for _ in range(5):
            x = int(rng.integers(amp.detector.x0, amp.detector.x1))
            y = int(rng.integers(amp.detector.y0, amp.detector.y1))
            xr, yr = amp.detector_to_readout(x, y)
            expected = readout[yr - amp.data.y0, xr - amp.data.x0]
            assert placed[y - amp.detector.y0, x - amp.detector.x0] == expected
        assert geom.amp_at(amp.detector.x0, amp.detector.y0) is amp


def test_first_pixel_read_is_at_amp_outer_corner():
    # C10's first data pixel read (raw x=prescan, y=0) is at the right edge of
    # its segment on the bottom row; C00's is at the top edge.
    geom = itl_geometry()
    c10, c00 = geom.amp("C10"), geom.amp("C00")
    assert c10.detector_to_readout(508, 0) == (3, 0)
    assert c00.detector_to_readout(508, 3999) == (3, 0)


def test_invalid_geometry_is_refused():
    amp = reduced_itl_geometry().amp("C10")
    with pytest.raises(ValueError, match="does not fit"):
        type(amp)(
            name="X",
            raw_shape=(10, 10),
            data=amp.data,
            serial_overscan=amp.serial_overscan,
            parallel_overscan=amp.parallel_overscan,
            detector=amp.detector,
            flip_x=True,
            flip_y=False,
        )
    with pytest.raises(KeyError, match="C99"):
        reduced_itl_geometry().amp("C99")
    with pytest.raises(ValueError, match="positive"):
        Box(0, 0, 0, 1)


def test_make_itl_geometry_any_size():
    geom = make_itl_geometry(data_nx=10, data_ny=20, prescan=1, serial_overscan=4, parallel_overscan=2)
    assert geom.assembled_shape == (40, 80)
    assert geom.amp("C13").raw_shape == (22, 15)
