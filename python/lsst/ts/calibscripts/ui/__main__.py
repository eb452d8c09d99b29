"""``python -m lsst.ts.calibscripts.ui``: serve the queue page."""

import sys

from .cli import main

sys.exit(main())
