"""Persisted name of the Butler instrument classes, for repositories made before December 2026.

Registries written by them name ``lsst.ts.calibscripts.cp.instrument.Latiss``
(the instrument's ``class_name``; `register_instruments` updates it); the code now lives in
`lsst.ts.calibscripts.cp.butler.instrument`. New code imports from there.
"""

from .butler.instrument import Latiss, LsstComCam

__all__ = ["Latiss", "LsstComCam"]
