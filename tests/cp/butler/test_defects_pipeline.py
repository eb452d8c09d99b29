"""cpDefects through a real pipetask run: the model's planted defects are found."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.defects import boxes_to_mask, table_to_boxes
from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline

from .conftest import CALIB_COLLECTION, LatissCalibrations, LatissNight
from .pipetask_runner import exposure_query, run_pipetask

pytestmark = pytest.mark.slow


def test_planted_defects_are_found(latiss_night: LatissNight, latiss_calibrations: LatissCalibrations):
    output = "u/test/cpDefects"
    # As the script runs it: the darks and flats it took, the default options.
    run_pipetask(
        latiss_night.repo,
        generation_pipeline("LATISS", "cpDefects"),
        ["LATISS/raw/all", CALIB_COLLECTION],
        output,
        exposure_query("LATISS", latiss_night.darks + latiss_night.flats),
        ["isr:doDefect=False"],
    )
    truth = latiss_night.night.models[0].truth
    with latiss_night.butler(output) as butler:
        table = butler.get("defects", instrument="LATISS", detector=0)
    assert table.colnames == ["x0", "y0", "width", "height"]
    found = boxes_to_mask(table_to_boxes(table), truth.dark_current.shape)
    planted = truth.defect_mask()
    # Every planted hot pixel, hot column, cold pixel and dead column...
    assert not (planted & ~found).any(), np.argwhere(planted & ~found)[:10]
    for column in truth.hot_columns + truth.dead_columns:
        assert found[column.y0 : column.y1, column.x].all()
    # ...and very few pixels that were not planted.
    assert int((found & ~planted).sum()) <= 10
