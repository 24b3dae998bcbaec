"""Small helpers shared by the ``espnet_ser.bin`` entry points."""

import logging
import sys

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger the way ESPnet's entry points do."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


def str2bool(value: str) -> bool:
    """Parse a boolean command-line value strictly (true/false only)."""
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")
