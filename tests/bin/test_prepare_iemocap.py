"""python -m espnet_ser.bin.prepare_iemocap: options, exit status and messages."""

import subprocess
import sys

import pytest

from espnet_ser.bin import prepare_iemocap as prepare_bin
from espnet_ser.data import iemocap
from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.data.iemocap import prepare_iemocap
from tests.data.test_iemocap import _emo, break_unknown_label, make_tree, snapshot, tree  # noqa: F401
from tests.data.test_prepare import check_root_options


def test_cli(tree, tmp_path):
    prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(tmp_path / "data"),
                      "--emotions", "ang neu", "--merge_exc_into_hap", "false"])
    emo = read_kaldi_map(tmp_path / "data" / "fold2_test" / "utt2emo")
    assert sorted(emo.values()) == ["ang"] * 2 + ["neu"] * 2
    check_root_options(prepare_bin.main, "--iemocap_root", tmp_path)
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(tmp_path / "d3"),
                          "--loso_valid", "next"])
    assert e.value.code == 2


def test_cli_protocols(tree, tmp_path):
    out = tmp_path / "data"
    prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(out),
                      "--protocols", "loso", "--loso_valid", "random", "--loso_seed", "3"])
    assert sorted(p.name for p in out.iterdir()) == sorted(iemocap.set_names(["loso"], "random"))
    ref = tmp_path / "ref"
    prepare_iemocap(tree, ref, protocols=["loso"], loso_valid="random", loso_seed=3)
    assert snapshot(out) == snapshot(ref)
    prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(tmp_path / "both"),
                      "--protocols", "session,loso"])
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == sorted(iemocap.set_names())
    assert len(iemocap.set_names()) == 1 + 15 + 30 + 30 + 20
    prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(tmp_path / "two"),
                      "--protocols", "loso", "--loso_valid", "none,partner"])
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        iemocap.set_names(["loso"], ["partner", "none"]))
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(tree), "--out_dir", str(tmp_path / "x"),
                          "--protocols", "session,speaker"])
    assert e.value.code == ("ERROR: --protocols: unknown protocol 'speaker' "
                            "(known: session,loso)")


def test_cli_exit_status(tmp_path):
    root = make_tree(tmp_path / "corpus")
    break_unknown_label(root)
    r = subprocess.run([sys.executable, "-m", "espnet_ser.bin.prepare_iemocap",
                        "--iemocap_root", str(root), "--out_dir", str(tmp_path / "data")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"ERROR: {_emo(root, 3, 'Ses03F_impro01')}:15: utterance Ses03F_impro01_F001")
    assert not (tmp_path / "data").exists()
