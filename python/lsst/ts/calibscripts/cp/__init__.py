"""Calibration products on the real Butler; nothing here knows about SAL.

One sub-package per concept, imports flowing downward only:

`~lsst.ts.calibscripts.cp.camera`
    The cameras' description: detector geometry (amplifier layout,
    overscan) and the nominal gains, noise, filters. Pure Python.
`~lsst.ts.calibscripts.cp.algorithms`
    The pixel work in pure NumPy/SciPy: overscan, assembly, robust
    statistics, combination, cosmic rays, verification statistics, PTC,
    defects. Imports no Butler and no pipe_base, so it can be tested and
    benchmarked alone.
`~lsst.ts.calibscripts.cp.butler`
    Butler plumbing: instrument classes, repositories, raw files and
    ingest, formatters, dataset types, certification, where the pipelines
    live and which pipetask options a job may carry.
`~lsst.ts.calibscripts.cp.tasks`
    The PipelineTasks that connect the algorithms to the Butler; their
    pipelines are under ``data/cp_pipe`` and ``data/cp_verify``.

The modules ``instrument``, ``formatters`` and ``ptc_dataset`` at this level
only keep the names that repositories written before the split store.

Import the modules directly (``from lsst.ts.calibscripts.cp.camera import
geometry``); the package initialisers stay empty so that pipetask workers
import only what they use.
"""
