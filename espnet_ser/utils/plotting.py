"""Saving matplotlib figures."""

from pathlib import Path
from typing import Optional, Union

from espnet_ser.utils.io import atomic_path


def save_figure(fig, path: Union[str, Path], format: Optional[str] = "png",
                dpi: Optional[float] = 100) -> None:
    """Save ``fig`` to ``path`` atomically (creating the parent); ``format=None``: from the
    extension, ``dpi=None``: matplotlib's ``savefig.dpi``, as ``fig.savefig(path)`` does."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix if format is None else f".{format}") as tmp:
        fig.savefig(tmp, format=format, dpi=dpi)
