"""A local ARM emulator for amlfw's tests and ``make run``: see README.md in this folder.

from tests.emulator import Emulator
with Emulator(op_duration=0.0) as emu:
    ...  # emu.base_url, emu.ca_bundle, emu.env()
"""

from .api import Emulator
from .errors import ArmError
from .requestlog import RequestRecord

__all__ = ["ArmError", "Emulator", "RequestRecord"]
