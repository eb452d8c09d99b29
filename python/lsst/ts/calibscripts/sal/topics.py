"""The topic classes, under the names of salobj's ``topics`` package."""

# ruff: noqa: F403

from .base_topic import *
from .controller_command import *
from .read_topic import *
from .remote_command import *
from .write_topic import *
