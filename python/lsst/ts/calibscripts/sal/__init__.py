"""A SAL-style messaging kernel with the public shapes of ``lsst.ts.salobj``.

Components are described by interface definitions
(``schemas/interfaces/*.yaml``); a `Controller` (or `BaseCsc`) serves one,
a `Remote` talks to it, and a `Domain` connects both to a `Transport`
(in-process by default). ``lsst.ts.calibscripts.salobj`` gathers the names
under salobj's own.
"""

from . import topics
from .ack_errors import *
from .base_csc import *
from .base_csc_test_case import *
from .base_topic import *
from .controller import *
from .controller_command import *
from .csc_utils import *
from .domain import *
from .enums import *
from .errors import *
from .interface import *
from .local_transport import *
from .log_handler import *
from .make_mock_write_topics import *
from .messages import *
from .names import *
from .read_topic import *
from .remote import *
from .remote_command import *
from .sal_info import *
from .testing import *
from .timestamps import *
from .transport import *
from .write_topic import *
