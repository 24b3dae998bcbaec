"""Emotion recognition metrics in percent (WA = correct / all utterances, UA = mean per-class
recall over the reference classes, per-class accuracy), the confusion matrix and its plot."""

from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from sklearn.metrics import accuracy_score, confusion_matrix

from espnet_ser.data.datadir import emotion_of_token
from espnet_ser.utils.plotting import agg_figure, save_figure  # noqa: F401 (agg_figure: re-export)

NONE_COLUMN = "none"

# The emotion code of a token (``<ang>`` -> ``ang``), None for words and special tokens.
emotion_code = emotion_of_token


def split_emotion_tokens(words: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Return (emotion codes in order of appearance, the words that are not emotion tokens)."""
    codes = [emotion_code(w) for w in words]
    return [c for c in codes if c is not None], [w for w, c in zip(words, codes) if c is None]


def emotion_metrics(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                    labels: Optional[Sequence[str]] = None) -> dict:
    """``{num_utts, wa, ua, acc_per_emotion, num_per_emotion, confusion: {labels, columns, matrix}}``.

    ``hyp`` has exactly the utterances of ``ref``; None (no prediction) is wrong and counted in
    a ``none`` column, a code outside ``labels`` (default: sorted reference classes) gets its own.
    Per-class values cover the classes present in ``ref``; ``matrix[i][j]``: labels[i] as columns[j].
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
    columns = labels + sorted({c for c in hyp.values() if c is not None} - label_set)
    if any(c is None for c in hyp.values()):
        columns.append(NONE_COLUMN)
    y_true = list(ref.values())
    y_pred = [NONE_COLUMN if hyp[u] is None else hyp[u] for u in ref]
    matrix = confusion_matrix(y_true, y_pred, labels=columns)[: len(labels)]
    present = [i for i, code in enumerate(labels) if matrix[i].sum()]
    num_per_emotion = {labels[i]: int(matrix[i].sum()) for i in present}
    acc_per_emotion = {labels[i]: 100.0 * int(matrix[i][i]) / int(matrix[i].sum()) for i in present}
    return {"num_utts": len(ref), "wa": 100.0 * accuracy_score(y_true, y_pred),
            # UA: the macro recall over the reference classes (balanced accuracy), in percent
            "ua": sum(acc_per_emotion.values()) / len(acc_per_emotion),
            "acc_per_emotion": acc_per_emotion, "num_per_emotion": num_per_emotion,
            "confusion": {"labels": labels, "columns": columns, "matrix": matrix.tolist()}}


def row_normalised(confusion: Mapping) -> List[List[float]]:
    """Confusion matrix rows in percent of their row sum (0 for an empty row)."""
    return [[100.0 * v / sum(row) if sum(row) else 0.0 for v in row] for row in confusion["matrix"]]


def plot_confusion(confusion: Mapping, path: Union[str, Path], title: Optional[str] = None) -> None:
    """Draw the confusion matrix (rows: reference; row %, counts in brackets) to a PNG atomically."""
    labels, columns, counts = list(confusion["labels"]), list(confusion["columns"]), confusion["matrix"]
    perc = row_normalised(confusion)
    fig = agg_figure((1.2 * len(columns) + 2.0, 1.0 * len(labels) + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(perc, cmap="Blues", vmin=0.0, vmax=100.0, aspect="auto")
    fig.colorbar(im, ax=ax, label="% of reference class")
    ax.set(xticks=range(len(columns)), xticklabels=columns, yticks=range(len(labels)),
           yticklabels=labels, xlabel="hypothesis", ylabel="reference")
    for i in range(len(labels)):
        for j in range(len(columns)):
            ax.text(j, i, f"{perc[i][j]:.1f}%\n({counts[i][j]})", ha="center", va="center",
                    fontsize=8, color="white" if perc[i][j] > 60.0 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
