"""Image names and sequence numbers, as Rubin cameras assign them.

Sequence numbers belong to a Butler repository, not to a camera process: two
simulated cameras writing into one repository (two runs at once, from any
var dir) must never hand out the same exposure id. `ImageNameSource` keeps
the last ``(day_obs, seq_num)`` of each instrument in a small JSON file
stored with the repository (``<repo>/.calibscripts/sequence-<instrument>.json``)
and updates it under an exclusive file lock (``fcntl.flock``), so that
read-increment-write is atomic across processes. The first number of a day
is taken above the highest ``seq_num`` of that day already in the
repository's registry, so repositories made before the state file existed
keep working.
"""

from __future__ import annotations

__all__ = [
    "STATE_DIR_NAME",
    "ImageNameSource",
    "day_obs_for",
    "file_lock",
    "local_repository_root",
    "raw_paths_in_repository",
    "registry_exposure_ids",
    "registry_last_seq_num",
]

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..cp.camera.description import InstrumentDescription

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

#: Directory, inside a local repository's root, holding what calibscripts keeps with it.
STATE_DIR_NAME = ".calibscripts"

#: Largest sequence number of a day (exposure ids have five digits for it).
MAX_SEQ_NUM = 99_999

# Rubin's observing day changes at 12:00 UTC (UTC-12h), so a night never spans two days.
_DAY_OBS_OFFSET = datetime.timedelta(hours=12)


def day_obs_for(when: datetime.datetime) -> int:
    """Return the observing day ``YYYYMMDD`` of a time (UTC-12h rule).

    Parameters
    ----------
    when : `datetime.datetime`
        A timezone-aware time.

    Returns
    -------
    day_obs : `int`
        The observing day, e.g. ``20220929``.

    Raises
    ------
    ValueError
        If ``when`` has no time zone.
    """
    if when.tzinfo is None:
        raise ValueError("day_obs_for needs a timezone-aware time")
    day = (when.astimezone(datetime.UTC) - _DAY_OBS_OFFSET).date()
    return day.year * 10000 + day.month * 100 + day.day


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock (``fcntl.flock``) on a lock file, across processes.

    Blocks until the lock is free. The file (and its directory) is created
    if needed and left in place; the lock is released when the block ends,
    or when the process dies.

    Parameters
    ----------
    path : `pathlib.Path`
        The lock file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def local_repository_root(repo: str | Path | None) -> Path | None:
    """Return the root directory of a repository on a local file system.

    Parameters
    ----------
    repo : `str`, `pathlib.Path` or `None`
        A repository: a directory holding ``butler.yaml``, the path of a
        ``butler.yaml`` file, or a ``file://`` URI of either.

    Returns
    -------
    root : `pathlib.Path` or `None`
        The resolved directory holding ``butler.yaml``; `None` if ``repo``
        is `None`, a non-file URL (``s3://``, ``https://``...) or not an
        existing local repository.
    """
    if repo is None:
        return None
    text = str(repo)
    if "://" in text:
        parsed = urlparse(text)
        if parsed.scheme != "file":
            return None
        text = unquote(parsed.path)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix in (".yaml", ".json"):
        path = path.parent
    if not (path / "butler.yaml").is_file():
        return None
    return path.resolve()


def _open_butler(repo: str | Path, writeable: bool = False) -> Butler:
    # Imported here: camera-only users (and the image-name tests) do not need the Butler.
    from lsst.daf.butler import Butler

    return Butler.from_config(str(repo), writeable=writeable)


def registry_last_seq_num(repo: str | Path | Butler, instrument: str, day_obs: int) -> int:
    """Return the highest sequence number of a day in a repository's registry.

    Parameters
    ----------
    repo : `str`, `pathlib.Path` or `lsst.daf.butler.Butler`
        The repository (or a Butler of it).
    instrument : `str`
        Butler instrument name.
    day_obs : `int`
        Observing day ``YYYYMMDD``.

    Returns
    -------
    seq_num : `int`
        The largest ``seq_num`` of the instrument's exposures of that day
        (the sequence number is also the last five digits of the exposure
        id); 0 if there are none or the instrument is not registered.
    """
    with contextlib.ExitStack() as stack:
        butler = stack.enter_context(_open_butler(repo)) if isinstance(repo, str | Path) else repo
        registered = {record.name for record in butler.query_dimension_records("instrument")}
        if instrument not in registered:
            return 0
        records = butler.query_dimension_records(
            "exposure",
            instrument=instrument,
            where="exposure.day_obs = day",
            bind={"day": day_obs},
            order_by="-exposure.seq_num",
            limit=1,
            explain=False,
        )
        return max((int(record.seq_num) for record in records), default=0)


def registry_exposure_ids(repo: str | Path, instrument: str) -> set[int]:
    """Return the ids of every exposure of an instrument in a repository's registry.

    Parameters
    ----------
    repo : `str` or `pathlib.Path`
        The repository.
    instrument : `str`
        Butler instrument name.

    Returns
    -------
    exposure_ids : `set` [`int`]
        The exposure ids (empty if the instrument is not registered).
    """
    with _open_butler(repo) as butler:
        registered = {record.name for record in butler.query_dimension_records("instrument")}
        if instrument not in registered:
            return set()
        records = butler.query_dimension_records("exposure", instrument=instrument, limit=None, explain=False)
        return {int(record.id) for record in records}


def raw_paths_in_repository(repo: str | Path, instrument: str, exposure_id: int) -> set[Path]:
    """Return the files of an exposure's raws in a repository.

    Parameters
    ----------
    repo : `str` or `pathlib.Path`
        The repository.
    instrument : `str`
        Butler instrument name.
    exposure_id : `int`
        Exposure id.

    Returns
    -------
    paths : `set` [`pathlib.Path`]
        Resolved local paths of the ``raw`` datasets of that exposure in
        ``<instrument>/raw/all`` (empty if there are none).
    """
    from ..cp.butler.repository import RAW_DATASET_TYPE_NAME, raw_collection

    with _open_butler(repo) as butler:
        registered = {record.name for record in butler.query_dimension_records("instrument")}
        if instrument not in registered:
            return set()
        refs = butler.query_datasets(
            RAW_DATASET_TYPE_NAME,
            collections=raw_collection(instrument),
            instrument=instrument,
            where="exposure = exposure_id",
            bind={"exposure_id": exposure_id},
            limit=None,
            explain=False,
        )
        paths = set()
        for ref in refs:
            uri = butler.getURI(ref)
            if uri.isLocal:
                paths.add(Path(uri.ospath).resolve())
        return paths


class ImageNameSource:
    """Hand out image names whose sequence numbers never repeat in a repository.

    The last ``(day_obs, seq_num)`` of the instrument is kept in a JSON
    state file and updated under an exclusive lock (``fcntl.flock`` on a
    lock file beside it) for every name, so that any number of sources, in
    any processes, allocating for the same repository get distinct numbers.
    The sequence restarts on a new observing day, above the highest
    ``seq_num`` of that day already in the repository's registry.

    Where the state is kept:

    * ``repo`` is a local repository (a directory holding ``butler.yaml``):
      ``<repo>/.calibscripts/sequence-<instrument>.json``, so that every
      run against that repository shares it, whatever its var dir;
    * otherwise (a repository URL, or no repository): under ``state_dir``,
      in a file named after the repository. That state is private to the
      var dir, so the registry is then consulted on every allocation too.

    Parameters
    ----------
    instrument : `InstrumentDescription`
        The instrument (its name keys the state; its prefix, ``AT`` or
        ``CC``, starts the names).
    repo : `str`, `pathlib.Path` or `None`, optional
        The Butler repository the images go to.
    state_dir : `pathlib.Path`, optional
        Where to keep the state if ``repo`` is not a local repository.
    controller : `str`, optional
        Controller code in the name (``O`` for OCS).

    Raises
    ------
    ValueError
        If ``repo`` is not a local repository and no ``state_dir`` is given.
    """

    def __init__(
        self,
        instrument: InstrumentDescription,
        *,
        repo: str | Path | None = None,
        state_dir: Path | None = None,
        controller: str = "O",
    ) -> None:
        self.instrument = instrument
        self.controller = controller
        self.repo = repo
        root = local_repository_root(repo)
        #: Whether the state is stored with the repository (shared by every run against it).
        self.stored_with_repository = root is not None
        if root is not None:
            directory = root / STATE_DIR_NAME
            stem = f"sequence-{instrument.name}"
        elif state_dir is not None:
            directory = Path(state_dir)
            stem = f"sequence-{instrument.name}"
            if repo is not None:
                stem += "-" + hashlib.sha256(str(repo).encode()).hexdigest()[:12]
        else:
            raise ValueError(
                f"Cannot keep sequence numbers: {repo!r} is not a local repository and no state_dir is given"
            )
        #: JSON file holding the last ``{"day_obs": ..., "seq_num": ...}``.
        self.state_file = directory / f"{stem}.json"
        #: File locked (``fcntl.flock``) for every read-increment-write of the state.
        self.lock_file = directory / f"{stem}.lock"

    def next(self, when: datetime.datetime | None = None) -> tuple[str, int, int]:
        """Allocate the next sequence number; return ``(image_name, day_obs, seq_num)``.

        Blocks while another source holds the lock (a few milliseconds,
        longer on the first image of a day, when the registry is read).

        Parameters
        ----------
        when : `datetime.datetime`, optional
            Time of the image (timezone-aware); now by default. If it falls
            on an observing day before the last one allocated, the last day
            is continued (numbers never go back).

        Returns
        -------
        image_name : `str`
            E.g. ``AT_O_20220929_000001``.
        day_obs : `int`
            Observing day ``YYYYMMDD``.
        seq_num : `int`
            Sequence number within the day.

        Raises
        ------
        RuntimeError
            If the day's 99999 sequence numbers are used up.
        """
        day_obs = day_obs_for(when or datetime.datetime.now(datetime.UTC))
        with file_lock(self.lock_file):
            last_day, last_seq = self._read()
            if day_obs > last_day:
                last_day, last_seq = day_obs, self._registry_last(day_obs)
            elif not self.stored_with_repository and self.repo is not None:
                last_seq = max(last_seq, self._registry_last(last_day))
            if last_seq >= MAX_SEQ_NUM:
                raise RuntimeError(f"No sequence numbers left for day_obs {last_day}")
            last_seq += 1
            self._write(last_day, last_seq)
        return self.instrument.obs_id(last_day, last_seq, self.controller), last_day, last_seq

    def last(self) -> tuple[int, int]:
        """Return the last ``(day_obs, seq_num)`` allocated (``(0, 0)`` if none)."""
        with file_lock(self.lock_file):
            return self._read()

    def _read(self) -> tuple[int, int]:
        try:
            state: Any = json.loads(self.state_file.read_text())
            return int(state["day_obs"]), int(state["seq_num"])
        except FileNotFoundError:
            return 0, 0
        except (ValueError, KeyError, TypeError) as err:
            raise RuntimeError(
                f"Sequence state {self.state_file} is unreadable ({err}); fix or delete it "
                "(numbers then restart above the highest in the registry)"
            ) from err

    def _write(self, day_obs: int, seq_num: int) -> None:
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with open(tmp, "w") as stream:
            json.dump({"day_obs": day_obs, "seq_num": seq_num}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, self.state_file)  # atomic: a crash never leaves a half-written state

    def _registry_last(self, day_obs: int) -> int:
        if self.repo is None:
            return 0
        return registry_last_seq_num(self.repo, self.instrument.name, day_obs)
