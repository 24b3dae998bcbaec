"""Emotion recognition metrics: WA, UA, per-class accuracy and the confusion matrix.

Definitions (DESIGN.md section 7), all values in percent:

- WA (weighted accuracy): correct predictions over all utterances.
- UA (unweighted accuracy): mean of the per-class recalls, over the classes that occur in
  the reference.
- accuracy of a class: recall of that class (correct / reference utterances of the class).

A hypothesis of ``None`` (the decoder produced no emotion token) is always wrong and is
counted in a ``none`` column of the confusion matrix. A predicted code outside ``labels``
is wrong too and gets its own column, so every row still sums to the number of reference
utterances of its class.

This module also finds emotion tokens (``<ang>``) in token sequences and draws the
confusion matrix.
"""

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

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


def emotion_metrics(
    ref: Mapping[str, str],
    hyp: Mapping[str, Optional[str]],
    labels: Optional[Sequence[str]] = None,
) -> dict:
    """WA / UA / per-class accuracy / confusion matrix of emotion predictions.

    Args:
        ref: utterance -> reference emotion code.
        hyp: utterance -> predicted emotion code, or None when nothing was predicted.
            Must hold exactly the utterances of ``ref``.
        labels: class order of the confusion matrix rows (and first columns). Default: the
            sorted reference classes. Every reference code must be in ``labels``.

    Returns:
        ``{"num_utts", "wa", "ua", "acc_per_emotion": {code: recall},
        "num_per_emotion": {code: n}, "confusion": {"labels", "columns", "matrix"}}``;
        ``acc_per_emotion`` holds the classes present in ``ref`` (in label order) and UA is
        their mean; ``matrix[i][j]`` counts utterances of reference class ``labels[i]``
        predicted as ``columns[j]``.
    """
    if not ref:
        raise ValueError("emotion_metrics: no reference utterances")
    missing = [u for u in ref if u not in hyp]
    if missing:
        raise ValueError(
            f"emotion_metrics: utterance {missing[0]} has no hypothesis"
            + (f" ({len(missing)} utterances in all)" if len(missing) > 1 else "")
        )
    extra = [u for u in hyp if u not in ref]
    if extra:
        raise ValueError(
            f"emotion_metrics: utterance {extra[0]} has a hypothesis but no reference"
            + (f" ({len(extra)} utterances in all)" if len(extra) > 1 else "")
        )
    if labels is None:
        labels = sorted(set(ref.values()))
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"emotion_metrics: duplicate class in labels {labels}")
    if NONE_COLUMN in labels:
        raise ValueError(f"emotion_metrics: {NONE_COLUMN!r} cannot be a class label")
    label_set = set(labels)
    for utt, code in ref.items():
        if code not in label_set:
            raise ValueError(
                f"emotion_metrics: utterance {utt} has reference emotion {code!r} "
                f"not in the labels ({' '.join(labels)})"
            )
    predicted = {c for c in hyp.values() if c is not None}
    columns = labels + sorted(predicted - label_set)
    if any(c is None for c in hyp.values()):
        columns.append(NONE_COLUMN)
    col_index = {c: j for j, c in enumerate(columns)}
    row_index = {c: i for i, c in enumerate(labels)}
    matrix = [[0] * len(columns) for _ in labels]
    correct = 0
    for utt, code in ref.items():
        pred = hyp[utt]
        matrix[row_index[code]][col_index[NONE_COLUMN if pred is None else pred]] += 1
        if pred == code:
            correct += 1
    num_per_emotion: Dict[str, int] = {}
    acc_per_emotion: Dict[str, float] = {}
    for i, code in enumerate(labels):
        n = sum(matrix[i])
        if n == 0:
            continue
        num_per_emotion[code] = n
        acc_per_emotion[code] = 100.0 * matrix[i][col_index[code]] / n
    num = len(ref)
    return {
        "num_utts": num,
        "wa": 100.0 * correct / num,
        "ua": sum(acc_per_emotion.values()) / len(acc_per_emotion),
        "acc_per_emotion": acc_per_emotion,
        "num_per_emotion": num_per_emotion,
        "confusion": {"labels": labels, "columns": columns, "matrix": matrix},
    }


def row_normalised(confusion: Mapping) -> List[List[float]]:
    """Confusion matrix rows in percent of their row sum (0 for an empty row)."""
    out = []
    for row in confusion["matrix"]:
        n = sum(row)
        out.append([100.0 * v / n if n else 0.0 for v in row])
    return out


def plot_confusion(
    confusion: Mapping,
    path: Union[str, Path],
    title: Optional[str] = None,
) -> None:
    """Draw the confusion matrix (row-normalised percent, counts in brackets) to a PNG.

    Rows are reference classes, columns predicted classes. Written through a temporary
    file and a rename, so an existing PNG is never left half-written.
    """
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font cache chatter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(confusion["labels"])
    columns = list(confusion["columns"])
    counts = confusion["matrix"]
    perc = row_normalised(confusion)

    fig = Figure(figsize=(1.2 * len(columns) + 2.0, 1.0 * len(labels) + 1.8))
    FigureCanvasAgg(fig)
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
            ax.text(
                j,
                i,
                f"{perc[i][j]:.1f}%\n({counts[i][j]})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if perc[i][j] > 60.0 else "black",
            )
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()

    save_figure(fig, path)
