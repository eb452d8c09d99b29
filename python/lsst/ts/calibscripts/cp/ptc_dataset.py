"""Persisted name of the PTC dataset class, for repositories made before December 2026.

Their configurations name
``lsst.ts.calibscripts.cp.ptc_dataset.PhotonTransferCurveDataset``
(the storage class ``pytype``); the code now lives in
`lsst.ts.calibscripts.cp.butler.ptc_dataset`. New code imports from there.
"""

from .butler.ptc_dataset import PhotonTransferCurveDataset

__all__ = ["PhotonTransferCurveDataset"]
