"""The results report: verification tables, gain and PTC plots, images and history, as HTML + PNG.

Modules, one concept each:

``sources``
    Which collections hold what: a script's OCPS output collections, or a
    CALIBRATION collection and the runs behind it; the collections a
    script's log names.
``extract``
    What each section shows, read from the Butler as plain dataclasses
    (testable without any HTML).
``figures``
    The figures, as PNG bytes (matplotlib, Agg; astropy's zscale).
``render``
    The self-contained HTML page (inline style and script: sortable,
    filterable tables).
``build``
    `make_report`: all of the above into a directory.
``cli``
    ``calibscripts report``.

Nothing is imported here, so that importing one module does not load the
others (``cli`` must stay light).
"""
