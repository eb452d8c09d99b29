"""cpPtc and its cpPtcGainFromFlatPairs subset through real pipetask runs."""

from __future__ import annotations

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline
from lsst.ts.calibscripts.cp.butler.ptc_dataset import PhotonTransferCurveDataset

from .conftest import PTC_SECONDS, PtcNight
from .pipetask_runner import exposure_query, run_pipetask

pytestmark = pytest.mark.slow

# These flats have no bias or dark in the repository: the overscan alone is
# enough for a PTC, whose pair differences cancel the bias structure. (Also
# shows -c reaching the ISR of the PTC pipeline.)
NO_CALIBRATIONS = ["isr:doDefect=False", "isr:doCrosstalk=False", "isr:doBias=False", "isr:doDark=False"]


def test_gain_from_flat_pairs_within_3_percent(ptc_night: PtcNight):
    # The pairs around 10^3 and 10^4 ADU, as the procedure's daily gain check.
    index = [PTC_SECONDS.index(3.0), PTC_SECONDS.index(10.0)]
    flats = [ptc_night.flats[2 * i + k] for i in index for k in (0, 1)]
    output = "u/test/gainFromPairs"
    run_pipetask(
        ptc_night.repo,
        f"{generation_pipeline('LATISS', 'cpPtc')}#cpPtcGainFromFlatPairs",
        ["LATISS/raw/all"],
        output,
        exposure_query("LATISS", flats),
        NO_CALIBRATIONS,
    )
    truth = ptc_night.night.models[0].truth
    with Butler.from_config(str(ptc_night.repo), collections=[output]) as butler:
        # One dataset per pair, keyed by the pair's first exposure; no PTC fit.
        refs = butler.query_datasets("cpPtcExtract", explain=False)
        assert sorted(ref.dataId["exposure"] for ref in refs) == [flats[0], flats[2]]
        assert not butler.query_datasets("ptc", explain=False)
        for first, second in ((flats[0], flats[1]), (flats[2], flats[3])):
            extract = butler.get("cpPtcExtract", instrument="LATISS", detector=0, exposure=first)
            assert isinstance(extract, PhotonTransferCurveDataset)
            assert extract.ptcFitType == "EXTRACT"
            for amp, gain in extract.gain.items():
                assert gain == pytest.approx(truth.gains[amp], rel=0.03), (first, amp)
                assert extract.noise[amp] == pytest.approx(truth.read_noise[amp], rel=0.1), (first, amp)
                assert extract.inputExpIdPairs[amp] == [(first, second)]
                assert 1000 < extract.rawMeans[amp][0] < 20000


def test_ptc_gain_within_2_percent_and_read_noise_within_5(ptc_night: PtcNight):
    output = "u/test/cpPtc"
    run_pipetask(
        ptc_night.repo,
        generation_pipeline("LATISS", "cpPtc"),
        ["LATISS/raw/all"],
        output,
        exposure_query("LATISS", ptc_night.flats),
        NO_CALIBRATIONS,
    )
    truth = ptc_night.night.models[0].truth
    with Butler.from_config(str(ptc_night.repo), collections=[output]) as butler:
        ptc = butler.get("ptc", instrument="LATISS", detector=0)
        extracts = butler.query_datasets("cpPtcExtract", explain=False)
    assert len(extracts) == len(PTC_SECONDS)
    assert ptc.ptcFitType == "EXPAPPROXIMATION"
    assert ptc.badAmps == []
    for amp in ptc.ampNames:
        assert ptc.gain[amp] == pytest.approx(truth.gains[amp], rel=0.02), amp
        assert ptc.noise[amp] == pytest.approx(truth.read_noise[amp], rel=0.05), amp
        assert ptc.fitStatus[amp] == "OK"
        assert len(ptc.rawMeans[amp]) == len(PTC_SECONDS) == len(ptc.expTimes[amp])
        assert ptc.rawMeans[amp] == sorted(ptc.rawMeans[amp])
        kept = [m for m, k in zip(ptc.rawMeans[amp], ptc.expIdMask[amp], strict=True) if k]
        assert ptc.ptcTurnoff[amp] == max(kept)
        a00, gain, _ = ptc.ptcFitPars[amp]
        assert gain == ptc.gain[amp] and -1e-4 <= a00 <= 0
