"""MakeComCamBias: LSSTComCam combined bias over nine detectors."""

from __future__ import annotations

__all__ = ["MakeComCamBias"]

from ..control import BaseCamera, ComCam
from ..salobj import Domain
from .base_make_calibrations import BaseMakeCalibrations


class MakeComCamBias(BaseMakeCalibrations):
    """Make LSSTComCam combined biases (``maintel/make_comcam_bias.py``).

    Loaded from the MTQueue. See ``doc/procedures/comcam-bias.rst``.

    Parameters
    ----------
    index : `int`
        SAL index.
    domain : `Domain`, optional
        Domain to use.
    """

    instrument_name = "LSSTComCam"
    ocps_index = 2
    schema_name = "make_comcam_bias"
    oods_name = "CCOODS"

    def __init__(self, index: int, *, domain: Domain | None = None) -> None:
        super().__init__(
            index, descr="Take LSSTComCam biases; generate, verify and certify the bias.", domain=domain
        )

    def make_camera(self, domain: Domain) -> BaseCamera:
        """LSSTComCam: CCCamera, CCHeaderService, CCOODS."""
        return ComCam(domain, self.log)

    def input_collections_option(self, purpose: str) -> str:
        """``input_collections_verify`` serves bias verification."""
        return super().input_collections_option("verify" if purpose == "verify_bias" else purpose)
