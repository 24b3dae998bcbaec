"""Emotion recognition metrics (WA, UA, per-class accuracy, confusion matrix) and plotting.

WA = correct / all utterances; UA = mean of the per-class recalls over the classes in the
reference (percent). A hypothesis None (no emotion token) is always wrong and counted in a
``none`` column; a predicted code outside ``labels`` is wrong and gets its own column.
"""

import logging
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from sklearn.metrics import accuracy_score, confusion_matrix

from espnet_ser.data.datadir import emotion_of_token
from espnet_ser.utils.plotting import save_figure

NONE_COLUMN = "none"

# The emotion code of a token (``<ang>`` -> ``ang``), None for words and special tokens.
emotion_code = emotion_of_token


def split_emotion_tokens(words: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Return (emotion codes in order of appearance, the words that are not emotion tokens)."""
    codes: List[str] = []
    rest: List[str] = []
    for w in words:
        code = emotion_code(w)
        if code is None:
            rest.append(w)
        else:
            codes.append(code)
    return codes, rest


def emotion_metrics(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                    labels: Optional[Sequence[str]] = None) -> dict:
    """WA / UA / per-class accuracy / confusion matrix of ``utt -> code`` predictions.

    ``hyp`` holds exactly the utterances of ``ref`` (None: nothing predicted); ``labels`` is
    the class order (default: the sorted reference classes) and holds every reference code.
    Returns ``{"num_utts", "wa", "ua", "acc_per_emotion", "num_per_emotion", "confusion":
    {"labels", "columns", "matrix"}}``; per-class values cover the classes present in
    ``ref`` (label order) and ``matrix[i][j]`` counts ``labels[i]`` predicted as ``columns[j]``.
    """
    if not ref:
        raise ValueError("emotion_metrics: no reference utterances")
    for utts, what in (([u for u in ref if u not in hyp], "has no hypothesis"),
                       ([u for u in hyp if u not in ref], "has a hypothesis but no reference")):
        if utts:
            raise ValueError(f"emotion_metrics: utterance {utts[0]} {what}"
                             + (f" ({len(utts)} utterances in all)" if len(utts) > 1 else ""))
    labels = sorted(set(ref.values())) if labels is None else list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"emotion_metrics: duplicate class in labels {labels}")
    if NONE_COLUMN in labels:
        raise ValueError(f"emotion_metrics: {NONE_COLUMN!r} cannot be a class label")
    label_set = set(labels)
    for utt, code in ref.items():
        if code not in label_set:
            raise ValueError(f"emotion_metrics: utterance {utt} has reference emotion {code!r} "
                             f"not in the labels ({' '.join(labels)})")
    predicted = {c for c in hyp.values() if c is not None}
    columns = labels + sorted(predicted - label_set)
    if any(c is None for c in hyp.values()):
        columns.append(NONE_COLUMN)
    utts = list(ref)
    y_true = [ref[u] for u in utts]
    y_pred = [NONE_COLUMN if hyp[u] is None else hyp[u] for u in utts]
    matrix = confusion_matrix(y_true, y_pred, labels=columns)[: len(labels)]
    present = [i for i, code in enumerate(labels) if matrix[i].sum()]
    num_per_emotion = {labels[i]: int(matrix[i].sum()) for i in present}
    acc_per_emotion = {labels[i]: 100.0 * int(matrix[i][i]) / int(matrix[i].sum())
                       for i in present}
    return {"num_utts": len(utts), "wa": 100.0 * accuracy_score(y_true, y_pred),
            # UA: the macro recall over the reference classes (balanced accuracy), in percent
            "ua": sum(acc_per_emotion.values()) / len(acc_per_emotion),
            "acc_per_emotion": acc_per_emotion, "num_per_emotion": num_per_emotion,
            "confusion": {"labels": labels, "columns": columns, "matrix": matrix.tolist()}}


def row_normalised(confusion: Mapping) -> List[List[float]]:
    """Confusion matrix rows in percent of their row sum (0 for an empty row)."""
    return [[100.0 * v / sum(row) if sum(row) else 0.0 for v in row]
            for row in confusion["matrix"]]


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


def confusion_title(wa: float, ua: float, num_utts: int) -> str:
    """The title of a scorer's confusion.png."""
    return f"WA {wa:.1f}%  UA {ua:.1f}%  ({num_utts} utts)"


def plot_confusion(confusion: Mapping, path: Union[str, Path], title: Optional[str] = None) -> None:
    """Draw the confusion matrix (row-normalised percent, counts in brackets) to a PNG atomically.

    Rows are reference classes, columns predicted classes.
    """
    labels = list(confusion["labels"])
    columns = list(confusion["columns"])
    counts = confusion["matrix"]
    perc = row_normalised(confusion)
    fig = agg_figure((1.2 * len(columns) + 2.0, 1.0 * len(labels) + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(perc, cmap="Blues", vmin=0.0, vmax=100.0, aspect="auto")
    fig.colorbar(im, ax=ax, label="% of reference class")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("hypothesis")
    ax.set_ylabel("reference")
    for i in range(len(labels)):
        for j in range(len(columns)):
            ax.text(j, i, f"{perc[i][j]:.1f}%\n({counts[i][j]})", ha="center", va="center",
                    fontsize=8, color="white" if perc[i][j] > 60.0 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
