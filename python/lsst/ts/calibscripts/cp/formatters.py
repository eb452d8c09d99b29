"""Persisted name of the formatters, for repositories made before December 2026.

Their datastore records and configurations name
``lsst.ts.calibscripts.cp.formatters.ImageRecipeFormatter``; the code now lives in
`lsst.ts.calibscripts.cp.butler.formatters`. New code imports from there.
"""

from .butler.formatters import ImageRecipeFormatter, RawFormatter

__all__ = ["ImageRecipeFormatter", "RawFormatter"]
