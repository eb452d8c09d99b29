"""Use-case classes in the shape of ``lsst.ts.observatory.control``."""

from .base_camera import *
from .comcam import *
from .latiss import *
from .remote_group import *
