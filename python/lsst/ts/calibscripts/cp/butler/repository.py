"""Create a calibscripts Butler repository in one step.

A repository made here is an ordinary daf_butler repository (a directory
with ``butler.yaml`` and the datastore; the registry in SQLite inside it, or
in PostgreSQL), with three things added so that the calibration pipelines
work on it straight away:

* the storage classes and formatters of ``butler_seed.yaml`` in the
  repository's own configuration (so reads never depend on environment
  variables);
* the requested instruments registered (instrument, detector and
  physical_filter records);
* the raw and calibration dataset types (``bias``, ``dark``, ``flat``,
  ``defects``, ``ptc``) and each instrument's ``<instrument>/raw/all`` RUN
  collection.
"""

from __future__ import annotations

__all__ = [
    "RAW_DATASET_TYPE_NAME",
    "RAW_STORAGE_CLASS",
    "RepositoryError",
    "create_repository",
    "ensure_repository",
    "raw_collection",
    "register_instruments",
    "seed_config",
]

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from lsst.daf.butler import Butler, CollectionType, Config, DatasetType

from .dataset_types import register_calibration_dataset_types
from .instrument import get_instrument

_log = logging.getLogger(__name__)

RAW_DATASET_TYPE_NAME = "raw"
"""Dataset type name of raw images."""

RAW_STORAGE_CLASS = "RawImage"
"""Storage class of raw images (defined in ``butler_seed.yaml``)."""

_SEED_CONFIG_PATH = Path(__file__).resolve().parent / "butler_seed.yaml"


class RepositoryError(RuntimeError):
    """A repository cannot be created or opened as requested."""


def seed_config() -> Config:
    """Return the seed configuration of a new repository.

    Returns
    -------
    config
        The content of ``butler_seed.yaml``: storage classes and formatter
        assignments of this package's datasets.
    """
    return Config(str(_SEED_CONFIG_PATH))


def raw_collection(instrument: str) -> str:
    """Return the RUN collection raws of an instrument are ingested into.

    Parameters
    ----------
    instrument
        Instrument name, e.g. ``LATISS``.

    Returns
    -------
    collection
        ``<instrument>/raw/all``, e.g. ``LATISS/raw/all``.
    """
    return get_instrument(instrument).makeDefaultRawIngestRunName()


def _postgres_namespace(root: Path) -> str:
    # One PostgreSQL database can hold several repositories, each in its own
    # schema; derive a valid, stable schema name from the directory name.
    name = re.sub(r"[^a-z0-9_]", "_", root.name.lower()).strip("_") or "butler"
    return name if name[0].isalpha() else f"repo_{name}"


def create_repository(
    root: str | Path,
    instruments: Sequence[str] = ("LATISS",),
    *,
    db: str | None = None,
    namespace: str | None = None,
) -> Path:
    """Create a repository, register instruments and prepare raw ingest.

    Parameters
    ----------
    root
        Directory of the new repository (created if needed; must not hold a
        repository already). The datastore lives here in every case.
    instruments
        Butler names of the instruments to register (``LATISS``,
        ``LSSTComCam``).
    db
        Registry database URL. `None` (the default) means SQLite in
        ``<root>/gen3.sqlite3``. A ``postgresql://user@host:port/database``
        URL puts the registry in PostgreSQL: it needs the ``psycopg``
        driver, and the database must have the ``btree_gist`` extension
        (``CREATE EXTENSION btree_gist;``, run once by a database owner).
    namespace
        PostgreSQL schema holding this repository's tables, so that one
        database can serve several repositories. Defaults to a name derived
        from the directory name. Ignored for SQLite.

    Returns
    -------
    root
        The absolute path of the repository.

    Raises
    ------
    RepositoryError
        If a repository already exists at ``root``, or the database cannot
        be used (the message names the cause and, for PostgreSQL, the
        usual fixes).
    KeyError
        If an instrument name is not supported.
    """
    root = Path(root).expanduser().resolve()
    # Fail on a bad instrument name before anything is written.
    for name in instruments:
        get_instrument(name)
    if (root / "butler.yaml").exists():
        raise RepositoryError(
            f"A Butler repository already exists at {root}; to reuse it, pass --exist-ok to "
            "'calibscripts repo create' (or call ensure_repository)."
        )
    config = seed_config()
    force_config_root = True
    if db is not None:
        if not db.startswith(("postgresql://", "postgresql+psycopg://", "sqlite://")):
            raise RepositoryError(
                f"Unsupported registry database URL {db!r}: use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DATABASE."
            )
        config["registry", "db"] = db
        if db.startswith("postgresql"):
            config["registry", "namespace"] = namespace or _postgres_namespace(root)
        # Keep the explicit database URL instead of the default SQLite file
        # under the root.
        force_config_root = False
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        Butler.makeRepo(str(root), config=config, forceConfigRoot=force_config_root)
    except Exception as err:
        # Leave no half-made repository behind: a butler.yaml without a
        # registry would make the next attempt fail with "already exists".
        (root / "butler.yaml").unlink(missing_ok=True)
        if created and not any(root.iterdir()):
            root.rmdir()
        raise RepositoryError(_explain_database_error(db, err)) from err
    register_instruments(root, instruments)
    _log.info("Created Butler repository %s with instruments %s", root, ", ".join(instruments))
    return root


def _explain_database_error(db: str | None, err: Exception) -> str:
    text = f"{type(err).__name__}: {err}".rstrip(". ")
    if db is None or not db.startswith("postgresql"):
        return f"Cannot create the repository registry: {text}"
    hints = []
    if isinstance(err, ModuleNotFoundError | ImportError) or "No module named" in text:
        hints.append("install the PostgreSQL driver: pip install 'psycopg[binary]'")
    if "btree_gist" in text or "gist" in text.lower():
        hints.append("run 'CREATE EXTENSION btree_gist;' in the database as its owner")
    if "connection" in text.lower() or "could not connect" in text.lower():
        hints.append("check that the server is running and the URL (user, host, port, database) is right")
    hint = f" Fix: {'; '.join(hints)}." if hints else ""
    return f"Cannot create the PostgreSQL registry at {db}: {text}.{hint}"


def register_instruments(repo: str | Path | Butler, instruments: Iterable[str]) -> None:
    """Register instruments, dataset types and raw RUN collections.

    Idempotent: registering an instrument again changes nothing.

    Parameters
    ----------
    repo
        Repository root (or an already writeable `Butler`).
    instruments
        Butler names of the instruments.

    Raises
    ------
    KeyError
        If an instrument name is not supported.
    lsst.daf.butler.registry.ConflictingDefinitionError
        If the repository has records of the same instrument that differ.
    """
    butler = repo if isinstance(repo, Butler) else Butler.from_config(str(repo), writeable=True)
    try:
        raw_type = DatasetType(
            RAW_DATASET_TYPE_NAME,
            ("instrument", "detector", "exposure"),
            RAW_STORAGE_CLASS,
            universe=butler.dimensions,
        )
        butler.registry.registerDatasetType(raw_type)
        register_calibration_dataset_types(butler)
        for name in instruments:
            instrument = get_instrument(name)
            # update=True: a registry written before the instrument classes moved
            # to cp.butler names their old path; it is brought up to date.
            instrument.register(butler.registry, update=True)
            butler.collections.register(raw_collection(name), CollectionType.RUN)
    finally:
        if not isinstance(repo, Butler):
            butler.close()


def ensure_repository(
    root: str | Path,
    instruments: Sequence[str] = ("LATISS",),
    *,
    db: str | None = None,
) -> Path:
    """Create a repository unless one exists; register instruments either way.

    This is what a simulated observatory calls on start-up: the first run
    creates the repository, later runs reuse it (and its data).

    Parameters
    ----------
    root
        Repository directory.
    instruments
        Butler names of the instruments that must be registered.
    db
        Registry URL used only if the repository has to be created; see
        `create_repository`.

    Returns
    -------
    root
        The absolute path of the repository.
    """
    root = Path(root).expanduser().resolve()
    if (root / "butler.yaml").exists():
        register_instruments(root, instruments)
        return root
    return create_repository(root, instruments, db=db)
