"""Old import path of :mod:`espnet_ser.utils.averaging` and :mod:`espnet_ser.utils.packing`."""
from espnet_ser.utils.averaging import *  # noqa: F401,F403
from espnet_ser.utils.io import atomic_symlink, atomic_torch_save, atomic_write_text  # noqa: F401
from espnet_ser.utils.packing import *  # noqa: F401,F403
