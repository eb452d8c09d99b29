"""How the simulated OCPS runs jobs: ``pipetask`` (default) or ``bps`` with the Parsl plugin.

- `base`: the executor interface (`JobExecutor`, `JobRequest`);
- `pipetask`: one ``pipetask run`` per job;
- `bps`: one bps submission per job, with `bps_site` (where: Parsl site),
  `bps_config` (the per-job bps YAML), `bps_driver` (the program that runs
  it and records the truth) and `bps_outcome` (logs, reasons, partial runs);
- `settings`: the choice, in configuration and on the command line.

See ``doc/scaling-out.rst``. Only `settings` is imported here, so that
choosing an executor loads neither pipetask's nor bps's machinery.
"""

from .settings import *
