"""Emotion metrics: WA / UA / per-class accuracy / confusion, on hand-computed examples."""

import pytest

from espnet_ser.scoring.emotion import (
    emotion_code,
    emotion_metrics,
    plot_confusion,
    row_normalised,
    split_emotion_tokens,
)


def test_ua_and_wa_differ_on_imbalanced_classes():
    # 6 neu (5 right, 1 -> hap), 3 hap (1 right, 2 -> neu), 1 ang (right).
    ref = {f"n{i}": "neu" for i in range(6)}
    ref.update({f"h{i}": "hap" for i in range(3)})
    ref["a0"] = "ang"
    hyp = dict(ref)
    hyp["n5"] = "hap"
    hyp["h1"] = "neu"
    hyp["h2"] = "neu"
    m = emotion_metrics(ref, hyp)
    assert m["num_utts"] == 10
    assert m["wa"] == pytest.approx(70.0)  # 7 / 10
    # recalls: ang 1/1, hap 1/3, neu 5/6 -> UA = (100 + 33.33 + 83.33) / 3
    assert m["acc_per_emotion"] == pytest.approx({"ang": 100.0, "hap": 100 / 3, "neu": 500 / 6})
    assert m["ua"] == pytest.approx((100.0 + 100 / 3 + 500 / 6) / 3)  # 72.22
    assert m["num_per_emotion"] == {"ang": 1, "hap": 3, "neu": 6}
    assert m["confusion"] == {
        "labels": ["ang", "hap", "neu"],
        "columns": ["ang", "hap", "neu"],
        "matrix": [[1, 0, 0], [0, 1, 2], [0, 1, 5]],
    }


def test_majority_class_predictor():
    ref = {f"u{i}": ("neu" if i < 8 else "ang") for i in range(10)}
    hyp = {u: "neu" for u in ref}
    m = emotion_metrics(ref, hyp)
    assert m["wa"] == pytest.approx(80.0)
    assert m["ua"] == pytest.approx(50.0)


def test_no_emotion_counts_wrong_in_none_column():
    ref = {"u1": "ang", "u2": "ang", "u3": "sad"}
    hyp = {"u1": "ang", "u2": None, "u3": None}
    m = emotion_metrics(ref, hyp, labels=["ang", "hap", "neu", "sad"])
    assert m["wa"] == pytest.approx(100 / 3)
    assert m["acc_per_emotion"] == {"ang": 50.0, "sad": 0.0}  # only classes present in ref
    assert m["ua"] == pytest.approx(25.0)
    assert m["confusion"]["labels"] == ["ang", "hap", "neu", "sad"]
    assert m["confusion"]["columns"] == ["ang", "hap", "neu", "sad", "none"]
    assert m["confusion"]["matrix"] == [
        [1, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ]


def test_prediction_outside_labels_gets_its_own_column():
    m = emotion_metrics({"u1": "ang", "u2": "hap"}, {"u1": "fru", "u2": "hap"},
                        labels=["ang", "hap"])
    assert m["confusion"]["columns"] == ["ang", "hap", "fru"]
    assert m["confusion"]["matrix"] == [[0, 0, 1], [0, 1, 0]]
    assert m["wa"] == 50.0


def test_errors_name_the_utterance():
    with pytest.raises(ValueError, match="utterance u2 has no hypothesis"):
        emotion_metrics({"u1": "ang", "u2": "hap"}, {"u1": "ang"})
    with pytest.raises(ValueError, match="utterance u9 has a hypothesis but no reference"):
        emotion_metrics({"u1": "ang"}, {"u1": "ang", "u9": "hap"})
    with pytest.raises(ValueError, match="utterance u1 has reference emotion 'sad'"):
        emotion_metrics({"u1": "sad"}, {"u1": "sad"}, labels=["ang", "hap"])
    with pytest.raises(ValueError, match="no reference"):
        emotion_metrics({}, {})


def test_emotion_tokens_found_anywhere_and_specials_are_words():
    assert split_emotion_tokens("<ang> a b".split()) == (["ang"], ["a", "b"])
    assert split_emotion_tokens("a b <sad>".split()) == (["sad"], ["a", "b"])
    assert split_emotion_tokens("a <hap> b <neu>".split()) == (["hap", "neu"], ["a", "b"])
    assert split_emotion_tokens("<unk> a <sos/eos>".split()) == ([], ["<unk>", "a", "<sos/eos>"])
    assert emotion_code("<ang>") == "ang"
    assert emotion_code("<unk>") is None
    assert emotion_code("ang") is None


def test_row_normalised():
    conf = {"labels": ["a", "b"], "columns": ["a", "b"], "matrix": [[1, 3], [0, 0]]}
    assert row_normalised(conf) == [[25.0, 75.0], [0.0, 0.0]]


def test_plot_confusion_writes_png(tmp_path):
    conf = {"labels": ["ang", "hap"], "columns": ["ang", "hap", "none"],
            "matrix": [[3, 1, 0], [1, 2, 1]]}
    out = tmp_path / "sub" / "confusion.png"
    plot_confusion(conf, out, title="test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    assert [p.name for p in out.parent.iterdir()] == ["confusion.png"]  # no temp file left
