"""Word error counts (sclite's Snt Wrd Corr Sub Del Ins Err S.Err) from jiwer's alignments.

Counts pool over any subset: pooled WER = ``100 * (Sub + Del + Ins) / Wrd``, None without words.
"""

from dataclasses import dataclass, fields
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import jiwer

_STORED_KEYS = ("snt", "wrd", "corr", "sub", "del", "ins", "serr")


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
        return percent(self.err, self.wrd)

    def __add__(self, other: "WerCounts") -> "WerCounts":
        if not isinstance(other, WerCounts):
            return NotImplemented
        return WerCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> Dict[str, int]:
        """The scores.json form ``{snt, wrd, corr, sub, del, ins, err, serr}``."""
        return {"snt": self.snt, "wrd": self.wrd, "corr": self.corr, "sub": self.sub,
                "del": self.dele, "ins": self.ins, "err": self.err, "serr": self.serr}

    @classmethod
    def from_dict(cls, d: Mapping[str, int], where: str = "counts") -> "WerCounts":
        """Inverse of :meth:`to_dict`; ``err`` is recomputed and checked when present."""
        missing = [k for k in _STORED_KEYS if k not in d]
        if missing:
            raise ValueError(f"{where}: WER counts lack {', '.join(missing)}")
        try:
            counts = cls(**{("dele" if k == "del" else k): int(d[k]) for k in _STORED_KEYS})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: WER counts must be integers ({e})") from None
        if "err" in d and int(d["err"]) != counts.err:
            raise ValueError(f"{where}: err={d['err']} but sub+del+ins={counts.err}")
        if counts.corr + counts.sub + counts.dele != counts.wrd:
            raise ValueError(f"{where}: corr+sub+del={counts.corr + counts.sub + counts.dele} "
                             f"but wrd={counts.wrd}")
        return counts

    def row(self) -> Dict[str, Optional[float]]:
        """The sclite row: Snt, Wrd; Corr..Err percent of Wrd, S.Err of Snt (None: undefined)."""
        rates = {"Corr": self.corr, "Sub": self.sub, "Del": self.dele, "Ins": self.ins, "Err": self.err}
        return {"Snt": self.snt, "Wrd": self.wrd,
                **{k: percent(v, self.wrd) for k, v in rates.items()},
                "S.Err": percent(self.serr, self.snt)}


def percent(num: int, den: int) -> Optional[float]:
    """``100 * num / den``; None when ``den`` is 0."""
    return None if den == 0 else 100.0 * num / den


# One step of an alignment: (op, ref word or None, hyp word or None), op in C S D I.
AlignStep = Tuple[str, Optional[str], Optional[str]]
_OPS = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def _as_text(words: Sequence[str]) -> str:
    for w in words:
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"a word must be non-empty and free of white space, got {w!r}")
    return " ".join(words)


def _utt_counts(corr: int, sub: int, dele: int, ins: int) -> WerCounts:
    return WerCounts(snt=1, wrd=corr + sub + dele, corr=corr, sub=sub, dele=dele, ins=ins,
                     serr=int(sub + dele + ins > 0))


def _counts_of(out) -> WerCounts:
    """Counts of one utterance from a jiwer WordOutput / CharacterOutput."""
    return _utt_counts(out.hits, out.substitutions, out.deletions, out.insertions)


def align_and_count(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[List[AlignStep], WerCounts]:
    """jiwer's alignment steps of two word sequences, in order, and the utterance's counts."""
    out = jiwer.process_words(_as_text(ref), _as_text(hyp))
    (chunks,) = out.alignments
    r, h = out.references[0], out.hypotheses[0]
    steps: List[AlignStep] = []
    for c in chunks:
        op = _OPS[c.type]
        rw, hw = r[c.ref_start_idx:c.ref_end_idx], h[c.hyp_start_idx:c.hyp_end_idx]
        if op == "D":
            hw = [None] * len(rw)
        elif op == "I":
            rw = [None] * len(hw)
        steps += [(op, a, b) for a, b in zip(rw, hw)]
    return steps, _counts_of(out)


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> List[AlignStep]:
    """jiwer's alignment steps of two word sequences, in order."""
    return align_and_count(ref, hyp)[0]


def utterance_counts(ref: Sequence[str], hyp: Sequence[str]) -> WerCounts:
    """Word error counts of one utterance (``snt`` = 1)."""
    return _counts_of(jiwer.process_words(_as_text(ref), _as_text(hyp)))


def char_counts(ref: Sequence[str], hyp: Sequence[str]) -> WerCounts:
    """Character error counts of one utterance of words, the space between words a character."""
    return _counts_of(jiwer.process_characters(_as_text(ref), _as_text(hyp)))


def corpus_counts(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]]
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
    return sum(counts, WerCounts())


def pooled_wer(per_utt: Mapping[str, WerCounts], utts: Optional[Iterable[str]] = None):
    """Pooled WER in percent over ``utts`` (all utterances when None)."""
    return pool(per_utt[u] for u in (per_utt if utts is None else utts)).wer
