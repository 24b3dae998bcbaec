"""Training curves from an ESPnet ``train.log``.

:func:`parse_train_log` reads the trainer's ``<N>epoch results: [train] loss=..., [valid] ...``
lines into ``{epoch: {section: {key: float}}}`` (non-numeric values such as durations are
skipped; of an epoch logged twice the later line wins); :func:`plot_curves` draws loss,
accuracy / UA and, when logged, the CTC head's valid WER / CER (``wer_ctc`` / ``cer_ctc``)
against the epoch, as the multi-task SER paper's Figure 2.
"""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Union

from espnet_ser.scoring.emotion import agg_figure
from espnet_ser.utils.plotting import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = Union[str, Path]

_EPOCH_RE = re.compile(r"(\d+)epoch results: (.*)$")
_SECTION_RE = re.compile(r"\[([A-Za-z0-9_]+)\] ")
_KEY_RE = re.compile(r"(?:^|, )([A-Za-z0-9_./-]+)=")

EpochStats = Dict[int, Dict[str, Dict[str, float]]]


def parse_epoch_line(line: str) -> Optional[tuple]:
    """``(epoch, {section: {key: value}})`` of one summary line, None for other lines."""
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
        keys = list(_KEY_RE.finditer(text))
        values: Dict[str, float] = {}
        for j, k in enumerate(keys):
            vend = keys[j + 1].start() if j + 1 < len(keys) else len(text)
            raw = text[k.end():vend].strip()
            try:
                values[k.group(1)] = float(raw)
            except ValueError:
                pass  # a duration or another non-numeric value
        sections.setdefault(h.group(1), {}).update(values)
    return epoch, sections


def parse_train_log(path: PathLike) -> EpochStats:
    """Per-epoch statistics of every ``<N>epoch results:`` line of a train.log."""
    stats: EpochStats = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parsed = parse_epoch_line(line)
            if parsed is not None:
                epoch, sections = parsed
                stats[epoch] = sections
    return dict(sorted(stats.items()))


def series(stats: Mapping[int, Mapping[str, Mapping[str, float]]], section: str, key: str):
    """``(epochs, values)`` of one statistic over the epochs that logged it."""
    epochs = [e for e in stats if key in stats[e].get(section, {})]
    return epochs, [stats[e][section][key] for e in epochs]


# (section, key, label) of the panels
LOSS_CURVES = (("train", "loss", "train loss"), ("valid", "loss", "valid loss"))
ACC_CURVES = (("train", "acc", "train acc"), ("valid", "acc", "valid acc (WA)"),
              ("valid", "ua", "valid UA"))
CTC_ERROR_CURVES = (("valid", "wer_ctc", "valid WER (CTC)"),
                    ("valid", "cer_ctc", "valid CER (CTC)"))
# (title, curves, y label); the last panel is drawn only when an epoch logged one of its curves
PANELS = (("loss", LOSS_CURVES, "loss"), ("accuracy", ACC_CURVES, "accuracy"),
          ("CTC error rate", CTC_ERROR_CURVES, "error rate"))


def _logged(stats, curves) -> bool:
    return any(series(stats, section, key)[0] for section, key, _ in curves)


def plot_curves(stats: Mapping[int, Mapping[str, Mapping[str, float]]], path: PathLike,
                title: Optional[str] = None) -> "Figure":
    """Draw loss, accuracy and (when logged) the CTC error rates per epoch to a PNG atomically.

    Returns the figure (its axes are the panels, titled as in ``PANELS``); ValueError when
    ``stats`` has no epoch.
    """
    if not stats:
        raise ValueError("no epoch statistics to plot")
    from matplotlib.ticker import MaxNLocator

    panels = list(PANELS[:2]) + [p for p in PANELS[2:] if _logged(stats, p[1])]
    fig = agg_figure((5 * len(panels), 4))
    for n, (panel_title, curves, ylabel) in enumerate(panels, 1):
        ax = fig.add_subplot(1, len(panels), n)
        ax.set_title(panel_title, fontsize=9)
        for section, key, label in curves:
            epochs, values = series(stats, section, key)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
