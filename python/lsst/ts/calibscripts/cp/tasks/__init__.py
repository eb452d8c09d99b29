"""PipelineTasks of the calibration pipelines.

One module per concept: `~lsst.ts.calibscripts.cp.tasks.isr` (instrument
signature removal), `~lsst.ts.calibscripts.cp.tasks.combine` (combined bias,
dark and flat, with flat normalization), `~lsst.ts.calibscripts.cp.tasks.verify`
(DMTN-101 verification statistics), `~lsst.ts.calibscripts.cp.tasks.ptc`
(pair extraction and PTC fit) and `~lsst.ts.calibscripts.cp.tasks.defects`.
`~lsst.ts.calibscripts.cp.tasks.image_conventions` holds what they agree on:
mask planes and metadata keys of the images they exchange, and how those
images are read. `~lsst.ts.calibscripts.cp.tasks.base` holds the shape they
share: connection and configuration-field factories, and the base classes
whose ``runQuantum`` reads, prepares, runs and writes.

The numerical work is done by the pure-NumPy modules of
`lsst.ts.calibscripts.cp`; the tasks connect them to the Butler.
"""
