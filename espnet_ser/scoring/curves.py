"""Training curves from an ESPnet ``train.log`` (``<N>epoch results: [train] loss=...`` lines):
loss, accuracy / UA and the CTC head's valid WER / CER per epoch (the multi-task SER paper's Fig. 2).
"""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Union

from espnet_ser.utils.plotting import agg_figure, finish_axes, finish_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = Union[str, Path]

_EPOCH_RE = re.compile(r"(\d+)epoch results: (.*)$")
_SECTION_RE = re.compile(r"\[([A-Za-z0-9_]+)\] ")
_KEY_RE = re.compile(r"(?:^|, )([A-Za-z0-9_./-]+)=")

EpochStats = Dict[int, Dict[str, Dict[str, float]]]


def parse_epoch_line(line: str) -> Optional[tuple]:
    """``(epoch, {section: {key: value}})`` of one summary line (non-numeric values skipped), None for
    other lines."""
    m = _EPOCH_RE.search(line.rstrip("\n"))
    if not m:
        return None
    epoch, body = int(m.group(1)), m.group(2)
    sections: Dict[str, Dict[str, float]] = {}
    heads = list(_SECTION_RE.finditer(body))
    for i, h in enumerate(heads):
        if h.start() != 0 and not body[: h.start()].endswith(", "):
            continue  # a bracket inside a value, not a section header
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        text = body[h.end():end].rstrip().rstrip(",")
        parts = _KEY_RE.split(text)  # [text before the first key, key, value, key, value, ...]
        values: Dict[str, float] = {}
        for key, raw in zip(parts[1::2], parts[2::2]):
            try:
                values[key] = float(raw.strip())
            except ValueError:
                pass  # a duration or another non-numeric value
        sections.setdefault(h.group(1), {}).update(values)
    return epoch, sections


def parse_train_log(path: PathLike) -> EpochStats:
    """``{epoch: {section: {key: value}}}`` of a train.log (an epoch logged twice: the later line)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        stats: EpochStats = dict(p for p in map(parse_epoch_line, f) if p is not None)
    return dict(sorted(stats.items()))


def series(stats: Mapping[int, Mapping[str, Mapping[str, float]]], section: str, key: str):
    """``(epochs, values)`` of one statistic over the epochs that logged it."""
    epochs = [e for e in stats if key in stats[e].get(section, {})]
    return epochs, [stats[e][section][key] for e in epochs]


# (title, its curves as (section, key, label), y label); the last panel is drawn only when an
# epoch logged one of its curves
PANELS = (("loss", (("train", "loss", "train loss"), ("valid", "loss", "valid loss")), "loss"),
          ("accuracy", (("train", "acc", "train acc"), ("valid", "acc", "valid acc (WA)"),
                        ("valid", "ua", "valid UA")), "accuracy"),
          ("CTC error rate", (("valid", "wer_ctc", "valid WER (CTC)"),
                              ("valid", "cer_ctc", "valid CER (CTC)")), "error rate"))


def plot_curves(stats: Mapping[int, Mapping[str, Mapping[str, float]]], path: PathLike,
                title: Optional[str] = None) -> "Figure":
    """Draw loss, accuracy and (when logged) the CTC error rates per epoch to a PNG atomically;
    returns the figure (axes titled as in ``PANELS``). ValueError when ``stats`` has no epoch."""
    if not stats:
        raise ValueError("no epoch statistics to plot")
    from matplotlib.ticker import MaxNLocator

    panels = list(PANELS[:2]) + [p for p in PANELS[2:]  # the CTC panel if an epoch logged it
                                 if any(series(stats, s, k)[0] for s, k, _ in p[1])]
    fig = agg_figure((5 * len(panels), 4))
    for n, (panel_title, curves, ylabel) in enumerate(panels, 1):
        ax = fig.add_subplot(1, len(panels), n)
        ax.set_title(panel_title, fontsize=9)
        for section, key, label in curves:
            epochs, values = series(stats, section, key)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        finish_axes(ax, "epoch", ylabel)
    finish_figure(fig, path, title or None)
    return fig
