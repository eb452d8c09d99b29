"""The photon transfer curve dataset: what ``cpPtcExtract`` and ``ptc`` hold.

One Python class serves both dataset types, as in cp_pipe: the extract step
(``cpPtcExtract``, one per flat pair and detector) fills the per-pair
measurements and the single-pair gain; the solve step (``ptc``, one per
detector, a calibration) concatenates the measurements of all pairs and adds
the fit results. Attribute names follow cp_pipe's
``PhotonTransferCurveDataset`` (``gain``, ``noise``, ``rawMeans``,
``inputExpIdPairs``...) so that notebooks written for Rubin read these
objects unchanged.

The Butler stores it as JSON (`lsst.daf.butler.formatters.json.JsonFormatter`
reads it back through pydantic), so every field is a plain number, string,
list or mapping keyed by amplifier name.
"""

from __future__ import annotations

__all__ = ["PTC_FIT_TYPE_EXPAPPROXIMATION", "PTC_FIT_TYPE_EXTRACT", "PhotonTransferCurveDataset"]

import math
from typing import Any

import pydantic

PTC_FIT_TYPE_EXTRACT = "EXTRACT"
"""`PhotonTransferCurveDataset.ptcFitType` of a ``cpPtcExtract`` dataset:
measurements of one flat pair, no curve fitted."""

PTC_FIT_TYPE_EXPAPPROXIMATION = "EXPAPPROXIMATION"
"""`PhotonTransferCurveDataset.ptcFitType` of a ``ptc`` dataset fitted with
the exponential approximation of Astier et al. (2019)."""

type AmpFloats = dict[str, float]
type AmpFloatLists = dict[str, list[float]]


class PhotonTransferCurveDataset(pydantic.BaseModel):
    """Photon transfer measurements and fit results of one detector.

    All per-amplifier mappings are keyed by amplifier name (``C10``...).
    Means and variances are in ADU and ADU^2, gains in e-/ADU, noise in
    electrons. A value that could not be measured is NaN, never missing, so
    every amplifier of the detector appears in every mapping.
    """

    model_config = pydantic.ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    instrument: str = pydantic.Field(description="Instrument name, e.g. LATISS.")
    detector: int = pydantic.Field(description="Detector id.")
    detectorName: str = pydantic.Field(description="Detector full name, e.g. RXX_S00.")
    ampNames: list[str] = pydantic.Field(description="Amplifier names in readout order.")
    ptcFitType: str = pydantic.Field(
        description=f"{PTC_FIT_TYPE_EXTRACT!r} for a single-pair extract, "
        f"{PTC_FIT_TYPE_EXPAPPROXIMATION!r} for a fitted PTC."
    )

    inputExpIdPairs: dict[str, list[tuple[int, int]]] = pydantic.Field(
        default_factory=dict, description="Exposure id pairs measured, per amp."
    )
    expTimes: AmpFloatLists = pydantic.Field(
        default_factory=dict, description="Exposure time of each pair (s), per amp."
    )
    rawMeans: AmpFloatLists = pydantic.Field(
        default_factory=dict, description="Mean signal mu of each pair (ADU), per amp."
    )
    rawVars: AmpFloatLists = pydantic.Field(
        default_factory=dict,
        description="Half the clipped variance of the pair difference image (ADU^2), per amp.",
    )
    pairGains: AmpFloatLists = pydantic.Field(
        default_factory=dict,
        description="Single-pair gain with the FULL read-noise correction (e-/ADU) of each pair, per amp.",
    )
    overscanNoise: AmpFloatLists = pydantic.Field(
        default_factory=dict,
        description="Mean serial-overscan residual noise of the two exposures of each pair (ADU), per amp.",
    )
    nPixels: dict[str, list[int]] = pydantic.Field(
        default_factory=dict,
        description="Pixels kept by the difference-image clip of each pair (weights of the fit), per amp.",
    )
    expIdMask: dict[str, list[bool]] = pydantic.Field(
        default_factory=dict,
        description="Whether each pair was kept by the PTC fit (all True in an extract), per amp.",
    )

    gain: AmpFloats = pydantic.Field(
        default_factory=dict,
        description="Gain (e-/ADU): single-pair gain in an extract, fitted gain in a PTC.",
    )
    gainErr: AmpFloats = pydantic.Field(default_factory=dict, description="Gain uncertainty (e-/ADU).")
    noise: AmpFloats = pydantic.Field(
        default_factory=dict,
        description="Read noise (e-): overscan noise times gain in an extract, sqrt(n00) in a PTC.",
    )
    noiseErr: AmpFloats = pydantic.Field(default_factory=dict, description="Read-noise uncertainty (e-).")
    ptcFitPars: AmpFloatLists = pydantic.Field(
        default_factory=dict, description="Fitted [a00, gain, n00] of the exponential model, per amp."
    )
    ptcFitParsError: AmpFloatLists = pydantic.Field(
        default_factory=dict, description="Uncertainties of ptcFitPars, per amp."
    )
    ptcFitChiSq: AmpFloats = pydantic.Field(
        default_factory=dict, description="Reduced chi^2 of the fit, per amp."
    )
    ptcTurnoff: AmpFloats = pydantic.Field(
        default_factory=dict, description="Highest mean (ADU) kept by the fit, per amp."
    )
    fitStatus: dict[str, str] = pydantic.Field(
        default_factory=dict, description="'OK' or the reason the fit of an amp failed."
    )
    badAmps: list[str] = pydantic.Field(
        default_factory=list, description="Amplifiers whose measurement or fit failed."
    )

    @classmethod
    def concatenate(
        cls, partials: list[PhotonTransferCurveDataset], ptc_fit_type: str
    ) -> PhotonTransferCurveDataset:
        """Merge per-pair extracts of one detector into one dataset.

        Parameters
        ----------
        partials
            ``cpPtcExtract`` datasets of the same instrument and detector.
        ptc_fit_type
            `ptcFitType` of the result.

        Returns
        -------
        merged
            A dataset with the per-pair lists concatenated in order of
            increasing mean signal, and no fit results.

        Raises
        ------
        ValueError
            If ``partials`` is empty or mixes detectors or amplifier lists.
        """
        if not partials:
            raise ValueError("Cannot concatenate an empty list of PTC extracts.")
        first = partials[0]
        for partial in partials[1:]:
            if (partial.instrument, partial.detector, partial.ampNames) != (
                first.instrument,
                first.detector,
                first.ampNames,
            ):
                raise ValueError(
                    f"PTC extracts of different detectors or amplifier lists cannot be merged: "
                    f"{first.instrument} {first.detector} and {partial.instrument} {partial.detector}."
                )
        merged = cls(
            instrument=first.instrument,
            detector=first.detector,
            detectorName=first.detectorName,
            ampNames=list(first.ampNames),
            ptcFitType=ptc_fit_type,
        )
        per_pair_fields = (
            "inputExpIdPairs",
            "expTimes",
            "rawMeans",
            "rawVars",
            "pairGains",
            "overscanNoise",
            "nPixels",
            "expIdMask",
        )
        for amp in first.ampNames:
            rows: list[tuple[Any, ...]] = []
            for partial in partials:
                columns = [getattr(partial, name).get(amp, []) for name in per_pair_fields]
                lengths = {name: len(column) for name, column in zip(per_pair_fields, columns, strict=True)}
                if len(set(lengths.values())) != 1:
                    raise ValueError(
                        f"PTC extract of detector {partial.detector}, amp {amp} has per-pair lists of "
                        f"different lengths: {lengths}."
                    )
                rows.extend(zip(*columns, strict=True))
            # Sort by mean so that the arrays read as a curve; NaN means go last.
            rows.sort(key=lambda row: math.inf if math.isnan(row[2]) else row[2])
            for index, name in enumerate(per_pair_fields):
                getattr(merged, name)[amp] = [row[index] for row in rows]
        return merged
