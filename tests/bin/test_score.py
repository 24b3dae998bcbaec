"""The stage-6 scoring entry point: python -m espnet_ser.bin.score."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_ser.bin import score as score_bin
from tests.scoring.test_results import HYP, REF, files, write  # noqa: F401 (fixture)


def run(ref, hyp, outdir, *extra):
    score_bin.main(["--ref", str(ref), "--hyp", str(hyp), "--outdir", str(outdir), *extra])


def test_parser_defaults():
    args = score_bin.get_parser().parse_args(["--ref", "r", "--hyp", "h", "--outdir", "o"])
    assert args.emotions is None and args.allow_missing is False and args.plot is True


def test_writes_result_scores_and_png(files, tmp_path):
    ref, hyp = files
    out = tmp_path / "exp" / "score"
    run(ref, hyp, out, "--emotions", "ang hap neu sad")
    s = json.loads((out / "scores.json").read_text())
    for key in ("num_utts", "wer", "wer_no_emo", "ww", "uw", "wer_per_emotion", "ww_no_emo",
                "uw_no_emo", "wer_per_emotion_no_emo", "wa", "ua", "acc_per_emotion",
                "confusion", "wer_counts", "wer_counts_no_emo"):
        assert key in s, key
    # with token: 16 reference words (token included), S 2 D 1 I 2 -> 5 / 16
    assert s["wer"] == pytest.approx(31.25)
    # without: 12 words, cat->bat and the extra "d" -> 2 / 12
    assert s["wer_no_emo"] == pytest.approx(100 / 6)
    # front token (u1) right, end token (u3) right, missing (u2) wrong, last of two (u4) wrong
    assert s["wa"] == 50.0
    assert s["confusion"]["columns"] == ["ang", "hap", "neu", "sad", "none"]
    assert s["confusion"]["matrix"][1] == [0, 0, 0, 0, 1]  # u2: hap -> none
    assert s["confusion"]["matrix"][2] == [0, 0, 1, 1, 0]  # u3 neu, u4 sad
    text = (out / "result.txt").read_text()
    assert "WER, emotion token counted as a word" in text
    assert "WER, emotion tokens removed" in text
    assert "Confusion matrix, counts" in text
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_plot(files, tmp_path):
    ref, hyp = files
    run(ref, hyp, tmp_path / "o", "--plot", "false")
    assert not (tmp_path / "o" / "confusion.png").exists()
    assert (tmp_path / "o" / "scores.json").is_file()


def test_missing_utterance_is_an_error_naming_it(files, tmp_path):
    ref, _ = files
    hyp = write(tmp_path / "hyp_short", "u1 <ang> the cat sat\nu2 hello world <hap>\n")
    out = tmp_path / "out"
    out.mkdir()
    write(out / "scores.json", "previous\n")
    with pytest.raises(SystemExit) as e:
        run(ref, hyp, out)
    assert "utterance u3" in str(e.value.code) and "--allow_missing" in str(e.value.code)
    assert (out / "scores.json").read_text() == "previous\n"  # nothing destroyed
    assert sorted(p.name for p in out.iterdir()) == ["scores.json"]
    run(ref, hyp, out, "--allow_missing", "true")
    s = json.loads((out / "scores.json").read_text())
    assert s["num_missing_hyp"] == 2
    # labels ang hap neu; u3 and u4 (neu) have no hypothesis -> none
    assert s["confusion"]["matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 2]]
    assert s["confusion"]["columns"] == ["ang", "hap", "neu", "none"]


def test_hypothesis_not_in_reference(files, tmp_path):
    ref, _ = files
    hyp = write(tmp_path / "hyp", HYP + "u5 <ang> stray\n")
    with pytest.raises(SystemExit, match=r"hyp:5: utterance u5 is not in the reference"):
        run(ref, hyp, tmp_path / "out")


def test_duplicate_line(files, tmp_path):
    ref, _ = files
    hyp = write(tmp_path / "hyp", HYP + "u2 hello world <hap>\n")
    with pytest.raises(SystemExit, match=r"hyp:5: duplicate id u2"):
        run(ref, hyp, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_blank_line(files, tmp_path):
    _, hyp = files
    ref = write(tmp_path / "ref", "u1 <ang> a\n\nu2 <hap> b\n")
    with pytest.raises(SystemExit, match=r"ref:2: empty line"):
        run(ref, hyp, tmp_path / "out")


def test_reference_without_token(files, tmp_path):
    _, hyp = files
    ref = write(tmp_path / "ref", REF.replace("u3 a b <neu> c", "u3 a b c"))
    with pytest.raises(SystemExit, match=r"ref:3: utterance u3: the reference has no emotion"):
        run(ref, hyp, tmp_path / "out")


def test_reference_emotion_not_in_list(files, tmp_path):
    ref, hyp = files
    with pytest.raises(SystemExit, match=r"ref:3: utterance u3: reference emotion <neu>"):
        run(ref, hyp, tmp_path / "out", "--emotions", "ang hap sad")


def test_utt_subset(files, tmp_path):
    ref, hyp = files
    subset = write(tmp_path / "unseen", "u2\nu3\n")
    run(ref, hyp, tmp_path / "out", "--utt_subset", str(subset))
    s = json.loads((tmp_path / "out" / "scores.json").read_text())
    # u2: 3 words, 1 deletion; u3: 4 words, 1 insertion
    assert s["num_utts"] == 2
    assert s["wer_counts"] == {"snt": 2, "wrd": 7, "corr": 6, "sub": 0, "del": 1, "ins": 1,
                               "err": 2, "serr": 2}
    assert s["wer_per_emotion"] == pytest.approx({"hap": 100 / 3, "neu": 25.0})


def test_module_entry_point(files, tmp_path):
    ref, hyp = files
    repo = Path(__file__).resolve().parents[2]
    ok = subprocess.run(
        [sys.executable, "-m", "espnet_ser.bin.score", "--ref", str(ref), "--hyp", str(hyp),
         "--outdir", str(tmp_path / "out"), "--plot", "false"],
        cwd=repo, capture_output=True, text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "WER 31.2" in ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "espnet_ser.bin.score", "--ref", str(hyp), "--hyp", str(hyp),
         "--outdir", str(tmp_path / "bad")],
        cwd=repo, capture_output=True, text=True,
    )
    assert bad.returncode == 1
    assert "utterance u2: the reference has no emotion token" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_missing_hypothesis_fails_by_default_and_failed_decodes_are_reported(files, tmp_path):
    ref, _ = files
    dec = tmp_path / "decode"
    dec.mkdir()
    # u2 could not be decoded (present, empty, listed in failed); u4 has no line at all
    hyp = write(dec / "text", "u1 <ang> the cat sat\nu2\nu3 a b <neu> c\n")
    write(dec / "failed", "u2 RuntimeError: cannot read feats.ark:12\n")
    out = tmp_path / "score"
    with pytest.raises(SystemExit) as e:
        run(ref, hyp, out)
    msg = str(e.value.code)
    assert "utterance u4" in msg and str(hyp) in msg and "u2" not in msg.split("utterance u4")[0]
    assert not out.exists()
    run(ref, hyp, out, "--allow_missing", "true")
    s = json.loads((out / "scores.json").read_text())
    assert s["num_missing_hyp"] == 1 and s["num_failed_decodes"] == 1
    # u2 (3 words) and u4 (5 words) all deleted, u1 and u3 right
    assert s["wer_counts"] == {"snt": 4, "wrd": 16, "corr": 8, "sub": 0, "del": 8, "ins": 0,
                               "err": 8, "serr": 2}
    assert s["wer"] == 50.0 and s["wa"] == 50.0
    assert s["confusion"]["matrix"] == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1]]
    text = (out / "result.txt").read_text()
    assert "missing hypotheses (scored as empty): 1" in text
    assert "failed decodes (scored as empty): 1" in text
    assert "id: (u4)  [no hypothesis]" in text and "id: (u2)  [decoding failed]" in text
