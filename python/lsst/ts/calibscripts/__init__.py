"""SAL-style scripts that make combined calibrations for LATISS and LSSTComCam."""

from .version import __version__

__all__ = ["__version__"]
