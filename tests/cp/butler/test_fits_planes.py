"""Planes written by fits_planes read back exactly, by Astropy, lsst-images and (if installed) CFITSIO."""

from __future__ import annotations

from pathlib import Path

import astropy.io.fits
import numpy as np
import pydantic
import pytest
from lsst.images import Image, Mask, MaskedImage
from lsst.images.fits import FitsCompressionOptions
from lsst.images.serialization import read_archive

from lsst.ts.calibscripts.cp.butler.fits_planes import PlaneCompression, deflate, write_fits
from lsst.ts.calibscripts.cp.tasks.image_conventions import MASK_SCHEMA

SHAPE = (250, 123)


def _masked_image(variance: np.ndarray | None = None) -> MaskedImage:
    rng = np.random.default_rng(3)
    image = rng.normal(1000.0, 7.0, size=SHAPE).astype(np.float32)
    image[5, 7] = np.nan
    image[6, 8] = np.inf
    mask = Mask(schema=MASK_SCHEMA, shape=SHAPE)
    bad = np.zeros(SHAPE, dtype=bool)
    bad[10:20, 30:33] = True
    mask.set("BAD", bad)
    return MaskedImage(
        Image(image),
        mask=mask,
        variance=None if variance is None else Image(variance),
        metadata={"LSST CALIB TYPE": "bias"},
    )


PRODUCT = {
    "image": PlaneCompression("GZIP_1", tile_rows=100, level=2),
    "mask": PlaneCompression("RICE_1", tile_rows=100),
    "variance": PlaneCompression("GZIP_1", tile_rows=100, level=2),
}


def _kinds(path: Path) -> dict[str, str]:
    with astropy.io.fits.open(path, disable_image_compression=True) as hdus:
        return {
            hdu.name: hdu.header["ZCMPTYPE"] if hdu.header.get("ZIMAGE") else "plain"
            for hdu in hdus[1:]
            if hdu.name in ("IMAGE", "MASK", "VARIANCE")
        }


def test_product_planes_round_trip(tmp_path: Path) -> None:
    variance = np.random.default_rng(4).uniform(1, 2, size=SHAPE).astype(np.float32)
    original = _masked_image(variance)
    path = tmp_path / "product.fits"
    write_fits(original, str(path), PRODUCT)
    assert _kinds(path) == {"IMAGE": "GZIP_1", "MASK": "RICE_1", "VARIANCE": "GZIP_1"}
    back = read_archive(str(path))
    assert isinstance(back, MaskedImage)
    np.testing.assert_array_equal(back.image.array, original.image.array)
    np.testing.assert_array_equal(back.variance.array, variance)
    np.testing.assert_array_equal(back.mask.array, original.mask.array)
    assert back.metadata["LSST CALIB TYPE"] == "bias"
    with astropy.io.fits.open(path) as hdus:
        np.testing.assert_array_equal(hdus["IMAGE"].data, original.image.array)
    with astropy.io.fits.open(path, disable_image_compression=True) as hdus:
        assert hdus["IMAGE"].header["ZTILE2"] == 100
    # A row-block cut-out decompresses only its tiles, and is exact.
    with astropy.io.fits.open(path) as hdus:
        np.testing.assert_array_equal(hdus["IMAGE"].section[120:180, :], original.image.array[120:180])


def test_cfitsio_reads_the_products(tmp_path: Path) -> None:
    fitsio = pytest.importorskip("fitsio")
    original = _masked_image(np.full(SHAPE, 2.5, dtype=np.float32))
    path = tmp_path / "product.fits"
    write_fits(original, str(path), PRODUCT)
    np.testing.assert_array_equal(fitsio.read(str(path), ext="IMAGE"), original.image.array)
    np.testing.assert_array_equal(fitsio.read(str(path), ext="VARIANCE"), original.variance.array)


def test_constant_plane_costs_nothing(tmp_path: Path) -> None:
    """A variance of ones (doVariance=False) is one compressed tile repeated."""
    original = _masked_image()
    path = tmp_path / "intermediate.fits"
    write_fits(original, str(path), {"image": None, "mask": PRODUCT["mask"], "variance": PRODUCT["variance"]})
    assert _kinds(path) == {"IMAGE": "plain", "MASK": "RICE_1", "VARIANCE": "GZIP_1"}
    with astropy.io.fits.open(path, disable_image_compression=True) as hdus:
        assert hdus["VARIANCE"].header["PCOUNT"] < 2000
    back = read_archive(str(path))
    np.testing.assert_array_equal(back.variance.array, np.ones(SHAPE, dtype=np.float32))
    np.testing.assert_array_equal(back.image.array, original.image.array)


def test_planes_left_to_lsst_images(tmp_path: Path) -> None:
    original = _masked_image()
    path = tmp_path / "mixed.fits"
    write_fits(original, str(path), {"image": FitsCompressionOptions(algorithm="GZIP_2"), "variance": None})
    assert _kinds(path) == {"IMAGE": "GZIP_2", "MASK": "GZIP_2", "VARIANCE": "plain"}
    np.testing.assert_array_equal(read_archive(str(path)).image.array, original.image.array)


def test_recipes() -> None:
    assert PlaneCompression.from_recipe(None) is None
    rice = PlaneCompression.from_recipe({"algorithm": "RICE_1", "tile_shape": [50, 4072]})
    assert rice == PlaneCompression("RICE_1", tile_rows=50)
    assert PlaneCompression.from_recipe({"algorithm": "GZIP_1", "level": 1}) == PlaneCompression(
        "GZIP_1", tile_rows=100, level=1
    )
    assert isinstance(PlaneCompression.from_recipe({"algorithm": "GZIP_2"}), FitsCompressionOptions)
    with pytest.raises(ValueError, match="Unknown plane options"):
        PlaneCompression.from_recipe({"algorithm": "GZIP_1", "levle": 1})
    with pytest.raises(ValueError, match="GZIP_1 and RICE_1 only"):
        PlaneCompression.from_recipe({"algorithm": "GZIP_2", "level": 1})
    with pytest.raises(pydantic.ValidationError):
        PlaneCompression.from_recipe({"algorithm": "LZMA"})
    with pytest.raises(ValueError, match="RICE_1 is lossless for integer pixels only"):
        PlaneCompression("RICE_1").make_hdu(np.zeros((3, 3), dtype=np.float32), "IMAGE")


def test_deflate_is_a_standard_gzip_stream() -> None:
    import gzip

    data = np.arange(10_000, dtype=">f4").tobytes()
    assert gzip.decompress(deflate(data, 2)) == data
    assert deflate(data, 2) == deflate(data, 2)
