"""Locations of the package's data: schemas and script executables.

The ``schemas/`` directory at the top of the repository is the single source
of truth for interface definitions and script configuration schemas. A wheel
carries it inside the package (``lsst/ts/calibscripts/schemas``); an editable
install reads it from the repository.
"""

__all__ = ["VAR_DIR_ENV_VAR", "project_var_dir", "schemas_dir", "scripts_dir"]

import functools
import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def schemas_dir() -> Path:
    """Return the directory holding ``interfaces/`` and ``scripts/`` schemas.

    Raises
    ------
    FileNotFoundError
        If neither the installed nor the repository copy exists.
    """
    candidates = (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parents[3] / "schemas")
    for candidate in candidates:
        if (candidate / "interfaces").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"Cannot find the schemas directory; tried {tried}")


def scripts_dir() -> Path:
    """Return the directory of script executables, as the ScriptQueue sees it."""
    return _PACKAGE_DIR / "data" / "scripts"


#: Environment variable that moves the embedded observatory's data.
VAR_DIR_ENV_VAR = "CALIBSCRIPTS_VAR_DIR"


def project_var_dir() -> Path:
    """Where the embedded simulated observatory keeps its data.

    ``$CALIBSCRIPTS_VAR_DIR`` if set; else ``var/`` at the top of the
    repository checkout; else ``~/.calibscripts`` for an installed package.
    """
    if os.environ.get(VAR_DIR_ENV_VAR):
        return Path(os.environ[VAR_DIR_ENV_VAR]).expanduser()
    checkout = _PACKAGE_DIR.parents[3]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "var"
    return Path.home() / ".calibscripts"
