"""The Butler side of the calibration products.

`instrument` (Butler instrument classes), `repository` (create and seed
repositories), `raw_file` (the raw FITS format), `ingest`, `formatters`
(with `fits_planes`, which writes image planes fast and losslessly, and
`image_file`, which reads rows straight from an image file) and
`dataset_types`, `certification` (validity ranges in CALIBRATION
collections), `pipeline_locations` (``$CP_PIPE_DIR``/``$CP_VERIFY_DIR``) and
`pipetask_options` (what a job may pass to pipetask).
"""
