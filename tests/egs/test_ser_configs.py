"""Every SER training config of the recipes builds a SERTask model.

Pretrained checkpoints cannot be downloaded here, so a config's ``model_name_or_path`` is
replaced by a tiny random model of the same type; everything else (heads, CTC, optimiser,
scheduler keys) is the shipped config. The head sizes written in a config must match the
published hidden size of the checkpoint it names.
"""

from pathlib import Path

import pytest
import torch
import yaml

from espnet_ser.ser.personality import TABLE2_ROWS
from espnet_ser.ssl.encoder import published_size_configs
from espnet_ser.tasks.ser import SERTask

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob("egs/*/conf/tuning/train_ser_*.yaml"))
# hub name -> (model type, published size config)
CHECKPOINTS = {
    "facebook/wav2vec2-base": ("wav2vec2", "wav2vec2-base"),
    "facebook/wav2vec2-base-960h": ("wav2vec2", "wav2vec2-base"),
    "facebook/wav2vec2-xls-r-300m": ("wav2vec2", "xls-r-300m"),
    "patrickvonplaten/wav2vec2-xls-r-1b-common_voice-tr-ft": ("wav2vec2", "xls-r-1b"),
    "facebook/hubert-large-ls960-ft": ("hubert", "hubert-large"),
    "facebook/hubert-base-ls960": ("hubert", "hubert-base"),
}
TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            conv_dim=[8, 8], conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=8,
            num_conv_pos_embedding_groups=2, feat_extract_norm="layer")
CHARS = ["<blank>", "<unk>", "<space>", "a", "b", "<sos/eos>"]


def test_the_recipes_have_ser_configs():
    names = {p.relative_to(REPO).as_posix() for p in CONFIGS}
    for alpha in ("0", "0.001", "0.01", "0.1"):
        assert f"egs/iemocap/conf/tuning/train_ser_w2v2_base_mtl_alpha{alpha}.yaml" in names
    for model in ("wav2vec2_base", "xls_r_300m", "xls_r_1b", "hubert_large"):
        assert f"egs/ravdess/conf/tuning/train_ser_{model}.yaml" in names
    for row in TABLE2_ROWS:
        assert f"egs/pa_iemocap/conf/tuning/train_ser_hubert_row{row}.yaml" in names


def test_pa_iemocap_configs_are_the_table2_rows():
    """Row N's config is row 0's with the fusion of Table 2's row N, nothing else changed."""
    tuning = REPO / "egs/pa_iemocap/conf/tuning"
    base = yaml.safe_load((tuning / "train_ser_hubert_row0.yaml").read_text())
    assert "personality_fusion" not in base
    assert base["encoder_conf"]["model_name_or_path"] == "facebook/hubert-base-ls960"
    assert (base["batch_size"], base["max_epoch"], base["patience"]) == (8, 100, 20)
    assert base["optim_conf"] == dict(lr=5e-5, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01)
    assert base["scheduler_conf"] == dict(warmup_ratio=0.1)
    assert base["model_conf"]["ctc_weight"] == 0.1
    assert base["best_model_criterion"] == [["valid", "ua", "max"]]
    assert base["early_stopping_criterion"] == ["valid", "ua", "max"]
    for row, combo in TABLE2_ROWS.items():
        if combo is None:
            continue
        conf = yaml.safe_load((tuning / f"train_ser_hubert_row{row}.yaml").read_text())
        fusion = conf.pop("personality_fusion_conf")
        assert conf.pop("personality_fusion") == "attention" and conf == base
        assert (fusion["speaker"], fusion["listener"], fusion.get("fusion")) == combo
        assert fusion["num_heads"] == 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_config_builds_and_trains_one_step(path, tmp_path):
    conf = yaml.safe_load(path.read_text())
    enc = dict(conf["encoder_conf"])
    name = enc.pop("model_name_or_path", None)
    if name is not None:
        model_type, size = CHECKPOINTS[name]
        hidden = published_size_configs()[size]["hidden_size"]
        units = (conf.get("classifier_conf") or {}).get("hidden_units")
        if units is not None:  # the head is sized for the checkpoint the config names
            assert units == hidden
        enc["model_config"] = dict(TINY, model_type=model_type)
    conf["encoder_conf"] = enc
    tiny = tmp_path / "config.yaml"
    tiny.write_text(yaml.safe_dump(conf))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(CHARS) + "\n")
    parser = SERTask.get_parser()
    args = parser.parse_args(["--config", str(tiny), "--emotions", "ang", "hap", "neu", "sad",
                              "--input_size", "1", "--token_list", str(tokens)])
    model = SERTask.build_model(args)
    optimizers = SERTask.build_optimizers(args, model)
    assert len(optimizers) == 1
    wave = torch.randn(2, 6000)
    lengths = torch.tensor([6000, 5000])
    text = torch.tensor([[3, 2, 4], [4, 3, -1]])
    traits = torch.tensor([[4.0] * 10, [2.5] * 10])  # used by the personality configs only
    loss, stats, _ = model(wave, lengths, torch.tensor([[0], [3]]), None, text, torch.tensor([3, 2]),
                           personality=traits)
    assert torch.isfinite(loss)
    assert ("loss_ctc" in stats) == (float(conf["model_conf"]["ctc_weight"]) > 0)
    loss.backward()
    optimizers[0].step()
