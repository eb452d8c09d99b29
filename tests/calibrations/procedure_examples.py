"""The configuration examples of the LATISS procedure, verbatim (slips included)."""

DAILY_DEFAULT = ""

CHANGE_EXPOSURE_TIMES = """\
exp_times_dark: 20
exp_times_flats: 30
"""

CHANGE_TIMES_AND_NUMBERS = """\
n_bias: 30
n_dark: 5
exp_times_dark: [5, 10, 15, 20, 25]
n_flat: 10
exp_times_flat: [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
"""

INTERNAL_VERIFICATION = """\
generate_calibrations: True
calibration_collection: LATISS/calib/daily/calib.2022NOV04.1
certify_calib_begin_date: "2022-11-04"
certify_calib_begin_date: "2022-11-05"
"""

PTC = """\
script_mode: BIAS_DARK_FLAT
n_flat: 14
exp_times_flat: [5, 5, 10, 10, 15, 15, 20, 20, 25, 25, 30, 30, 35, 35]
filter: ${FILTER_NAME_OR_ID}
grating: ${GRATING_NAME_OR_ID}
generate_calibrations=True
calib_collection: "LATISS/calib/daily/calibs.2022NOV04.1"
certify_calib_begin_date: "2022-11-04"
certify_calib_end_date: "2022-11-05"
do_defects: True
do_ptc: True
"""

PTC_AND_DEFECTS = """\
n_bias: 6
n_dark: 6
exp_times_dark: [5, 5, 5, 10, 15, 20]
n_flat: 14
exp_times_flat: [0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0, 1.35, 1.35, 1.6, 1.6]
calib_collection: "LATISS/calib/u/plazas/daily.2021SEP13.test1"
do_verify: True
input_collections_verify_bias: "u/czw/DM-28920/calib.20210720,LATISS/calib"
input_collections_verify_dark: "u/czw/DM-28920/calib.20210720,LATISS/calib"
input_collections_verify_flat: "u/czw/DM-28920/calib.20210720,LATISS/calib"
certify_calib_begin_date: "2021-07-15"
certify_calib_end_date: "2021-07-17"
script_mode: BIAS_DARK_FLAT
do_defects: True
do_ptc: True
"""

THREE_IMAGES = """\
script_mode: BIAS_DARK
n_bias: 3
n_dark: 3
exp_times_dark: 15
calib_collection: "LATISS/calib/u/plazas/daily.2022SEP29.2"
generate_calibrations: True
do_verify: True
certify_calib_begin_date: "1980-01-01"
certify_calib_end_date: "2051-12-31"
"""
