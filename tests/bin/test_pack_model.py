"""Tests for espnet_ser.bin.pack_model (packing and unpacking through the command line)."""

import os
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.main_funcs.pack_funcs import unpack

from espnet_ser.bin.pack_model import main
from espnet_ser.utils.packing import pack_model, unpack_model

from tests.utils.test_packing import BPE, STATS, TOKENS, WAV_SCP, read_meta, recipe  # noqa: F401


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
