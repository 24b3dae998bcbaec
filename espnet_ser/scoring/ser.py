"""Scoring of utterance-level emotion classifiers (bin.score_ser) and their CV folds (bin.score_ser_cv).

Rates are in percent; a hypothesis ``none`` (failed decode) is wrong. scores.json (``kind: "ser"``):
ref_emotion, hyp_emotion, ref_text, hyp_text, emotions, n, correct, wa, ua, macro_f1,
acc_per_emotion, num_per_emotion, per_class {precision, recall, f1, support}, macro_avg,
weighted_avg, accuracy, confusion, num_none, num_failed, wer {errors, ref_words, wer, counts},
cer {errors, ref_chars, cer, counts}, curves, definitions. ``kind: "ser_cv"`` pools the folds'
predictions (``score_dirs`` instead of ref/hyp) and adds folds, num_folds, wa/ua_mean/_std, wer_mean.
"""

import functools
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map
from espnet_ser.scoring import tables
from espnet_ser.scoring.classification import (as_percent, render_classification_report,
                                                report_from_predictions)
from espnet_ser.scoring.emotion import NONE_COLUMN, emotion_metrics, split_emotion_tokens
from espnet_ser.scoring.results import (ScoringError, parse_emotion_option, read_failed,
                                        read_json, write_outputs)
from espnet_ser.scoring.wer import WerCounts, char_counts, pool, utterance_counts

PathLike = Union[str, Path]
SER_KIND = "ser"
SER_CV_KIND = "ser_cv"
NONE_CODE = NONE_COLUMN  # what ser_inference writes for an utterance it could not decode

DEFINITIONS = {
    "wa": "weighted accuracy = correct predictions / all utterances (%)",
    "ua": "unweighted accuracy = mean per-class recall over the classes in the reference (%)",
    "macro_f1": "mean F1 over the classes in the reference (%)",
    "per_class": "precision = correct / predicted as the class, recall = correct / reference "
    "utterances of the class, F1 their harmonic mean (%), support = reference utterances",
    "weighted_avg": "per-class values weighted by support",
    "none": "hypotheses 'none' (failed decodes) are wrong predictions",
    "wer": "word errors (sub + del + ins) of the CTC greedy transcript / reference words (%)",
    "cer": "character errors / reference characters, the space between words counted as a "
    "character (%)",
}


def _first(utts: Sequence[str], k: int = 3) -> str:
    return ", ".join(utts[:k]) + (f" ... ({len(utts)} in all)" if len(utts) > k else "")


def _single_code(path: PathLike, m: Mapping[str, str]) -> None:
    for utt, v in m.items():
        if len(v.split()) != 1:
            raise ScoringError(f"{path}: utterance {utt}: expected one emotion code, got {v!r}")


def text_words(value: str) -> List[str]:
    """Words of a transcript, emotion tokens (``<ang>``) removed."""
    return split_emotion_tokens(value.split())[1]


def error_dict(c: WerCounts, key: str) -> dict:
    """``{errors, ref_words, wer, counts}`` (key "wer") or ``{errors, ref_chars, cer, counts}``."""
    ref = "ref_words" if key == "wer" else "ref_chars"
    return {"errors": c.err, ref: c.wrd, key: c.wer, "counts": c.to_dict()}


def transcript_counts(ref_text: PathLike, hyp_text: PathLike, utts: Sequence[str],
                      failed: Mapping[str, str]) -> Tuple[WerCounts, WerCounts]:
    """Pooled word and character error counts of the transcripts of ``utts``."""
    refs = read_kaldi_map(ref_text, allow_empty_value=True, check_sorted=False)
    hyps = read_kaldi_map(hyp_text, allow_empty_value=True, check_sorted=False)
    missing = [u for u in utts if u not in refs]
    if missing:
        raise ScoringError(f"{ref_text}: no reference transcript for utterance(s) {_first(missing)}")
    scored = set(utts)
    extra = [u for u in hyps if u not in scored]
    if extra:
        raise ScoringError(f"{hyp_text}: utterance(s) {_first(extra)} are not in the reference")
    missing = [u for u in utts if u not in hyps and u not in failed]
    if missing:
        raise ScoringError(f"{hyp_text}: no transcript for utterance(s) {_first(missing)} "
                           "(and they are not in the failed list)")
    pairs = [(text_words(refs[u]), text_words(hyps.get(u, ""))) for u in utts]
    return pool(utterance_counts(r, h) for r, h in pairs), pool(char_counts(r, h) for r, h in pairs)


def prediction_metrics(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                       emotions: Optional[Sequence[str]]) -> dict:
    """WA / UA / confusion (emotion_metrics) and the classification report, in percent."""
    labels = list(emotions) if emotions else sorted(set(ref.values()))
    emo = emotion_metrics(ref, hyp, labels=labels)
    rep = as_percent(report_from_predictions(ref, hyp, labels))
    correct = sum(1 for u in ref if hyp[u] == ref[u])
    return {"emotions": labels, "n": len(ref), "correct": correct, "wa": emo["wa"], "ua": emo["ua"],
            "macro_f1": rep["macro avg"]["f1"], "acc_per_emotion": emo["acc_per_emotion"],
            "num_per_emotion": emo["num_per_emotion"], "per_class": rep["per_class"],
            "macro_avg": rep["macro avg"], "weighted_avg": rep["weighted avg"],
            "accuracy": rep["accuracy"], "confusion": emo["confusion"],
            "num_none": sum(1 for u in ref if hyp[u] is None)}


def score_ser(ref_emotion: PathLike, hyp_emotion: PathLike,
              emotions: Optional[Union[str, Sequence[str]]] = None,
              ref_text: Optional[PathLike] = None, hyp_text: Optional[PathLike] = None,
              ) -> Tuple[dict, Dict[str, Tuple[str, Optional[str]]]]:
    """``(scores, predictions)``: the scores.json dict and ``utt -> (ref, hyp or None)``; a reference
    utterance without a hypothesis is an error unless in the ``failed`` list beside the hypotheses."""
    labels = parse_emotion_option(emotions)
    if (ref_text is None) != (hyp_text is None):
        raise ScoringError("give both --ref_text and --hyp_text, or neither")
    ref = read_kaldi_map(ref_emotion, check_sorted=False)
    hyp_raw = read_kaldi_map(hyp_emotion, check_sorted=False)
    _single_code(ref_emotion, ref)
    _single_code(hyp_emotion, hyp_raw)
    if labels:
        bad = [u for u, c in ref.items() if c not in labels]
        if bad:
            raise ScoringError(f"{ref_emotion}: utterance {bad[0]} has reference emotion "
                               f"{ref[bad[0]]!r}, not one of --emotions ({' '.join(labels)})")
    failed = read_failed(hyp_emotion)
    extra = [u for u in hyp_raw if u not in ref]
    if extra:
        raise ScoringError(f"{hyp_emotion}: utterance(s) {_first(extra)} are not in the "
                           f"reference {ref_emotion}")
    missing = [u for u in ref if u not in hyp_raw and u not in failed]
    if missing:
        raise ScoringError(f"{hyp_emotion}: no hypothesis for utterance(s) {_first(missing)} "
                           f"of {ref_emotion} (and they are not in the failed list)")
    hyp = {u: (None if hyp_raw.get(u, NONE_CODE) == NONE_CODE else hyp_raw[u]) for u in ref}
    scores = {"kind": SER_KIND, "ref_emotion": str(ref_emotion), "hyp_emotion": str(hyp_emotion),
              "ref_text": None if ref_text is None else str(ref_text),
              "hyp_text": None if hyp_text is None else str(hyp_text)}
    scores.update(prediction_metrics(ref, hyp, labels))
    scores.update(num_failed=sum(1 for u in ref if u in failed), wer=None, cer=None)
    if ref_text is not None:
        w, c = transcript_counts(ref_text, hyp_text, list(ref), failed)
        scores["wer"], scores["cer"] = error_dict(w, "wer"), error_dict(c, "cer")
    scores.update(curves=None, definitions=dict(DEFINITIONS))
    return scores, {u: (ref[u], hyp[u]) for u in ref}


_rate = functools.partial(tables.fmt_rate, digits=2)


def kaldi_lines(s: Mapping) -> List[str]:
    """``%WA`` / ``%UA`` / ``%WER`` / ``%CER`` lines in the style of Kaldi's compute-wer."""
    out = [f"%WA {_rate(s['wa'])} [ {s['correct']} / {s['n']} ]",
           f"%UA {_rate(s['ua'])} [ mean recall over {len(s['acc_per_emotion'])} classes ]",
           f"%macro-F1 {_rate(s['macro_f1'])}"]
    for key, unit in (("wer", "WER"), ("cer", "CER")):
        e = s.get(key)
        if e:
            c = e["counts"]
            out.append(f"%{unit} {_rate(e[key])} [ {c['err']} / {c['wrd']}, {c['ins']} ins, "
                       f"{c['del']} del, {c['sub']} sub ]")
    return out


def render_ser_report(s: Mapping, header: Sequence[str]) -> str:
    """result.txt of score_ser / score_ser_cv: ``header``, counts, Kaldi lines, report, confusion."""
    report = {"per_class": s["per_class"], "macro avg": s["macro_avg"], "num_utts": s["n"],
              "weighted avg": s["weighted_avg"], "accuracy": s["accuracy"]}
    out = list(header) + [
        f"  utterances: {s['n']}",
        f"  hypotheses '{NONE_CODE}' (no prediction, counted as errors): {s['num_none']}",
        f"  of them failed decodes: {s['num_failed']}", ""] + kaldi_lines(s) + [
        "", "Classification report (values in %; macro avg over the classes present in the "
        "reference)", "", render_classification_report(report, digits=2),
        f"Confusion matrix: rows = reference, columns = hypothesis ('{NONE_CODE}' = no prediction)"]
    out += tables.confusion_text_tables(s["confusion"])
    return "\n".join(out).rstrip("\n") + "\n"


def write_predictions(path: PathLike, predictions: Mapping[str, Tuple[str, Optional[str]]]) -> None:
    write_kaldi_map(path, {u: f"{r} {NONE_CODE if h is None else h}"
                           for u, (r, h) in predictions.items()})


def read_predictions(path: PathLike) -> Dict[str, Tuple[str, Optional[str]]]:
    out = {}
    for u, v in read_kaldi_map(path, check_sorted=False).items():
        parts = v.split()
        if len(parts) != 2:
            raise ScoringError(f"{path}: utterance {u}: expected '<utt> <ref> <hyp>', got {v!r}")
        out[u] = (parts[0], None if parts[1] == NONE_CODE else parts[1])
    return out


def write_ser_outputs(scores: dict, predictions: Mapping, outdir: PathLike, header: Sequence[str],
                      plot: bool = True) -> None:
    """scores.json, result.txt, predictions and (with ``plot``) confusion.png."""
    write_predictions(Path(outdir) / "predictions", predictions)  # kept if plotting fails
    write_outputs(outdir, scores, render_ser_report(scores, header), scores["n"], plot)


def load_ser_scores(score_dir: PathLike) -> dict:
    p = Path(score_dir) / "scores.json"
    if not p.is_file():
        raise ScoringError(f"{p}: no such file (not a score_ser output directory?)")
    s = read_json(p)
    if not isinstance(s, dict) or s.get("kind") != SER_KIND:
        raise ScoringError(f"{p}: not written by score_ser (kind is not {SER_KIND!r})")
    return s


def fold_names(score_dirs: Sequence[Path]) -> List[str]:
    """``<set>`` for ``.../<set>/score`` directories, else the directory name; paths if ambiguous."""
    names = [p.parent.name if p.name == "score" else p.name for p in score_dirs]
    return names if len(set(names)) == len(names) else [str(p) for p in score_dirs]


def _mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1; None for a single value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _pool_errors(folds: Sequence[Mapping], key: str) -> Optional[dict]:
    """The folds' ``key`` ("wer", "cer") pooled, as :func:`error_dict`; None if no fold has it."""
    have = [f[key] for f in folds if f.get(key)]
    if not have:
        return None
    if len(have) != len(folds):
        raise ScoringError(f"{key.upper()} is scored in {len(have)} of {len(folds)} folds; "
                           "score every fold with or every fold without transcripts")
    return error_dict(pool(WerCounts.from_dict(e["counts"], where=key) for e in have), key)


def score_ser_cv(score_dirs: Sequence[PathLike], names: Optional[Sequence[str]] = None
                 ) -> Tuple[dict, Dict[str, Tuple[str, Optional[str]]]]:
    """``(scores, pooled predictions)`` over the folds' score_ser directories."""
    if not score_dirs:
        raise ScoringError("no fold score directories given")
    dirs = [Path(d) for d in score_dirs]
    names = list(names) if names else fold_names(dirs)
    if len(names) != len(dirs):
        raise ScoringError(f"{len(names)} fold names for {len(dirs)} score directories")
    folds = [load_ser_scores(d) for d in dirs]
    emotions = folds[0]["emotions"]
    for d, f in zip(dirs, folds):
        if f["emotions"] != emotions:
            raise ScoringError(f"{d}: classes {' '.join(f['emotions'])} differ from "
                               f"{dirs[0]}: {' '.join(emotions)}")
    pooled: Dict[str, Tuple[str, Optional[str]]] = {}
    where: Dict[str, Path] = {}
    for d, f in zip(dirs, folds):
        preds = read_predictions(d / "predictions")
        if len(preds) != f["n"]:
            raise ScoringError(f"{d / 'predictions'}: {len(preds)} utterances but scores.json "
                               f"says n={f['n']}")
        for u, p in preds.items():
            if u in pooled:
                raise ScoringError(f"utterance {u} is in the predictions of {where[u]} and of {d}: "
                                   "folds overlap")
            pooled[u], where[u] = p, d
    scores = {"kind": SER_CV_KIND, "score_dirs": [str(d) for d in dirs], "num_folds": len(dirs),
              **prediction_metrics({u: r for u, (r, _) in pooled.items()},
                                   {u: h for u, (_, h) in pooled.items()}, emotions)}
    scores["num_failed"] = sum(f.get("num_failed", 0) for f in folds)
    scores["wer"], scores["cer"] = _pool_errors(folds, "wer"), _pool_errors(folds, "cer")
    scores["folds"] = [
        {"name": n, "dir": str(d), **{k: f[k] for k in ("n", "correct", "wa", "ua", "macro_f1")},
         **{k: f[k][k] if f.get(k) else None for k in ("wer", "cer")}}
        for n, d, f in zip(names, dirs, folds)]
    scores["wa_mean"], scores["wa_std"] = _mean_std([f["wa"] for f in folds])
    scores["ua_mean"], scores["ua_std"] = _mean_std([f["ua"] for f in folds])
    fold_wers = [f["wer"] for f in scores["folds"] if f["wer"] is not None]
    # the multi-task paper's eq. 5: the mean of the per-fold WERs
    scores["wer_mean"] = (sum(fold_wers) / len(fold_wers)
                          if fold_wers and len(fold_wers) == len(folds) else None)
    scores["definitions"] = dict(
        DEFINITIONS, wa="pooled accuracy = correct predictions of all folds / utterances of all folds (%)",
        ua="mean per-class recall over the pooled predictions of all folds (%)",
        wa_std="sample standard deviation (n - 1) of the per-fold WA; ua_std likewise",
        wer="sum of the folds' word errors / sum of their reference words (%)",
        wer_mean="mean of the per-fold WERs (%), None unless every fold has one")
    return scores, pooled


def fold_table(s: Mapping) -> str:
    header = ["fold", "n", "correct", "WA", "UA", "macro-F1", "WER", "CER"]
    rows = [[f["name"], str(f["n"]), str(f["correct"]), _rate(f["wa"]), _rate(f["ua"]),
             _rate(f["macro_f1"]), _rate(f["wer"]), _rate(f["cer"])] for f in s["folds"]]
    rows += [["mean", "", "", _rate(s["wa_mean"]), _rate(s["ua_mean"]), "", _rate(s.get("wer_mean")), ""],
             ["std", "", "", _rate(s["wa_std"]), _rate(s["ua_std"]), "", "", ""],
             ["pooled", str(s["n"]), str(s["correct"]), _rate(s["wa"]), _rate(s["ua"]),
              _rate(s["macro_f1"]), _rate((s["wer"] or {}).get("wer")), _rate((s["cer"] or {}).get("cer"))]]
    return tables.text_table(header, rows, title="Cross-validation folds (values in %)",
                             separators=[len(s["folds"])])


def write_ser_cv_outputs(scores: dict, predictions: Mapping, outdir: PathLike,
                         plot: bool = True) -> None:
    header = [f"espnet_ser SER cross-validation report ({scores['num_folds']} folds)"]
    header += [f"  fold {f['name']}: {f['dir']}" for f in scores["folds"]]
    header += [f"  WA over folds: mean {_rate(scores['wa_mean'])}, std {_rate(scores['wa_std'])}; "
               f"UA over folds: mean {_rate(scores['ua_mean'])}, std {_rate(scores['ua_std'])}",
               "  pooled: every fold's predictions scored together (WA = total correct / "
               "total utterances)", "", fold_table(scores), "Pooled scores"]
    write_ser_outputs(scores, predictions, outdir, header, plot=plot)
