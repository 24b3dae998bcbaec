"""espnet_ser.scoring.ser: score_ser / score_ser_cv, hand-computed (data builders shared with tests/bin)."""

import json
from pathlib import Path

import pytest

from espnet_ser.bin import score_ser, score_ser_cv
from espnet_ser.scoring.results import ScoringError
from espnet_ser.scoring.ser import score_ser as score_ser_fn
from espnet_ser.scoring.ser import score_ser_cv as score_ser_cv_fn


# utt: ref emotion, hyp emotion ("none": failed decode), ref transcript, CTC transcript
UTTS = {
    "u1": ("ang", "ang", "<ang> the cat sat", "the bat sat"),  # 1 sub / 3 words; 1 / 11 chars
    "u2": ("ang", "hap", "hello world", "hello world"),
    "u3": ("hap", "hap", "a b", "a b c"),  # 1 ins; chars: 2 ins (<space> c)
    "u4": ("neu", "neu", "x", "x"),
    "u5": ("neu", "none", "yes no", ""),  # failed: 2 del; 6 chars deleted
    "u6": ("neu", "sad", "go", "go"),
    "u7": ("sad", "sad", "up", "up"),
    "u8": ("sad", "neu", "on", "of"),  # 1 sub; 1 char sub
}


EMOTIONS = "ang hap neu sad"


def lines(d):
    return "".join(f"{u} {v}\n" if v else f"{u}\n" for u, v in sorted(d.items()))


def make_set(root: Path, utts=UTTS, failed=("u5",)):
    """data/<set>/{utt2emo,text} and decode/<set>/{emotion,text,failed}; returns their paths."""
    data, dec = root / "data", root / "decode"
    data.mkdir(parents=True)
    dec.mkdir(parents=True)
    (data / "utt2emo").write_text(lines({u: v[0] for u, v in utts.items()}))
    (data / "text").write_text(lines({u: v[2] for u, v in utts.items()}))
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items()}))
    (dec / "text").write_text(lines({u: v[3] for u, v in utts.items()}))
    (dec / "failed").write_text(lines({u: "TooShortUttError: x" for u in failed}))
    return data, dec


# fold 1: u1-u3 (2 of 3 right, 2 word errors / 7 words);
# fold 2: u4-u8 (2 of 5 right, u5 failed, 3 word errors / 6 words)
FOLDS = {"fold1": ("u1", "u2", "u3"), "fold2": ("u4", "u5", "u6", "u7", "u8")}


def score_folds(tmp_path, folds=FOLDS):
    dirs = []
    for name, utts in folds.items():
        root = tmp_path / name
        data, dec = make_set(root, {u: UTTS[u] for u in utts},
                             failed=[u for u in utts if u == "u5"])
        out = root / name / "score"  # <set>/score: the fold is named after <set>
        score_ser.main(["--ref_emotion", str(data / "utt2emo"), "--hyp_emotion",
                        str(dec / "emotion"), "--emotions", EMOTIONS, "--ref_text",
                        str(data / "text"), "--hyp_text", str(dec / "text"), "--outdir", str(out),
                        "--plot", "false"])
        dirs.append(out)
    return dirs


def test_without_transcripts_and_default_classes(tmp_path):
    data, dec = make_set(tmp_path)
    s, preds = score_ser_fn(data / "utt2emo", dec / "emotion")
    assert s["wer"] is None and s["cer"] is None and s["emotions"] == ["ang", "hap", "neu", "sad"]
    assert preds["u5"] == ("neu", None)


def test_missing_hypothesis_only_allowed_when_failed(tmp_path):
    utts = dict(UTTS)
    data, dec = make_set(tmp_path, failed=("u5",))
    # u5 missing from the hypotheses but listed as failed: scored as none
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items() if u != "u5"}))
    (dec / "text").write_text(lines({u: v[3] for u, v in utts.items() if u != "u5"}))
    s, _ = score_ser_fn(data / "utt2emo", dec / "emotion", EMOTIONS, data / "text", dec / "text")
    assert (s["correct"], s["num_none"], s["wer"]["errors"]) == (4, 1, 5)
    # u6 and u7 missing and not failed: an error naming them
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items() if u not in ("u6", "u7")}))
    with pytest.raises(ScoringError, match="u6, u7"):
        score_ser_fn(data / "utt2emo", dec / "emotion", EMOTIONS)


def test_errors(tmp_path):
    data, dec = make_set(tmp_path)
    with open(dec / "emotion", "a") as f:
        f.write("zz9 ang\n")
    with pytest.raises(SystemExit, match="zz9 are not in the reference"):
        score_ser.main(["--ref_emotion", str(data / "utt2emo"), "--hyp_emotion",
                        str(dec / "emotion"), "--outdir", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()
    data2, dec2 = make_set(tmp_path / "b")
    with pytest.raises(ScoringError, match="not one of --emotions"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", "ang hap neu")
    with pytest.raises(ScoringError, match="both --ref_text and --hyp_text"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", EMOTIONS, ref_text=data2 / "text")
    (data2 / "text").write_text("u1 the cat sat\n")
    with pytest.raises(ScoringError, match="no reference transcript for utterance"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", EMOTIONS, data2 / "text", dec2 / "text")


def test_overlapping_folds_are_an_error(tmp_path):
    dirs = score_folds(tmp_path, {"fold1": ("u1", "u2"), "fold2": ("u2", "u3")})
    with pytest.raises(ScoringError, match="utterance u2 is in the predictions of"):
        score_ser_cv_fn(dirs)
    with pytest.raises(SystemExit, match="folds overlap"):
        score_ser_cv.main(["--score_dirs", *map(str, dirs), "--outdir", str(tmp_path / "cv")])
    assert not (tmp_path / "cv").exists()


def test_names_and_bad_inputs(tmp_path):
    dirs = score_folds(tmp_path)
    s, _ = score_ser_cv_fn(dirs, names=["a", "b"])
    assert [f["name"] for f in s["folds"]] == ["a", "b"]
    with pytest.raises(ScoringError, match="1 fold names for 2"):
        score_ser_cv_fn(dirs, names=["a"])
    with pytest.raises(ScoringError, match="no such file"):
        score_ser_cv_fn([tmp_path / "nowhere"])
    (dirs[1] / "scores.json").write_text(json.dumps({"wa": 1.0}))
    with pytest.raises(ScoringError, match="not written by score_ser"):
        score_ser_cv_fn(dirs)
