"""Calibration products on the real Butler.

Camera geometry and description, raw files, the numerical algorithms
(ISR, combination, verification, PTC, defects), Butler instrument classes,
storage classes and formatters, PipelineTasks and pipeline definitions.
Nothing here knows about SAL.

Import the modules directly (``from lsst.ts.calibscripts.cp import geometry``);
this package initialiser stays empty so that pipetask workers import only
what they use.
"""
