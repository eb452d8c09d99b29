"""A CSC and a script written in the idiom of lsst.ts.salobj, not for this package.

They import only ``from lsst.ts.calibscripts import salobj, utils`` (in
production: ``from lsst.ts import salobj, utils``); the tests run them, and
their executables, over both transports.
"""
