"""``python -m lsst.ts.calibscripts.queue ATQueue``: run a ScriptQueue."""

import sys

from .cli import main

sys.exit(main())
