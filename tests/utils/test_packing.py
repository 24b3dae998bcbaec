"""Tests for espnet_ser.utils.packing: archive names, referenced files, path rewriting."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_ser.utils.packing import pack_model, unpack_model

TOKENS = "data/token_list/bpe_unigram30/tokens.txt"
BPE = "data/token_list/bpe_unigram30/bpe.model"
STATS = "exp/asr_stats/train/feats_stats.npz"
WAV_SCP = "dump/raw/train/wav.scp"


def make_recipe(root: Path, token_list=TOKENS, stats=STATS, exp="exp/x") -> Path:
    """A recipe directory (cwd during training) with an experiment that refers to files."""
    for rel, text in ((TOKENS, "<blank>\n<ang>\n<hap>\na\n<sos/eos>\n"), (BPE, "fake-bpe"),
                      (WAV_SCP, "utt1 /corpus/utt1.wav\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / STATS).parent.mkdir(parents=True, exist_ok=True)
    np.savez(root / STATS, count=np.array(3), sum=np.ones(4), sum_square=np.ones(4))
    exp_dir = root / exp
    exp_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "config": "conf/train.yaml",
        "output_dir": exp,
        "train_data_path_and_name_and_type": [[WAV_SCP, "speech", "sound"]],
        "train_shape_file": [WAV_SCP],
        "token_list": token_list,
        "token_type": "bpe",
        "bpemodel": BPE,
        "normalize": "global_mvn",
        "normalize_conf": {"stats_file": stats},
        "encoder": "conformer",
        "encoder_conf": {"output_size": 4, "num_blocks": 1},
    }
    with (exp_dir / "config.yaml").open("w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    torch.save({"w": torch.arange(4.0)}, exp_dir / "valid.acc.ave_10best.pth")
    (exp_dir / "valid.acc.ave.pth").symlink_to("valid.acc.ave_10best.pth")
    (exp_dir / "RESULTS.md").write_text("# results\n")
    (root / "conf").mkdir(exist_ok=True)
    (root / "conf" / "decode.yaml").write_text("beam_size: 10\nctc_weight: 0.3\n")
    return exp_dir


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    root = tmp_path / "recipe"
    root.mkdir()
    make_recipe(root)
    monkeypatch.chdir(root)
    return root


def read_meta(archive: Path) -> dict:
    with zipfile.ZipFile(archive) as z:
        return yaml.safe_load(z.read("meta.yaml"))


def test_paths_outside_and_absolute(tmp_path, monkeypatch):
    # exp/ is a symlink to other storage; the token list is an absolute path outside the
    # recipe; the stats file is given as an absolute path inside it.
    root = tmp_path / "recipe"
    root.mkdir()
    scratch = tmp_path / "scratch" / "exp"
    scratch.mkdir(parents=True)
    (root / "exp").symlink_to(scratch)
    elsewhere = tmp_path / "shared" / "tokens.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("<blank>\na\n")
    make_recipe(root, token_list=str(elsewhere), stats=str(root / STATS), exp="exp/x")
    monkeypatch.chdir(root)

    info = pack_model("exp/x/config.yaml", "exp/x/valid.acc.ave_10best.pth", "exp/x/model.tar.gz")
    assert info["config"] == "exp/x/config.yaml"
    assert "external/tokens.txt" in info["files"]
    assert STATS in info["files"]
    out = tmp_path / "out"
    d = unpack_model(root / "exp/x/model.tar.gz", out)
    conf = yaml.safe_load(Path(d["config"]).read_text())
    assert conf["token_list"] == str(out / "external/tokens.txt")
    assert Path(conf["token_list"]).read_text() == "<blank>\na\n"
    assert conf["normalize_conf"]["stats_file"] == str(out / STATS)
    # the original config is left as it was
    orig = yaml.safe_load((root / "exp/x/config.yaml").read_text())
    assert orig["token_list"] == str(elsewhere)


def test_inline_token_list_is_not_searched(recipe, tmp_path):
    # ESPnet's trainer stores token_list as a list in config.yaml
    conf_path = recipe / "exp/x/config.yaml"
    conf = yaml.safe_load(conf_path.read_text())
    conf["token_list"] = ["<blank>", "conf", "a"]  # "conf" is also a directory here
    conf_path.write_text(yaml.safe_dump(conf))
    info = pack_model(conf_path, recipe / "exp/x/valid.acc.ave_10best.pth", tmp_path / "m.zip")
    assert TOKENS not in info["files"]
    d = unpack_model(tmp_path / "m.zip", tmp_path / "out")
    assert yaml.safe_load(Path(d["config"]).read_text())["token_list"] == ["<blank>", "conf", "a"]
