"""python -m espnet_ser.bin.prepare_ravdess: options, exit status and messages."""

import subprocess
import sys
from collections import Counter

from espnet_ser.bin import prepare_ravdess as prepare_bin
from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.data.ravdess import EMOTIONS
from tests.data.test_ravdess import SET_FILES, make_tree, prepared, tree, write_wav  # noqa: F401
from tests.data.test_prepare import check_root_options


def test_cli(tree, tmp_path, prepared):
    out = tmp_path / "data"
    prepare_bin.main(["--ravdess_root", str(tree), "--out_dir", str(out), "--seed", "777"])
    for f in SET_FILES:
        assert (out / "random_test" / f).read_bytes() == \
            (prepared[0] / "random_test" / f).read_bytes()
    prepare_bin.main(["--ravdess_root", str(tree), "--out_dir", str(out),
                      "--seed", "5", "--test_fraction", "0.5"])
    assert Counter(read_kaldi_map(out / "random_test" / "utt2emo").values()) == \
        {e: 12 for e in EMOTIONS}
    check_root_options(prepare_bin.main, "--ravdess_root", tmp_path)


def test_cli_exit_status(tmp_path):
    root = make_tree(tmp_path / "corpus", actors=range(1, 25, 6))
    bad = root / "Actor_07" / "03-01-01-02-01-01-07.wav"
    write_wav(bad)
    r = subprocess.run([sys.executable, "-m", "espnet_ser.bin.prepare_ravdess",
                        "--ravdess_root", str(root), "--out_dir", str(tmp_path / "data")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"ERROR: {bad}: name '03-01-01-02-01-01-07.wav': neutral (01) has no strong "
        "intensity (02)")
    assert not (tmp_path / "data").exists()
