"""Stage 6: score emotion-token transcripts (bin.score) and write RESULTS.md (bin.make_results).

WER is given with the emotion token scored as a word where it stands (GST paper Tables 1, 2,
4) and, in the ``*_no_emo`` fields, with every emotion token removed (Tables 3, 5); rates in
percent, null without reference words. scores.json keys: ref, hyp, utt_subset, num_utts,
emotions; wer, ww, uw, wer_per_emotion, wer_counts, wer_counts_per_emotion, each also with
_no_emo (counts: snt wrd corr sub del ins err serr); wa, ua, acc_per_emotion, num_per_emotion,
confusion {labels, columns, matrix}; num_missing_hyp, num_hyp_no_emotion,
num_hyp_multiple_emotions, num_failed_decodes (null: no failed file); definitions.
"""

import datetime
import json
import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from espnet_ser.data.datadir import emotion_token, parse_emotions, read_kaldi_map
from espnet_ser.scoring import tables
from espnet_ser.scoring.emotion import (NONE_COLUMN, emotion_metrics, plot_confusion,
                                         split_emotion_tokens)
from espnet_ser.scoring.wer import WerCounts, align_and_count, pool, utterance_counts
from espnet_ser.utils.cli import exit_on_error, fail  # noqa: F401 (re-exported)
from espnet_ser.utils.io import atomic_write_text

PathLike = Union[str, Path]

DEFINITIONS = {
    "wer": "WER over all utterances, the emotion token scored as one word where it stands "
    "(GST paper Tables 1, 2, 4)",
    "wer_no_emo": "WER over all utterances after removing every emotion token from reference "
    "and hypothesis (GST paper Tables 3, 5)",
    "wer_per_emotion": "pooled WER over the utterances whose REFERENCE emotion is the class "
    "(with token; *_no_emo without)",
    "ww": "weighted WER = WER over all utterances (with token; ww_no_emo without)",
    "uw": "unweighted WER = mean of the per-emotion WERs (with token; uw_no_emo without)",
    "wa": "weighted accuracy = correct emotions over all utterances",
    "ua": "unweighted accuracy = mean of the per-class recalls",
    "none": "column of hypotheses without an emotion token (always wrong)",
}


class ScoringError(ValueError):
    """An input of the scorer is malformed; the message names file, line and utterance."""


@dataclass
class EmotionLine:
    """One line of an emotion-token text file."""

    lineno: int
    words: List[str]  # every token, emotion tokens included, in order
    words_no_emo: List[str]  # the same without emotion tokens
    codes: List[str]  # emotion codes in order of appearance


def read_emotion_text(path: PathLike, role: str, emotions: Optional[Sequence[str]] = None
                      ) -> Dict[str, EmotionLine]:
    """A Kaldi text with inline emotion tokens: one per ``"reference"`` line (in ``emotions`` when
    given), any number per ``"hypothesis"``; errors name file and line."""
    if role not in ("reference", "hypothesis"):
        raise ValueError(f"role must be reference or hypothesis, got {role!r}")
    raw = read_kaldi_map(path, allow_empty_value=True, check_sorted=False)
    out: Dict[str, EmotionLine] = {}
    for lineno, (utt, value) in enumerate(raw.items(), 1):
        words = value.split()
        codes, rest = split_emotion_tokens(words)
        where = f"{path}:{lineno}: utterance {utt}:"
        if role == "reference" and not codes:
            raise ScoringError(f"{where} the reference has no emotion token "
                               "(expected one such as <neu> among the words)")
        if role == "reference" and len(codes) > 1:
            raise ScoringError(f"{where} the reference has {len(codes)} emotion tokens "
                               f"({' '.join(emotion_token(c) for c in codes)}); it needs exactly one")
        if role == "reference" and emotions is not None and codes[0] not in emotions:
            raise ScoringError(f"{where} reference emotion {emotion_token(codes[0])} "
                               f"is not one of --emotions ({' '.join(emotions)})")
        out[utt] = EmotionLine(lineno=lineno, words=words, words_no_emo=rest, codes=codes)
    return out


def read_failed(hyp_path: PathLike) -> Dict[str, str]:
    """The ``failed`` list beside a hypothesis file (empty when there is none)."""
    f = Path(hyp_path).parent / "failed"
    return read_kaldi_map(f, allow_empty_value=True, check_sorted=False) if f.is_file() else {}


@dataclass
class UttResult:
    utt: str
    ref_emotion: str
    hyp_emotion: Optional[str]
    steps: list  # alignment with the emotion token
    counts: WerCounts
    counts_no_emo: WerCounts
    missing: bool = False
    failed_decode: bool = False


@dataclass
class ScoreResult:
    scores: dict
    utts: List[UttResult] = field(default_factory=list)


def parse_emotion_option(value: Optional[Union[str, Sequence[str]]]) -> Optional[List[str]]:
    """``--emotions`` as a list of codes (:func:`parse_emotions`); None when none given."""
    try:
        codes = parse_emotions(value)
    except ValueError as e:
        raise ScoringError(f"--emotions: {e}") from None
    if NONE_COLUMN in codes:
        raise ScoringError(f"--emotions: {NONE_COLUMN!r} cannot be a class")
    return codes or None


def score(ref_path: PathLike, hyp_path: PathLike,
          emotions: Optional[Union[str, Sequence[str]]] = None, allow_missing: bool = False,
          utt_subset: Optional[PathLike] = None) -> ScoreResult:
    """Score HYP against REF: WER per emotion pools by reference emotion, WW = WER, UW = mean of
    those; a missing hypothesis is an error unless ``allow_missing``, failed ones score as empty."""
    labels = parse_emotion_option(emotions)
    refs = read_emotion_text(ref_path, "reference", labels)
    hyps = read_emotion_text(hyp_path, "hypothesis")

    extra = [u for u in hyps if u not in refs]
    if extra:
        raise ScoringError(f"{hyp_path}:{hyps[extra[0]].lineno}: utterance {extra[0]} is not in "
                           f"the reference {ref_path}"
                           + (f" ({len(extra)} such utterances)" if len(extra) > 1 else ""))
    utts = list(refs)
    if utt_subset is not None:
        subset = list(read_kaldi_map(utt_subset, allow_empty_value=True, check_sorted=False))
        for lineno, utt in enumerate(subset, 1):
            if utt not in refs:
                raise ScoringError(f"{utt_subset}:{lineno}: utterance {utt} is not in the "
                                   f"reference {ref_path}")
        if not subset:
            raise ScoringError(f"{utt_subset}: the utterance subset is empty")
        keep = set(subset)
        utts = [u for u in utts if u in keep]
    if not utts:
        raise ScoringError(f"{ref_path}: no utterances to score")

    missing = [u for u in utts if u not in hyps]
    if missing and not allow_missing:
        raise ScoringError(
            f"{hyp_path}: utterance {missing[0]} (line {refs[missing[0]].lineno} of {ref_path}) "
            "has no hypothesis"
            + (f"; {len(missing)} utterances are missing" if len(missing) > 1 else "")
            + " (use --allow_missing true to score them as empty hypotheses)")
    if missing:
        logging.warning(f"{len(missing)} of {len(utts)} utterances have no hypothesis in "
                        f"{hyp_path} (first: {missing[0]}); they are scored as empty hypotheses")
    failed_file = Path(hyp_path).parent / "failed"
    failed = read_failed(hyp_path) if failed_file.is_file() else None
    num_failed = sum(1 for u in utts if u in failed) if failed else 0
    if num_failed:
        logging.warning(f"{num_failed} of {len(utts)} utterances could not be decoded "
                        f"({failed_file}); they are scored as empty hypotheses")

    results: List[UttResult] = []
    empty = EmotionLine(lineno=0, words=[], words_no_emo=[], codes=[])
    for utt in utts:
        ref, hyp = refs[utt], hyps.get(utt, empty)
        steps, counts = align_and_count(ref.words, hyp.words)
        results.append(UttResult(
            utt=utt, ref_emotion=ref.codes[0], hyp_emotion=hyp.codes[-1] if hyp.codes else None,
            steps=steps, counts=counts,
            counts_no_emo=utterance_counts(ref.words_no_emo, hyp.words_no_emo),
            missing=utt not in hyps, failed_decode=failed is not None and utt in failed))
    multi = [u for u in utts if len(hyps.get(u, empty).codes) > 1]
    no_emo = [r.utt for r in results if r.hyp_emotion is None]
    if multi:
        logging.warning(f"{len(multi)} hypotheses have several emotion tokens; the last one is "
                        f"taken as the prediction (first: {multi[0]}, "
                        f"{hyp_path}:{hyps[multi[0]].lineno})")
    if no_emo:
        logging.warning(f"{len(no_emo)} hypotheses have no emotion token and count as wrong "
                        f"(first: {no_emo[0]})")

    emo = emotion_metrics({r.utt: r.ref_emotion for r in results},
                          {r.utt: r.hyp_emotion for r in results}, labels=labels)
    classes = list(emo["acc_per_emotion"])  # label order, classes present in the reference

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    # scores.json order: the rates of both variants, then their totals, then per-class counts
    rates, totals, per_counts = {}, {}, {}
    for suffix, attr in (("", "counts"), ("_no_emo", "counts_no_emo")):
        total = pool(getattr(r, attr) for r in results)
        per = {c: pool(getattr(r, attr) for r in results if r.ref_emotion == c) for c in classes}
        rates.update({f"wer{suffix}": total.wer, f"ww{suffix}": total.wer,
                      f"uw{suffix}": mean(c.wer for c in per.values()),
                      f"wer_per_emotion{suffix}": {c: per[c].wer for c in classes}})
        totals[f"wer_counts{suffix}"] = total.to_dict()
        per_counts[f"wer_counts_per_emotion{suffix}"] = {c: per[c].to_dict() for c in classes}
    scores = {
        "ref": str(ref_path), "hyp": str(hyp_path),
        "utt_subset": None if utt_subset is None else str(utt_subset),
        "num_utts": len(results), "emotions": list(emo["confusion"]["labels"]),
        **rates, **totals, **per_counts,
        **{k: emo[k] for k in ("wa", "ua", "acc_per_emotion", "num_per_emotion", "confusion")},
        "num_missing_hyp": len(missing), "num_hyp_no_emotion": len(no_emo),
        "num_hyp_multiple_emotions": len(multi),
        "num_failed_decodes": None if failed is None else num_failed,
        "definitions": dict(DEFINITIONS),
    }
    return ScoreResult(scores=scores, utts=results)


# (suffix of the scores.json keys, what the WER counts) of the two WER variants
WER_VARIANTS = (("", "emotion token counted as a word"), ("_no_emo", "emotion tokens removed"))
_TXT_DEFINITIONS = [
    "Definitions (all values in percent)",
    "  with emotion token:    the emotion token is scored as one word where it stands "
    "(GST paper Tables 1, 2, 4);",
    "                         scores.json: wer, ww, uw, wer_per_emotion, wer_counts*",
    "  without emotion token: every emotion token is removed from reference and "
    "hypothesis first (GST paper Tables 3, 5);",
    "                         scores.json: wer_no_emo, ww_no_emo, uw_no_emo, "
    "wer_per_emotion_no_emo, wer_counts*_no_emo",
    "  per-emotion rows: pooled over the utterances whose REFERENCE emotion is the class",
    "  WW: WER over all utterances (the Sum/Avg Err); UW: mean of the per-emotion WERs",
    "  WA: accuracy over all utterances; UA: mean of the per-class recalls",
    "",
]


def render_result_txt(result: ScoreResult) -> str:
    """The sclite-style text report written to ``result.txt``."""
    s = result.scores
    rate = tables.fmt_rate
    classes = list(s["wer_counts_per_emotion"])
    out = ["espnet_ser scoring report", f"  reference:  {s['ref']}", f"  hypothesis: {s['hyp']}"]
    out += [f"  utterance subset: {s['utt_subset']}"] if s.get("utt_subset") else []
    out += [f"  utterances: {s['num_utts']}",
            f"  missing hypotheses (scored as empty): {s['num_missing_hyp']}"]
    if s.get("num_failed_decodes") is not None:
        out.append(f"  failed decodes (scored as empty): {s['num_failed_decodes']}")
    out += [""] + _TXT_DEFINITIONS

    for suffix, what in WER_VARIANTS:
        rows = [(c, WerCounts.from_dict(s[f"wer_counts_per_emotion{suffix}"][c])) for c in classes]
        rows.append(("Sum/Avg", WerCounts.from_dict(s[f"wer_counts{suffix}"])))
        out.append(tables.sclite_text_table(rows, title=f"WER, {what}", first="ref emotion"))
        out += [f"WW{suffix} = {rate(s['ww' + suffix])}   UW{suffix} = {rate(s['uw' + suffix])}", ""]

    summary = [["WW", rate(s["ww"]), rate(s["ww_no_emo"])], ["UW", rate(s["uw"]), rate(s["uw_no_emo"])]]
    summary += [[f"WER {c}", rate(s["wer_per_emotion"][c]), rate(s["wer_per_emotion_no_emo"][c])]
                for c in classes]
    out.append(tables.text_table(["", "with emotion token", "without emotion token"], summary,
                                 title="WER summary"))
    emo_rows = [[c, str(s["num_per_emotion"][c]), rate(s["acc_per_emotion"][c])] for c in classes]
    emo_rows += [["WA", str(s["num_utts"]), rate(s["wa"])],
                 ["UA", str(len(classes)) + " classes", rate(s["ua"])]]
    out.append(tables.text_table(["emotion", "#utt", "accuracy"], emo_rows,
                                 title="Emotion recognition", separators=[len(classes)]))
    out.append("Confusion matrix: rows = reference emotion, columns = hypothesis emotion "
               f"('{NONE_COLUMN}' = no emotion token in the hypothesis)")
    out += tables.confusion_text_tables(s["confusion"])
    notes = [f"{n} {what}" for n, what in (
        (s["num_hyp_no_emotion"],
         f"hypotheses have no emotion token (column '{NONE_COLUMN}', counted wrong)"),
        (s["num_hyp_multiple_emotions"],
         "hypotheses have several emotion tokens (the last one is the prediction)"),
        (s["num_missing_hyp"], "utterances have no hypothesis (scored as empty)"),
        (s.get("num_failed_decodes"), "utterances could not be decoded (scored as empty)")) if n]
    if notes:
        out += ["Warnings"] + [f"  {n}" for n in notes] + [""]

    if result.utts:
        out += ["Per-utterance alignment (emotion token counted as a word)", ""]
        for r in result.utts:
            c = r.counts
            hyp = NONE_COLUMN if r.hyp_emotion is None else r.hyp_emotion
            verdict = "correct" if r.hyp_emotion == r.ref_emotion else "wrong"
            out += [f"id: ({r.utt})" + ("  [no hypothesis]" if r.missing else "")
                    + ("  [decoding failed]" if r.failed_decode else ""),
                    f"Emotion: ref {r.ref_emotion}  hyp {hyp}  ({verdict})",
                    f"Scores: (#C #S #D #I) {c.corr} {c.sub} {c.dele} {c.ins}",
                    *tables.alignment_lines(r.steps), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_outputs(outdir: PathLike, scores: Mapping, text: str, num_utts: int, plot: bool) -> Path:
    """Write ``scores.json``, ``result.txt`` (``text``) and with ``plot`` confusion.png; the outdir."""
    outdir = Path(outdir)
    atomic_write_text(outdir / "scores.json", json.dumps(scores, indent=2) + "\n")
    atomic_write_text(outdir / "result.txt", text)
    if plot:
        title = f"WA {scores['wa']:.1f}%  UA {scores['ua']:.1f}%  ({num_utts} utts)"
        plot_confusion(scores["confusion"], outdir / "confusion.png", title=title)
    return outdir


def write_score_outputs(result: ScoreResult, outdir: PathLike, plot: bool = True) -> None:
    """Write ``scores.json``, ``result.txt`` and (with ``plot``) ``confusion.png``."""
    write_outputs(outdir, result.scores, render_result_txt(result), result.scores["num_utts"], plot)


@dataclass
class ScoreEntry:
    exp: str  # experiment directory name under exp/
    dataset: str  # decode_<tag>/<test_set>, or <test_set> for emotion-only scores
    path: Path
    scores: dict


def find_score_files(recipe_dir: PathLike) -> List[Tuple[str, str, Path]]:
    """Sorted ``(exp, dataset, path)``: ``exp/<exp>/decode_<tag>/<set>/score/scores.json`` has dataset
    ``decode_<tag>/<set>``, ``exp/<exp>/<set>/scores.json`` (e.g. prosody baseline) ``<set>``."""
    exp_dir = Path(recipe_dir) / "exp"
    found = [(p.parts[-5], f"{p.parts[-4]}/{p.parts[-3]}", p)
             for p in exp_dir.glob("*/decode_*/*/score/scores.json")]
    found += [(p.parts[-3], p.parts[-2], p) for p in exp_dir.glob("*/*/scores.json")]
    return sorted(found, key=lambda t: (t[0], t[1]))


def read_json(path: PathLike):
    """The JSON value of a file; ScoringError naming file and line when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ScoringError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def load_scores(path: PathLike) -> dict:
    """Read a scores.json and check it has WER or emotion metrics."""
    scores = read_json(path)
    if not isinstance(scores, dict):
        raise ScoringError(f"{path}: expected a JSON object")
    if "wer" not in scores and "wer_counts" not in scores and "wa" not in scores:
        raise ScoringError(f"{path}: has neither WER (wer, wer_counts) nor emotion (wa) scores")
    return scores


def _emotion_columns(entries: Sequence[ScoreEntry]) -> List[str]:
    cols: Dict[str, None] = {}  # an ordered set
    for s in (e.scores for e in entries):
        for source in (s.get("emotions") or [], (s.get("confusion") or {}).get("labels") or [],
                       sorted(s.get("acc_per_emotion") or {}), sorted(s.get("wer_per_emotion") or {})):
            cols.update(dict.fromkeys(source))
    return list(cols)


def _sclite_row(e: ScoreEntry, suffix: str) -> Optional[List[str]]:
    s = e.scores
    key = "wer_counts" + suffix
    if key in s:
        try:
            counts = WerCounts.from_dict(s[key], where=f"{e.path}: {key}")
        except ValueError as err:
            raise ScoringError(str(err)) from None
        return [e.dataset] + tables.sclite_cells(counts)
    if ("wer" + suffix) in s:  # only the rate is known
        return [e.dataset] + ["-"] * 6 + [tables.fmt_rate(s["wer" + suffix]), "-"]
    return None


def _class_row(e: ScoreEntry, first, second, per: Optional[Mapping], cols: Sequence[str]):
    """``dataset, first, second`` and a rate per class column (``-`` where absent)."""
    per = per or {}
    return [e.dataset, tables.fmt_rate(first), tables.fmt_rate(second)] + [
        tables.fmt_rate(per.get(c)) for c in cols]


def _per_emotion_row(e: ScoreEntry, suffix: str, cols: Sequence[str]) -> Optional[List[str]]:
    s = e.scores
    per = s.get("wer_per_emotion" + suffix)
    ww = s.get("ww" + suffix, s.get("wer" + suffix))
    if per is None and ww is None:
        return None
    return _class_row(e, ww, s.get("uw" + suffix), per, cols)


def _emotion_row(e: ScoreEntry, cols: Sequence[str]) -> Optional[List[str]]:
    s = e.scores
    return _class_row(e, s["wa"], s.get("ua"), s.get("acc_per_emotion"), cols) if "wa" in s else None


def _section(title: str, header: Sequence[str], rows: Sequence[Optional[List[str]]]) -> List[str]:
    """A ``### title`` and its markdown table of the rows that are not None; [] without any."""
    rows = [r for r in rows if r]
    return [f"### {title}", "", tables.markdown_table(header, rows)] if rows else []


# scores.json of utterance-level classifiers (espnet_ser.scoring.ser): score_ser, score_ser_cv
SER_KINDS = ("ser", "ser_cv")


def _ser_tables(entries: Sequence[ScoreEntry]) -> List[str]:
    """Markdown tables of the score_ser / score_ser_cv entries of one experiment."""
    def cells(s: Mapping) -> List[str]:
        errors = [s[k].get(k) if isinstance(s.get(k), Mapping) else None for k in ("wer", "cer")]
        rates = [s.get("wa"), s.get("ua"), s.get("macro_f1")] + errors
        return [tables.fmt_count(s.get("n"))] + [tables.fmt_rate(v) for v in rates]

    def mean_std(s: Mapping, key: str) -> str:
        m, sd = s.get(f"{key}_mean"), s.get(f"{key}_std")
        if m is None:
            return "-"
        return tables.fmt_rate(m) + ("" if sd is None else f" ± {tables.fmt_rate(sd)}")

    header = ["Snt", "WA", "UA", "macro F1", "WER", "CER"]
    ser = [e for e in entries if e.scores.get("kind") == "ser"]
    cv = [e for e in entries if e.scores.get("kind") == "ser_cv"]
    return _section("Emotion recognition (utterance-level classifier)", ["dataset"] + header,
                    [[e.dataset] + cells(e.scores) for e in ser]) + _section(
        "Emotion recognition, cross-validation (pooled over the folds)",
        ["dataset", "folds"] + header + ["WA mean ± std", "UA mean ± std"],
        [[e.dataset, str(e.scores.get("num_folds", "-"))] + cells(e.scores)
         + [mean_std(e.scores, "wa"), mean_std(e.scores, "ua")] for e in cv])


def _run(cmd: Sequence[str], cwd: PathLike) -> Optional[str]:
    try:
        out = subprocess.run(list(cmd), cwd=str(cwd), capture_output=True, text=True, timeout=30,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_info(recipe_dir: PathLike) -> Dict[str, str]:
    """Date, versions, git hash, OS and CPU count for the RESULTS.md environment block."""
    import espnet_ser

    # the checkout holding the recipe, else the one holding the toolkit's code that ran
    git_hash, checkout = "unknown", None
    for where in (recipe_dir, Path(espnet_ser.__file__).resolve().parent):
        git_hash = _run(["git", "rev-parse", "--short", "HEAD"], where) or "unknown"
        if git_hash != "unknown":
            checkout = where
            break
    info = {"date": datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"),
            "python version": sys.version.replace("\n", " "),
            "torch version": _package_version("torch"), "espnet version": _package_version("espnet"),
            "espnet_ser version": getattr(espnet_ser, "__version__", "unknown"), "Git hash": git_hash}
    if checkout is not None:
        info["Commit date"] = _run(["git", "log", "-1", "--format=%cd"], checkout) or "unknown"
    info.update({"OS": platform.platform(), "CPU count": str(os.cpu_count())})
    return info


def render_results_md(recipe_dir: PathLike, notes: Optional[str] = None,
                      env: Optional[Mapping[str, str]] = None) -> str:
    """ESPnet-style RESULTS.md text for every scores.json under ``recipe_dir/exp``."""
    recipe_dir = Path(recipe_dir)
    entries = [ScoreEntry(exp=exp, dataset=ds, path=p, scores=load_scores(p))
               for exp, ds, p in find_score_files(recipe_dir)]
    env = environment_info(recipe_dir) if env is None else env
    out: List[str] = ["<!-- Generated by espnet_ser.bin.make_results -->", "# RESULTS", ""]
    if notes:
        out += [notes.rstrip("\n"), ""]
    out += ["## Environments"] + [f"{'  ' if k == 'Commit date' else ''}- {k}: `{v}`"
                                  for k, v in env.items()] + [""]
    if not entries:
        out += [f"No scores.json found under `{recipe_dir / 'exp'}`.", ""]

    exps: Dict[str, List[ScoreEntry]] = {}
    for e in entries:
        exps.setdefault(e.exp, []).append(e)
    for exp, entries_of_exp in exps.items():
        config = recipe_dir / "exp" / exp / "config.yaml"
        out += [f"## {exp}"]
        out += [f"- config: `{config.relative_to(recipe_dir)}`"] if config.is_file() else []
        out += [f"- {e.dataset}: `{e.path.relative_to(recipe_dir)}`" for e in entries_of_exp] + [""]
        out += _ser_tables(entries_of_exp)
        # the tables below are those of emotion-token transcripts and emotion-only scores
        group = [e for e in entries_of_exp if e.scores.get("kind") not in SER_KINDS]
        cols = _emotion_columns(group)
        for suffix, what in WER_VARIANTS:
            out += _section(f"WER ({what})", ["dataset"] + tables.SCLITE_HEADER,
                            [_sclite_row(e, suffix) for e in group])
        for suffix, what in WER_VARIANTS:
            out += _section(f"WER per reference emotion ({what})", ["dataset", "WW", "UW"] + cols,
                            [_per_emotion_row(e, suffix, cols) for e in group])
        out += _section("Emotion recognition (accuracy per reference class)",
                        ["dataset", "WA", "UA"] + cols, [_emotion_row(e, cols) for e in group])
    return "\n".join(out).rstrip("\n") + "\n"


def write_results_md(recipe_dir: PathLike, out: PathLike, notes_file: Optional[PathLike] = None) -> str:
    """Render RESULTS.md and write it atomically; returns the text."""
    if notes_file is not None and not Path(notes_file).is_file():
        raise ScoringError(f"{Path(notes_file)}: no such notes file")
    notes = None if notes_file is None else Path(notes_file).read_text(encoding="utf-8")
    text = render_results_md(recipe_dir, notes=notes)
    atomic_write_text(out, text)
    return text
