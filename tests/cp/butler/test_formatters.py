"""How the pipelines' images are stored: write recipes of the seed configuration."""

from __future__ import annotations

import astropy.io.fits
import pydantic
import pytest

from lsst.ts.calibscripts.cp.butler.formatters import ImageRecipeFormatter

from .conftest import LatissCalibrations, LatissNight


def _hdu_kinds(path: str) -> dict[str, str]:
    """EXTNAME -> ``plain`` or the compression algorithm of each image HDU."""
    kinds = {}
    with astropy.io.fits.open(path, disable_image_compression=True) as hdus:
        for hdu in hdus[1:]:
            if hdu.header.get("ZIMAGE"):
                kinds[hdu.name] = hdu.header["ZCMPTYPE"]
            elif isinstance(hdu, astropy.io.fits.ImageHDU):
                kinds[hdu.name] = "plain"
    return kinds


def test_intermediate_images_are_uncompressed(
    latiss_night: LatissNight, latiss_calibrations: LatissCalibrations
) -> None:
    with latiss_night.butler(latiss_calibrations.bias, latiss_calibrations.dark) as butler:
        exposure = latiss_night.biases[0]
        proc = butler.getURI("cpBiasProc", instrument="LATISS", detector=0, exposure=exposure)
        assert _hdu_kinds(proc.ospath) == {"IMAGE": "plain", "MASK": "RICE_1", "VARIANCE": "GZIP_1"}
        dark_exposure = latiss_night.darks[0]
        dark_proc = butler.getURI("cpDarkProc", instrument="LATISS", detector=0, exposure=dark_exposure)
        assert _hdu_kinds(dark_proc.ospath) == {"IMAGE": "plain", "MASK": "RICE_1", "VARIANCE": "plain"}
        # The products stay losslessly compressed.
        bias = butler.getURI("bias", instrument="LATISS", detector=0)
        assert _hdu_kinds(bias.ospath) == {"IMAGE": "GZIP_1", "MASK": "RICE_1", "VARIANCE": "GZIP_1"}


def test_recipe_validation() -> None:
    recipes = {"plain": {"image": None, "mask": {"algorithm": "RICE_1"}}}
    assert ImageRecipeFormatter.validate_write_recipes(recipes) == recipes
    with pytest.raises(ValueError, match="must map plane names"):
        ImageRecipeFormatter.validate_write_recipes({"broken": None})
    with pytest.raises(pydantic.ValidationError) as info:
        ImageRecipeFormatter.validate_write_recipes({"typo": {"mask": {"algorithm": "LZMA"}}})
    assert "write recipe 'typo', plane 'mask'" in str(info.value.__notes__)
