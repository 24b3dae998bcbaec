"""Saving matplotlib figures."""

import logging
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


def agg_figure(figsize):
    """A matplotlib Figure on the Agg canvas (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font cache chatter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def finish_axes(ax, xlabel: str, ylabel: str) -> None:
    """Label a line plot's axes, draw a light grid and a legend when a line has a label."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def finish_figure(fig, path: Union[str, Path], title: Optional[str] = None) -> None:
    """Add the suptitle (unless None), tighten the layout and save the PNG atomically."""
    if title is not None:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
