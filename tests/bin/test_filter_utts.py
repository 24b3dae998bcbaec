"""python -m espnet_ser.bin.filter_utts: filters a train/valid set, refuses the test set."""

import pytest

from espnet_ser.bin import filter_utts
from espnet_ser.data.filter import FilterError, filter_shape_files
from tests.data.test_filter import EXPECTED, shapes  # noqa: F401 (fixture)


def test_cli_valid_role(tmp_path, shapes, capsys):
    feats, text = shapes
    filter_utts.main(["--feats_shape", str(feats), "--text_shape", str(text),
                      "--out_dir", str(tmp_path / "v"), "--min_frames", "10",
                      "--max_frames", "500", "--subsampling", "4", "--set_role", "valid"])
    assert sorted(line.split()[0] for line in (tmp_path / "v" / "filtered").read_text().splitlines()) \
        == sorted(EXPECTED)
    err = capsys.readouterr().err
    assert "valid: kept 4 of 9 utterances; filtered 5" in err
    assert all(f"filtered {u}: {r}" in err for u, r in EXPECTED.items())


def test_test_set_is_never_filtered(tmp_path, shapes, capsys):
    feats, text = shapes
    with pytest.raises(FilterError, match="the test set is never filtered"):
        filter_shape_files(feats, text, tmp_path / "t", min_frames=10, set_role="test")
    with pytest.raises(SystemExit) as exc:
        filter_utts.main(["--feats_shape", str(feats), "--text_shape", str(text),
                          "--out_dir", str(tmp_path / "t"), "--min_frames", "10",
                          "--set_role", "test"])
    assert exc.value.code == 1
    assert "the test set is never filtered" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
