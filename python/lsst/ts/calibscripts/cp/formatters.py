"""Butler formatters for the datasets the Butler has no built-in reader for.

Only raws need one: the calibration images use lsst-images'
`~lsst.images.formatters.GenericFormatter` (``ImageV2``/``MaskedImageV2``),
the verification statistics the built-in YAML formatter
(``StructuredDataDict``), defects the Parquet formatter (``ArrowAstropy``) and
the photon transfer curve the JSON formatter (a pydantic model). The mapping
from storage class to formatter is in ``butler_seed.yaml``, which
`lsst.ts.calibscripts.cp.repository.create_repository` puts into each new
repository's own configuration.
"""

from __future__ import annotations

__all__ = ["RawFormatter"]

from typing import Any, ClassVar

from lsst.daf.butler import FormatterNotImplementedError, FormatterV2
from lsst.resources import ResourcePath

from .raw_file import RawImage, read_raw


class RawFormatter(FormatterV2):
    """Read a raw camera file into a `~lsst.ts.calibscripts.cp.raw_file.RawImage`.

    The amplifier segments, their data, overscan and detector sections are
    taken from the file's own extension keywords (``DATASEC``, ``BIASSEC``,
    ``DETSEC``) by `~lsst.ts.calibscripts.cp.raw_file.read_raw`, so full-size
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
