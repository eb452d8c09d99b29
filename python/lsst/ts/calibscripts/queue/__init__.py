"""The ScriptQueue CSC: runs SAL scripts for operators (ATQueue, MTQueue).

`ScriptQueue` is the CSC, `QueueModel` the ordered queue and the rules
that run it, `ScriptInfo` one script's record, and the launchers how
scripts are started (a process each over a networked transport, a task in
the queue's process over the in-process one).

`QueueState`, `ScriptRequest` and `script_indices` say what the queue's
events and commands mean; its followers (the queue page) read them with
these, not with copies of their own. The ``cli`` and ``service_cli``
modules (the ``queue`` command, and the start-up the commands share) are
imported one by one.
"""

from .launcher import *
from .queue_model import *
from .script_info import *
from .script_queue import *
