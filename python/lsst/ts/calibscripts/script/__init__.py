"""SAL scripts: BaseScript, configuration validation, the test harness and the run_script command."""

from .base_script import *
from .config_errors import *
from .testscript import *
from .validator import *
from .yaml_config import *
