"""Word error counts in the shape of sclite / ESPnet result tables.

The alignment itself is jiwer's (a minimum edit distance alignment with unit costs);
this module turns it into per-utterance counts that can be pooled over any subset of
utterances::

    Snt  Wrd  Corr  Sub  Del  Ins  Err  S.Err

``Snt`` is the number of utterances, ``Wrd`` the number of reference words; in a table
Corr / Sub / Del / Ins / Err are printed as percent of ``Wrd`` and S.Err (utterances with
at least one error) as percent of ``Snt``, like sclite's ``Sum/Avg`` row.

A pooled WER is ``100 * (Sub + Del + Ins) / Wrd`` over all utterances of the subset; it is
*not* the mean of per-utterance WERs. A set without reference words has no defined WER
(``None``).
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import jiwer

COUNT_KEYS = ("snt", "wrd", "corr", "sub", "del", "ins", "err", "serr")


@dataclass(frozen=True)
class WerCounts:
    """Raw word error counts of one utterance or a pool of utterances."""

    snt: int = 0
    wrd: int = 0
    corr: int = 0
    sub: int = 0
    dele: int = 0  # "del" is a Python keyword; to_dict() writes it as "del"
    ins: int = 0
    serr: int = 0

    @property
    def err(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def wer(self) -> Optional[float]:
        """Pooled WER in percent, or None when there are no reference words."""
        return percent(self.err, self.wrd)

    def __add__(self, other: "WerCounts") -> "WerCounts":
        if not isinstance(other, WerCounts):
            return NotImplemented
        return WerCounts(
            snt=self.snt + other.snt,
            wrd=self.wrd + other.wrd,
            corr=self.corr + other.corr,
            sub=self.sub + other.sub,
            dele=self.dele + other.dele,
            ins=self.ins + other.ins,
            serr=self.serr + other.serr,
        )

    def to_dict(self) -> Dict[str, int]:
        """``{snt, wrd, corr, sub, del, ins, err, serr}`` (the scores.json form)."""
        return {
            "snt": self.snt,
            "wrd": self.wrd,
            "corr": self.corr,
            "sub": self.sub,
            "del": self.dele,
            "ins": self.ins,
            "err": self.err,
            "serr": self.serr,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, int], where: str = "counts") -> "WerCounts":
        """Inverse of :meth:`to_dict`; ``err`` is recomputed and checked when present."""
        missing = [k for k in ("snt", "wrd", "corr", "sub", "del", "ins", "serr") if k not in d]
        if missing:
            raise ValueError(f"{where}: WER counts lack {', '.join(missing)}")
        try:
            counts = cls(
                snt=int(d["snt"]),
                wrd=int(d["wrd"]),
                corr=int(d["corr"]),
                sub=int(d["sub"]),
                dele=int(d["del"]),
                ins=int(d["ins"]),
                serr=int(d["serr"]),
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: WER counts must be integers ({e})") from None
        if "err" in d and int(d["err"]) != counts.err:
            raise ValueError(f"{where}: err={d['err']} but sub+del+ins={counts.err}")
        if counts.corr + counts.sub + counts.dele != counts.wrd:
            raise ValueError(
                f"{where}: corr+sub+del={counts.corr + counts.sub + counts.dele} "
                f"but wrd={counts.wrd}"
            )
        return counts

    def row(self) -> Dict[str, Optional[float]]:
        """The sclite row: Snt and Wrd as counts, the rest in percent (None if undefined)."""
        return {
            "Snt": self.snt,
            "Wrd": self.wrd,
            "Corr": percent(self.corr, self.wrd),
            "Sub": percent(self.sub, self.wrd),
            "Del": percent(self.dele, self.wrd),
            "Ins": percent(self.ins, self.wrd),
            "Err": percent(self.err, self.wrd),
            "S.Err": percent(self.serr, self.snt),
        }


def percent(num: int, den: int) -> Optional[float]:
    """``100 * num / den``; None when ``den`` is 0 (nothing to divide by)."""
    if den == 0:
        return None
    return 100.0 * num / den


# One step of an alignment: (op, ref word or None, hyp word or None), op in C S D I.
AlignStep = Tuple[str, Optional[str], Optional[str]]


def _as_text(words: Sequence[str]) -> str:
    for w in words:
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"a word must be non-empty and free of white space, got {w!r}")
    return " ".join(words)


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> List[AlignStep]:
    """Align two word sequences with jiwer; return the steps in order."""
    out = jiwer.process_words(_as_text(ref), _as_text(hyp))
    (chunks,) = out.alignments
    r, h = out.references[0], out.hypotheses[0]
    steps: List[AlignStep] = []
    for c in chunks:
        if c.type == "equal":
            steps += [("C", r[i], h[j]) for i, j in zip(range(c.ref_start_idx, c.ref_end_idx),
                                                       range(c.hyp_start_idx, c.hyp_end_idx))]
        elif c.type == "substitute":
            steps += [("S", r[i], h[j]) for i, j in zip(range(c.ref_start_idx, c.ref_end_idx),
                                                       range(c.hyp_start_idx, c.hyp_end_idx))]
        elif c.type == "delete":
            steps += [("D", r[i], None) for i in range(c.ref_start_idx, c.ref_end_idx)]
        elif c.type == "insert":
            steps += [("I", None, h[j]) for j in range(c.hyp_start_idx, c.hyp_end_idx)]
        else:  # pragma: no cover - jiwer has only these four
            raise RuntimeError(f"unknown jiwer alignment type {c.type!r}")
    return steps


def counts_of_alignment(steps: Iterable[AlignStep]) -> WerCounts:
    """Counts of one utterance from its alignment steps."""
    n = {"C": 0, "S": 0, "D": 0, "I": 0}
    for op, _, _ in steps:
        n[op] += 1
    err = n["S"] + n["D"] + n["I"]
    return WerCounts(
        snt=1,
        wrd=n["C"] + n["S"] + n["D"],
        corr=n["C"],
        sub=n["S"],
        dele=n["D"],
        ins=n["I"],
        serr=1 if err else 0,
    )


def utterance_counts(ref: Sequence[str], hyp: Sequence[str]) -> WerCounts:
    """Word error counts of one utterance (``snt`` = 1)."""
    return counts_of_alignment(align_words(ref, hyp))


def corpus_counts(
    refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]]
) -> Dict[str, WerCounts]:
    """Per-utterance counts for every utterance of ``refs`` (each must be in ``hyps``)."""
    out = {}
    for utt, ref in refs.items():
        if utt not in hyps:
            raise KeyError(f"utterance {utt} has no hypothesis")
        out[utt] = utterance_counts(ref, hyps[utt])
    return out


def pool(counts: Iterable[WerCounts]) -> WerCounts:
    """Sum counts over utterances (the pooled WER of a subset is ``pool(...).wer``)."""
    total = WerCounts()
    for c in counts:
        total = total + c
    return total


def pooled_wer(per_utt: Mapping[str, WerCounts], utts: Optional[Iterable[str]] = None):
    """Pooled WER in percent over ``utts`` (all utterances when None)."""
    keys = per_utt.keys() if utts is None else utts
    return pool(per_utt[u] for u in keys).wer
