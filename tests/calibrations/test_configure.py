"""Configuring the calibration scripts: the procedure's examples and the cross-option checks."""

from __future__ import annotations

import logging
import unittest
from collections.abc import Sequence

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.calibrations import MakeComCamBias, MakeLatissCalibrations
from lsst.ts.calibscripts.resources import scripts_dir
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.script.testing import BaseScriptTestCase

from . import procedure_examples as examples


class LatissConfigureTestCase(BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    async def basic_make_script(self, index: int) -> Sequence[sal.Controller]:
        self.script = MakeLatissCalibrations(index=index)
        return [self.script]

    async def assert_configure_fails(self, text: str, message: str) -> None:
        with pytest.raises(sal.ExpectedError, match=message):
            await self.configure_script_yaml(text)
        assert self.script.state.state == ScriptState.CONFIGURE_FAILED

    async def test_daily_default(self) -> None:
        async with self.make_script():
            config = await self.configure_script_yaml(examples.DAILY_DEFAULT)
            script = self.script
            assert isinstance(script, MakeLatissCalibrations)
            assert [(p.image_type, p.n_total) for p in script.plans] == [
                ("BIAS", 21),
                ("DARK", 23),
                ("FLAT", 21),
            ]
            dark = script.plans[1]
            assert dark.kept_exposure_times == tuple([5.0] * 4 + [15.0] * 2 + [30.0] * 16)
            assert set(script.plans[2].exposure_times) == {5.0}
            assert script.extra_steps == ["GAIN"]
            assert not config.generate_calibrations
            assert script.detectors == [0]
            metadata = script.evt_metadata.data
            exposure = sum(dark.exposure_times) + 21 * 5.0
            assert metadata.nimages == 65
            assert exposure + 65 * 2.0 < metadata.duration < exposure + 65 * 2.0 + 600

    async def test_change_exposure_times_example_has_a_typo(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                examples.CHANGE_EXPOSURE_TIMES,
                r"line 2: unknown config option 'exp_times_flats'; did you mean 'exp_times_flat'\?",
            )

    async def test_change_times_and_numbers_configures_without_gain(self) -> None:
        async with self.make_script():
            with self.assertLogs(self.script.log, level=logging.WARNING) as logs:
                await self.configure_script_yaml(examples.CHANGE_TIMES_AND_NUMBERS)
            assert self.script.state.state == ScriptState.CONFIGURED
            assert any(
                "No gain will be estimated: no flat pair shares an exposure time" in line
                for line in logs.output
            )
            assert self.script.extra_steps == []  # type: ignore[attr-defined]

    async def test_change_times_and_numbers_with_explicit_gain_fails(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                examples.CHANGE_TIMES_AND_NUMBERS + "do_gain_from_flat_pairs: true\n",
                "line 6: do_gain_from_flat_pairs is true but exp_times_flat .* has no two consecutive flats",
            )

    async def test_change_times_and_numbers_without_gain(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml(
                examples.CHANGE_TIMES_AND_NUMBERS + "do_gain_from_flat_pairs: false\n"
            )
            plans = {p.image_type: p for p in self.script.plans}  # type: ignore[attr-defined]
            assert plans["DARK"].exposure_times == (5.0, 5.0, 10.0, 15.0, 20.0, 25.0)
            assert plans["BIAS"].n_total == 31

    async def test_internal_verification_example_has_slips(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                examples.INTERNAL_VERIFICATION,
                r"line 4: duplicated key 'certify_calib_begin_date' \(first given on line 3\)"
                r".*line 2: unknown config option 'calibration_collection'",
            )

    async def test_internal_verification_example_fixed(self) -> None:
        fixed = examples.INTERNAL_VERIFICATION.replace("calibration_collection", "calib_collection").replace(
            'certify_calib_begin_date: "2022-11-05"', 'certify_calib_end_date: "2022-11-05"'
        )
        async with self.make_script():
            config = await self.configure_script_yaml(fixed)
            assert config.calib_collection == "LATISS/calib/daily/calib.2022NOV04.1"

    async def test_ptc_example_reports_every_slip(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                examples.PTC,
                r"line 6: 'generate_calibrations=True' is not valid configuration YAML.*"
                r"line 4: filter '\$\{FILTER_NAME_OR_ID\}' is not a LATISS filter.*"
                r"line 5: grating '\$\{GRATING_NAME_OR_ID\}' is not a LATISS grating",
            )

    async def test_ptc_example_placeholders_are_not_filters(self) -> None:
        text = examples.PTC.replace("generate_calibrations=True", "generate_calibrations: True")
        async with self.make_script():
            await self.assert_configure_fails(
                text, r"filter '\$\{FILTER_NAME_OR_ID\}' is not a LATISS filter; valid: empty, SDSSg_65mm"
            )

    async def test_ptc_and_defects_example(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml(examples.PTC_AND_DEFECTS)
            assert self.script.extra_steps == ["DEFECTS", "PTC"]  # type: ignore[attr-defined]
            assert self.script.input_collections("verify_bias") == [  # type: ignore[attr-defined]
                "u/czw/DM-28920/calib.20210720",
                "LATISS/calib",
            ]

    async def test_three_images_example(self) -> None:
        async with self.make_script():
            config = await self.configure_script_yaml(examples.THREE_IMAGES)
            assert [p.image_type for p in self.script.plans] == ["BIAS", "DARK"]  # type: ignore[attr-defined]
            assert config.generate_calibrations

    async def test_ptc_needs_bias_dark_flat(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                "script_mode: BIAS_DARK\ndo_ptc: true\n",
                "do_ptc is true but script_mode is BIAS_DARK; do_ptc needs script_mode BIAS_DARK_FLAT",
            )

    async def test_ptc_needs_pairs(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                "do_ptc: true\nn_flat: 3\nexp_times_flat: [1, 1, 2]\n",
                "does not form pairs of equal exposure times",
            )

    async def test_list_length_error_states_both_lengths(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                "n_dark: 3\nexp_times_dark: [5, 10]\n",
                r"exp_times_dark has 2 values; it must have 3 \(n\) or 4 \(n \+ n_discard\) values",
            )

    async def test_dates_in_order(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails(
                'certify_calib_begin_date: "2022-11-05"\ncertify_calib_end_date: "2022-11-04"\n',
                r"certify_calib_begin_date \(2022-11-05\) must be before certify_calib_end_date",
            )

    async def test_unknown_detector(self) -> None:
        async with self.make_script():
            await self.assert_configure_fails("detectors: [3]\n", r"detectors \[3\] are not LATISS detectors")

    async def test_generate_with_default_collection_warns(self) -> None:
        async with self.make_script():
            with self.assertLogs(self.script.log, logging.WARNING) as logs:
                await self.configure_script_yaml("generate_calibrations: true\n")
            assert "default calib_collection (LATISS/calib/daily)" in logs.output[0]

    async def test_executable(self) -> None:
        async with self.make_script():
            schema = await self.check_executable(scripts_dir() / "auxtel" / "make_latiss_calibrations.py")
            assert schema is not None
            properties = schema["properties"]
            for name, prop in properties.items():
                assert prop.get("description"), f"{name} has no description"
                assert "default" in prop, f"{name} has no default"


class ComCamConfigureTestCase(BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    async def basic_make_script(self, index: int) -> Sequence[sal.Controller]:
        self.script = MakeComCamBias(index=index)
        return [self.script]

    async def test_defaults(self) -> None:
        async with self.make_script():
            config = await self.configure_script_yaml("")
            assert self.script.detectors == list(range(9))  # type: ignore[attr-defined]
            assert config.generate_calibrations
            assert config.max_counter_archiver_check == 1000
            assert self.script.input_collections("verify_bias") == ["LSSTComCam/calib"]  # type: ignore[attr-defined]

    async def test_subset_and_executable(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml("detectors: [4, 0]\nn_bias: 5\n")
            assert self.script.detectors == [0, 4]  # type: ignore[attr-defined]
            await self.check_executable(scripts_dir() / "maintel" / "make_comcam_bias.py")
