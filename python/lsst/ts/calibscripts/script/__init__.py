"""SAL scripts: BaseScript, configuration validation and the run_script command."""

from .base_script import *
from .config_errors import *
from .validator import *
from .yaml_config import *
