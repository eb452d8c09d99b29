"""Butler formatters for the datasets the Butler has no built-in reader for.

Raws need one (`RawFormatter`). The calibration images use lsst-images'
`~lsst.images.formatters.GenericFormatter` (``ImageV2``/``MaskedImageV2``),
or for the intermediate images of the pipelines its subclass
`ImageRecipeFormatter`, whose write recipes may leave a plane uncompressed.
The verification statistics use the built-in YAML formatter
(``StructuredDataDict``), defects the Parquet formatter (``ArrowAstropy``) and
the photon transfer curve the JSON formatter (a pydantic model). The mapping
from storage class or dataset type to formatter, and the write recipes, are
in ``butler_seed.yaml``, which
`lsst.ts.calibscripts.cp.butler.repository.create_repository` puts into each new
repository's own configuration.
"""

from __future__ import annotations

__all__ = ["ImageRecipeFormatter", "RawFormatter"]

from collections.abc import Mapping
from typing import Any, ClassVar

from lsst.daf.butler import FormatterNotImplementedError, FormatterV2
from lsst.images.fits import FitsCompressionOptions
from lsst.images.formatters import GenericFormatter
from lsst.resources import ResourcePath

from .raw_file import RawImage, read_raw


class RawFormatter(FormatterV2):
    """Read a raw camera file into a `~lsst.ts.calibscripts.cp.butler.raw_file.RawImage`.

    The amplifier segments, their data, overscan and detector sections are
    taken from the file's own extension keywords (``DATASEC``, ``BIASSEC``,
    ``DETSEC``) by `~lsst.ts.calibscripts.cp.butler.raw_file.read_raw`, so full-size
    and reduced-geometry files read alike.

    Raws enter a repository by ingest, never by ``Butler.put``: writing is
    deliberately not supported.
    """

    default_extension: ClassVar[str] = ".fits"
    supported_extensions: ClassVar[frozenset[str]] = frozenset({".fits", ".fits.fz", ".fz"})
    can_read_from_local_file: ClassVar[bool] = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Read a raw file.

        Parameters
        ----------
        path
            Local path of the file.
        component
            Must be `None`: the raw storage class has no components.
        expected_size
            Unused.

        Returns
        -------
        raw
            The raw image with its headers and geometry.

        Raises
        ------
        ValueError
            If a component is requested, or the file is not a raw laid out
            as the cameras write them (the message names the problem).
        """
        if component is not None:
            raise ValueError(f"Raw datasets have no components; asked for {component!r} of {path}.")
        raw: RawImage = read_raw(path)
        return raw

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Refuse to write: raws are ingested from the camera's files.

        Raises
        ------
        lsst.daf.butler.FormatterNotImplementedError
            Always.
        """
        raise FormatterNotImplementedError(
            f"Raw datasets are ingested from camera files, not written through the Butler ({uri})."
        )


class ImageRecipeFormatter(GenericFormatter):
    """lsst-images formatter whose FITS write recipes may leave planes uncompressed.

    A recipe maps a plane name (``image``, ``mask``, ``variance``) to
    `~lsst.images.fits.FitsCompressionOptions`, exactly as for
    `~lsst.images.formatters.GenericFormatter`, or to ``null``: that plane
    is written as a plain FITS image HDU. Planes a recipe does not name get
    the lsst-images default (lossless ``GZIP_2``, one tile per row).

    Why: the pipelines' intermediate images (``cpBiasProc``,
    ``verifyBiasProc``...) are written once, read back once or twice in row
    blocks, and then never used again. Astropy compresses ``GZIP_2`` at zlib
    level 9, one row tile at a time: writing a full-size ITL image that way
    takes seconds, and reading a block of rows back decompresses every tile
    through Python. For float pixels with noise it saves little space
    either (56 of 62 MiB). An uncompressed plane is written and read at
    disk speed, and a row block is read without touching the other rows.

    Reading is `~lsst.images.formatters.GenericFormatter`'s: FITS readers
    handle compressed and plain HDUs alike, so files written either way read
    the same, and the recipe changes no pixel value.
    """

    @classmethod
    def validate_write_recipes(cls, recipes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Check every recipe: each plane's options, or ``null``.

        Parameters
        ----------
        recipes
            Recipes by name, each a mapping from plane name to compression
            options or `None`.

        Returns
        -------
        recipes
            The recipes, unchanged.

        Raises
        ------
        ValueError
            If a recipe is not a mapping of planes.
        pydantic.ValidationError
            If a plane's options are not valid
            `~lsst.images.fits.FitsCompressionOptions` (the note names the
            recipe and plane).
        """
        if not recipes:
            return recipes
        for name, recipe in recipes.items():
            if not isinstance(recipe, Mapping):
                raise ValueError(f"Write recipe {name!r} must map plane names to compression options.")
            for plane, options in recipe.items():
                if options is None:
                    continue
                try:
                    FitsCompressionOptions.model_validate(options)
                except Exception as err:
                    err.add_note(f"write recipe {name!r}, plane {plane!r}")
                    raise
        return recipes

    # The base class annotates its options as never None, but the FITS
    # archive it hands them to documents None as "write this plane
    # uncompressed"; tests/cp/butler/test_formatters.py checks the HDU types,
    # so a change of this private hook upstream fails loudly.
    def _get_compression_options(self) -> dict[str, FitsCompressionOptions | None]:  # type: ignore[override]
        # Same lookup as the base class (the "recipe" write parameter, the
        # software defaults when there is no "default" recipe), but a null
        # plane stays None.
        recipe = self.write_parameters.get("recipe", "default")
        try:
            config = self.write_recipes[recipe]
        except KeyError:
            if recipe == "default":
                return {}
            raise RuntimeError(f"Invalid recipe for {type(self).__name__}: {recipe!r}.") from None
        return {
            plane: None if options is None else FitsCompressionOptions.model_validate(options)
            for plane, options in config.items()
        }
