"""Length / CTC filtering of train and valid shape files; the test set is refused."""

import logging

import pytest
import torch

from espnet_ser.bin import filter_utts
from espnet_ser.data.filter import FilterError, filter_reasons, filter_shape_files, subsampled_frames


@pytest.mark.parametrize("factor, frames, expected", [
    (4, 7, 1), (4, 6, 0), (4, 5, 0), (4, 20, 4), (4, 101, 24),   # ((T-1)//2-1)//2
    (6, 11, 1), (6, 20, 2), (6, 10, 0),                          # ((T-1)//2-2)//3
    (8, 15, 1), (8, 14, 0), (8, 100, 11),                        # (((T-1)//2-1)//2-1)//2
    (2, 9, 2), (1, 9, 9),
])
def test_subsampled_frames_by_hand(factor, frames, expected):
    assert subsampled_frames(frames, factor) == expected


@pytest.mark.parametrize("factor, name", [(2, "Conv2dSubsampling2"), (4, "Conv2dSubsampling"),
                                          (6, "Conv2dSubsampling6"), (8, "Conv2dSubsampling8")])
def test_subsampled_frames_match_espnet(factor, name):
    from espnet.nets.pytorch_backend.transformer import subsampling

    layer = getattr(subsampling, name)(40, 2, 0.0).eval()
    for t in range(17, 48):
        with torch.no_grad():
            y, mask = layer(torch.zeros(1, t, 40), torch.ones(1, 1, t, dtype=torch.bool))
        assert y.shape[1] == mask.shape[-1] == subsampled_frames(t, factor), t


def write(path, rows):
    path.write_text("".join(f"{u} {v}\n" for u, v in rows))
    return path


@pytest.fixture
def shapes(tmp_path):
    feats = write(tmp_path / "feats_shape", [
        ("a_ok", "100,80"),        # 24 frames after /4, 5 tokens
        ("b_short", "9,80"),       # < min_frames 10
        ("c_long", "501,80"),      # > max_frames 500
        ("d_ctc", "23,80"),        # ((23-1)//2-1)//2 = 5 < 6 tokens
        ("e_ctc_edge", "27,80"),   # ((27-1)//2-1)//2 = 6 == 6 tokens: kept
        ("f_notext", "50,80"),
        ("g_min_edge", "10,80"),   # == min_frames, ((10-1)//2-1)//2 = 1 >= 1 token: kept
        ("h_max_edge", "500,80"),  # == max_frames: kept
    ])
    text = write(tmp_path / "text_shape", [
        ("a_ok", "5,150"), ("b_short", "1,150"), ("c_long", "3,150"), ("d_ctc", "6,150"),
        ("e_ctc_edge", "6,150"), ("g_min_edge", "1,150"), ("h_max_edge", "2,150"),
        ("z_nofeats", "3,150"),    # e.g. its audio was rejected at extraction
    ])
    return feats, text


EXPECTED = {
    "b_short": "too_short",
    "c_long": "too_long",
    "d_ctc": "ctc_too_short",
    "f_notext": "no_text",
    "z_nofeats": "no_features",
}


def test_filter_writes_shape_files_and_reasons(tmp_path, shapes, caplog):
    feats, text = shapes
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        reasons = filter_shape_files(feats, text, out, min_frames=10, max_frames=500,
                                     subsampling=4, set_role="train")
    assert {u: r.split()[0] for u, r in reasons.items()} == EXPECTED
    assert reasons["d_ctc"] == "ctc_too_short (23 frames -> 5 after subsampling by 4 < 6 tokens)"
    kept = ["a_ok", "e_ctc_edge", "g_min_edge", "h_max_edge"]
    assert (out / "feats_shape").read_text() == "".join(
        line for line in feats.read_text().splitlines(keepends=True) if line.split()[0] in kept)
    assert (out / "text_shape").read_text() == "".join(
        line for line in text.read_text().splitlines(keepends=True) if line.split()[0] in kept)
    listed = dict(line.split(maxsplit=1) for line in (out / "filtered").read_text().splitlines())
    assert {u: r.split()[0] for u, r in listed.items()} == EXPECTED
    for utt in EXPECTED:  # each id logged
        assert any(f"filtered {utt}: {EXPECTED[utt]}" in m for m in caplog.messages), utt


def test_ctc_rule_depends_on_subsampling():
    feats, text = {"u": 27}, {"u": 6}
    assert filter_reasons(feats, text, subsampling=4) == {}          # 6 frames
    assert "ctc_too_short" in filter_reasons(feats, text, subsampling=6)["u"]  # 3 frames
    assert "ctc_too_short" in filter_reasons(feats, text, subsampling=8)["u"]  # 2 frames
    assert filter_reasons(feats, text, subsampling=1) == {}


def test_bad_arguments_and_files(tmp_path, shapes):
    feats, text = shapes
    with pytest.raises(FilterError, match="min_frames 600 > max_frames 500"):
        filter_shape_files(feats, text, tmp_path / "o", min_frames=600, max_frames=500)
    with pytest.raises(FilterError, match="every utterance"):
        filter_shape_files(feats, text, tmp_path / "o", min_frames=10_000)
    bad = write(tmp_path / "bad_shape", [("u1", "12,80"), ("u2", "x,80")])
    with pytest.raises(FilterError, match=r"bad_shape:2: utterance u2: bad shape"):
        filter_shape_files(bad, text, tmp_path / "o")
    with pytest.raises(FilterError, match="subsampling must be one of"):
        filter_reasons({"u": 10}, {"u": 1}, subsampling=3)
    with pytest.raises(SystemExit) as exc:  # argparse refuses other factors
        filter_utts.main(["--feats_shape", str(feats), "--text_shape", str(text),
                          "--out_dir", str(tmp_path / "o"), "--subsampling", "3"])
    assert exc.value.code == 2


def test_no_target_token_is_filtered():
    reasons = filter_reasons({"a": 100, "b": 100}, {"a": 0, "b": 3}, subsampling=1)
    assert reasons == {"a": "empty_text (no target token)"}
