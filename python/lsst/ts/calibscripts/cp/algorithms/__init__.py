"""The calibration algorithms in pure NumPy/SciPy: no Butler, no pipe_base.

`overscan` and `assembly` (ISR), `statistics` (robust statistics, afw's
MEANCLIP), `combine` (combined bias, dark, flat), `cosmic_rays`,
`verification` (DMTN-101 statistics and tests), `ptc` (pair extraction and
PTC fit) and `defects`. They work on arrays and the camera description
(`lsst.ts.calibscripts.cp.camera`) only, so they can be tested and
benchmarked without a repository.
"""
