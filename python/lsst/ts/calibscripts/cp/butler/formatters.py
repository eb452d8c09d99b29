"""Butler formatters for the datasets the Butler has no built-in reader for.

Raws need one (`RawFormatter`). The images of the pipelines (``MaskedImageV2``:
the products and the intermediate images) use `ImageRecipeFormatter`, a
subclass of lsst-images' `~lsst.images.formatters.GenericFormatter` whose
write recipes leave a plane uncompressed or compress it losslessly and fast
(`lsst.ts.calibscripts.cp.butler.fits_planes`).
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

from lsst.daf.butler import DatasetProvenance, FormatterNotImplementedError, FormatterV2
from lsst.images.formatters import GenericFormatter
from lsst.images.serialization import ButlerInfo
from lsst.resources import ResourcePath

from .fits_planes import PlaneCompression, PlaneOptions, write_fits
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
    """lsst-images formatter that writes its planes fast, as its recipes say.

    A recipe maps a plane name (``image``, ``mask``, ``variance``) to

    * ``null``: the plane is written as a plain FITS image HDU;
    * ``{algorithm: GZIP_1 | RICE_1, tile_rows: N, level: L}``: the plane is
      tile-compressed losslessly by
      `lsst.ts.calibscripts.cp.butler.fits_planes` (tiles of ``N`` whole
      rows, deflate level ``L`` with ISA-L, tiles compressed in threads; a
      constant plane compressed once); lsst-images' ``tile_shape`` is
      accepted for ``tile_rows``;
    * other `~lsst.images.fits.FitsCompressionOptions` (``GZIP_2``,
      quantization): written by lsst-images, as by
      `~lsst.images.formatters.GenericFormatter`.

    Planes a recipe does not name get the lsst-images default (lossless
    ``GZIP_2``, one tile per row).

    Why: lsst-images compresses through Astropy, whose ``GZIP`` tiles are
    deflated at zlib level 9 one at a time: 5 to 20 s of CPU for a full-size
    ITL float plane, most of the time a combination took. The intermediate
    images (``cpBiasProc``...) are written once and read back once or twice
    in row blocks: their pixels are stored plain, read and written at disk
    speed, and their constant variance (``doVariance=False``) costs a few
    KiB. The products (``bias``, ``dark``, ``flat``) stay compressed
    losslessly as ``GZIP_1`` and ``RICE_1`` tiles that Astropy, CFITSIO and
    lsst-images read.

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
            If a recipe is not a mapping of planes, or a plane's options are
            not valid (the note names the recipe and plane).
        pydantic.ValidationError
            If options left to lsst-images are not valid
            `~lsst.images.fits.FitsCompressionOptions`.
        """
        if not recipes:
            return recipes
        for name, recipe in recipes.items():
            if not isinstance(recipe, Mapping):
                raise ValueError(f"Write recipe {name!r} must map plane names to compression options.")
            for plane, options in recipe.items():
                try:
                    PlaneCompression.from_recipe(options)
                except Exception as err:
                    err.add_note(f"write recipe {name!r}, plane {plane!r}")
                    raise
        return recipes

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Write the dataset; FITS planes as the recipe says (`fits_planes.write_fits`).

        Parameters
        ----------
        in_memory_dataset
            The lsst-images object.
        uri
            Local file to write.
        """
        self._validate_write_parameters()
        if self.get_write_extension() != ".fits":
            super().write_local_file(in_memory_dataset, uri)
            return
        butler_info = ButlerInfo(
            dataset=self.dataset_ref.to_simple(),
            provenance=self.butler_provenance if self.butler_provenance is not None else DatasetProvenance(),
        )
        write_fits(
            in_memory_dataset,
            uri.ospath,
            self._plane_options(),
            update_header=self._update_header,
            compression_seed=self._get_compression_seed(),
            butler_info=butler_info,
        )

    def _plane_options(self) -> dict[str, PlaneOptions]:
        # Same lookup as the base class (the "recipe" write parameter, the
        # software defaults when there is no "default" recipe).
        recipe = self.write_parameters.get("recipe", "default")
        try:
            config = self.write_recipes[recipe]
        except KeyError:
            if recipe == "default":
                return {}
            raise RuntimeError(f"Invalid recipe for {type(self).__name__}: {recipe!r}.") from None
        return {plane: PlaneCompression.from_recipe(options) for plane, options in config.items()}
