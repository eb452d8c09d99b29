import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.assembly import amp_views, apply_gains, assemble, disassemble
from lsst.ts.calibscripts.cp.camera.geometry import itl_geometry


def test_assembly_honours_detsec_and_flips(geometry):
    # A ramp in readout order: the first pixel read has the lowest value.
    amps = {}
    for index, amp in enumerate(geometry):
        ny, nx = amp.data_shape
        ramp = index * 1e6 + np.arange(ny)[:, None] * 1000 + np.arange(nx)[None, :]
        amps[amp.name] = ramp.astype(np.float32)
    image = assemble(amps, geometry)
    assert image.shape == (200, 512)
    c10, c00 = geometry.amp("C10"), geometry.amp("C00")
    # C10 (bottom-left) is read from its right edge, bottom row first.
    assert image[0, 63] == amps["C10"][0, 0]
    assert image[0, 0] == amps["C10"][0, 63]
    # C00 (top-left) is read from its right edge, top row first.
    assert image[199, 63] == amps["C00"][0, 0]
    assert image[100, 0] == amps["C00"][99, 63]
    # C17 bottom-right, C07 top-right.
    assert image[0, 511] == amps["C17"][0, 0]
    assert image[199, 511] == amps["C07"][0, 0]
    assert c10.detsec == "[64:1,1:100]"
    assert c00.detsec == "[64:1,200:101]"
    back = disassemble(image, geometry)
    for name, data in amps.items():
        assert np.array_equal(back[name], data)


def test_full_size_corners():
    geom = itl_geometry()
    amps = {a.name: np.full(a.data_shape, i, dtype=np.float32) for i, a in enumerate(geom)}
    image = assemble(amps, geom)
    assert image[0, 0] == geom.amp_names.index("C10")
    assert image[3999, 0] == geom.amp_names.index("C00")
    assert image[3999, 4071] == geom.amp_names.index("C07")
    assert image[0, 4071] == geom.amp_names.index("C17")


def test_apply_gains(geometry, detector):
    image = np.ones(geometry.assembled_shape, dtype=np.float32)
    apply_gains(image, geometry, detector.gains)
    for name, view in amp_views(image, geometry).items():
        assert np.allclose(view, detector.gains[name])
    apply_gains(image, geometry, detector.gains, inverse=True)
    assert np.allclose(image, 1.0)
    with pytest.raises(TypeError, match="floating"):
        apply_gains(np.ones(geometry.assembled_shape, dtype=int), geometry, detector.gains)
    with pytest.raises(ValueError, match="No gain"):
        apply_gains(image, geometry, {"C10": 1.0})


def test_assemble_errors(geometry):
    with pytest.raises(ValueError, match="No data for amp"):
        assemble({}, geometry)
    bad = {a.name: np.zeros((2, 2)) for a in geometry}
    with pytest.raises(ValueError, match="data shape"):
        assemble(bad, geometry)
