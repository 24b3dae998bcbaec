"""Tests for espnet_ser.bin.pack_model and espnet_ser.utils.checkpoints.unpack_model."""

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from espnet2.main_funcs.pack_funcs import unpack

from espnet_ser.bin.pack_model import main
from espnet_ser.utils.checkpoints import pack_model, unpack_model

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


def test_pack_unpack_round_trip(recipe, tmp_path):
    main(["--exp_dir", "exp/x", "--model_file", "exp/x/valid.acc.ave_10best.pth",
          "--out", "exp/x/packed_model.zip", "--decode_config", "conf/decode.yaml"])
    archive = recipe / "exp/x/packed_model.zip"
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert names == {
        "meta.yaml",
        "exp/x/config.yaml",
        "exp/x/valid.acc.ave_10best.pth",
        "exp/x/decode.yaml",
        "exp/x/RESULTS.md",
        TOKENS,
        BPE,
        STATS,
    }  # no training data lists
    meta = read_meta(archive)
    assert meta["yaml_files"] == {"asr_train_config": "exp/x/config.yaml"}
    assert meta["files"] == {"asr_model_file": "exp/x/valid.acc.ave_10best.pth"}
    # no staging leftovers next to the archive
    assert sorted(p.name for p in (recipe / "exp/x").iterdir() if p.name.startswith(".")) == []

    out = tmp_path / "unpacked"
    d = unpack_model(archive, out)
    assert d == {
        "config": str(out / "exp/x/config.yaml"),
        "model_file": str(out / "exp/x/valid.acc.ave_10best.pth"),
        "decode_config": str(out / "exp/x/decode.yaml"),
    }
    conf = yaml.safe_load(Path(d["config"]).read_text())
    assert conf["token_list"] == str(out / TOKENS)
    assert conf["bpemodel"] == str(out / BPE)
    assert conf["normalize_conf"]["stats_file"] == str(out / STATS)
    # untouched entries
    assert conf["train_data_path_and_name_and_type"] == [[WAV_SCP, "speech", "sound"]]
    assert conf["encoder_conf"] == {"output_size": 4, "num_blocks": 1}
    for rel in (TOKENS, BPE, STATS):
        assert (out / rel).read_bytes() == (recipe / rel).read_bytes()
    assert torch.equal(torch.load(d["model_file"])["w"], torch.arange(4.0))
    decode = yaml.safe_load(Path(d["decode_config"]).read_text())
    assert decode == {"beam_size": 10, "ctc_weight": 0.3}
    # ESPnet's own unpack sees an ordinary ASR archive
    assert set(unpack(archive, tmp_path / "espnet")) == {"asr_train_config", "asr_model_file"}


def test_symlinked_model_and_defaults(recipe, tmp_path):
    # default --model_file is valid.acc.ave.pth (a link) and default --out packed_model.zip
    main(["--exp_dir", "exp/x"])
    archive = recipe / "exp/x/packed_model.zip"
    meta = read_meta(archive)
    # like ESPnet's pack, the link is resolved to the file it points at
    assert meta["files"] == {"asr_model_file": "exp/x/valid.acc.ave_10best.pth"}
    d = unpack_model(archive, tmp_path / "out")
    assert d["decode_config"] is None
    assert torch.equal(torch.load(d["model_file"])["w"], torch.arange(4.0))


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


def test_missing_referenced_file_names_config_and_key(recipe, tmp_path, capsys):
    os.remove(recipe / STATS)
    with pytest.raises(FileNotFoundError) as e:
        pack_model("exp/x/config.yaml", "exp/x/valid.acc.ave_10best.pth", tmp_path / "m.zip")
    assert "exp/x/config.yaml" in str(e.value)
    assert "normalize_conf.stats_file" in str(e.value)
    assert not (tmp_path / "m.zip").exists()
    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", "exp/x"])
    assert e.value.code == 1
    assert "normalize_conf.stats_file" in capsys.readouterr().err


def test_bad_arguments(recipe, tmp_path):
    with pytest.raises(ValueError, match="unsupported archive name"):
        pack_model("exp/x/config.yaml", "exp/x/valid.acc.ave.pth", tmp_path / "m.rar")
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        pack_model("exp/x/config.yaml", "exp/x/nothere.pth", tmp_path / "m.zip")
    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", "exp/nothere"])
    assert e.value.code == 1


def test_failed_pack_keeps_previous_archive(recipe, tmp_path):
    out = recipe / "exp/x/packed_model.zip"
    main(["--exp_dir", "exp/x"])
    before = out.read_bytes()
    with pytest.raises(SystemExit):
        main(["--exp_dir", "exp/x", "--option", "exp/x/nothere"])
    assert out.read_bytes() == before
    assert [p.name for p in (recipe / "exp/x").iterdir() if p.name.startswith(".")] == []


def test_option_directory(recipe, tmp_path):
    images = recipe / "exp/x/images"
    images.mkdir()
    (images / "acc.png").write_bytes(b"png")
    main(["--exp_dir", "exp/x", "--out", str(tmp_path / "m.zip"), "--option", "exp/x/images"])
    with zipfile.ZipFile(tmp_path / "m.zip") as z:
        assert z.read("exp/x/images/acc.png") == b"png"
