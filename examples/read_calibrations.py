"""Read what a calibration run certified, with plain lsst.daf.butler calls.

Usage: python examples/read_calibrations.py REPO CALIB_COLLECTION [INSTRUMENT]

This is what the LATISS procedure shows operators: open the repository with
the calibration collection, pick an exposure, and ``get`` the bias, dark and
flat valid for it; then read the gains measured from flat pairs
(``cpPtcExtract``) from the OCPS output collection that holds them.
"""

import sys

import numpy as np
from lsst.daf.butler import Butler, MissingCollectionError

repo, calib_collection = sys.argv[1], sys.argv[2]
instrument = sys.argv[3] if len(sys.argv) > 3 else "LATISS"

butler = Butler(repo, collections=[calib_collection])
try:
    butler.collections.get_info(calib_collection)
except MissingCollectionError:
    sys.exit(
        f"{repo} has no collection {calib_collection}: the run certified nothing there (see its summary)."
    )
# The most recent flat of the night: every calibration valid for it.
(flat_exposure,) = butler.query_dimension_records(
    "exposure",
    instrument=instrument,
    where="exposure.observation_type = 'flat'",
    order_by="-exposure.id",
    limit=1,
)
exposure = flat_exposure.id
print(f"butler = Butler({repo!r}, collections=[{calib_collection!r}])")
for product in ("bias", "dark", "flat"):
    image = butler.get(product, instrument=instrument, detector=0, exposure=exposure)
    pixels = np.asarray(image.image.array)
    print(
        f"butler.get({product!r}, instrument={instrument!r}, detector=0, exposure={exposure}) -> "
        f"{type(image).__name__} {pixels.shape}, median {np.nanmedian(pixels):.5g}"
    )

# Gains from flat pairs: cpPtcExtract, keyed by the first exposure of a pair.
refs = butler.query_datasets("cpPtcExtract", collections="u/ocps/*", instrument=instrument, find_first=False)
if refs:
    ref = max(refs, key=lambda r: r.dataId["exposure"])
    extract = butler.get(ref)
    print(
        f"butler.get('cpPtcExtract', instrument={instrument!r}, detector=0, "
        f"exposure={ref.dataId['exposure']}, collections={ref.run!r}).gain ->"
    )
    print("    " + ", ".join(f"{amp}: {gain:.3f}" for amp, gain in sorted(extract.gain.items())))
else:
    print("No cpPtcExtract datasets (gains from flat pairs) in u/ocps/*")
