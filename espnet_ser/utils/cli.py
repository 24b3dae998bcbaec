"""Small helpers shared by the ``espnet_ser.bin`` entry points."""

import argparse
import contextlib
import logging
import sys
from typing import Tuple

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


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


def doc_parser(description: str, show_defaults: bool = False) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows ``description`` (e.g. the module docstring) as written, or
    with ``show_defaults`` reflowed and with each option's default."""
    return argparse.ArgumentParser(description=description, formatter_class=(
        argparse.ArgumentDefaultsHelpFormatter if show_defaults else argparse.RawDescriptionHelpFormatter))


def fail(prog: str, error: Exception) -> None:
    """Log ``error`` and exit with ``espnet_ser.bin.<prog>: error: <error>``."""
    logging.error(str(error))
    raise SystemExit(f"espnet_ser.bin.{prog}: error: {error}")


@contextlib.contextmanager
def exit_on_error(prog: str, errors: Tuple[type, ...] = (ValueError, OSError)):
    """Turn ``errors`` raised in the block into :func:`fail`."""
    try:
        yield
    except errors as e:
        fail(prog, e)
