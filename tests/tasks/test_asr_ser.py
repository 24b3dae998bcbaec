"""ASRSERTask: registries, every shipped training config builds, and the model's emotion stats."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from espnet_ser.asr.espnet_model import ESPnetASRSERModel, emotion_accuracy, emotion_token_ids
from espnet_ser.tasks.asr_ser import ASRSERTask

REPO = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = sorted(
    p for p in REPO.glob("egs/*/conf/**/*.yaml")
    if "encoder" in (yaml.safe_load(p.read_text()) or {})
    and not p.name.startswith("train_ser")  # SERTask configs: tests/egs/test_ser_configs.py
)
EMO = ["<ang>", "<hap>", "<neu>", "<sad>"]


def token_list(n_words: int):
    return ["<blank>", "<unk>"] + EMO + [f"w{i}" for i in range(n_words)] + ["<sos/eos>"]


def build(config: Path, tokens, extra=()):
    parser = ASRSERTask.get_parser()
    args = parser.parse_args(
        ["--config", str(config), "--token_list", "x", "--input_size", "80",
         "--normalize", "none", "--token_type", "word", *extra]
    )
    args.token_list = list(tokens)
    return ASRSERTask.build_model(args)


def test_configs_are_found():
    names = {str(p.relative_to(REPO)) for p in TRAIN_CONFIGS}
    assert "egs/mini_emo/conf/tuning/train_asr_ser_conformer_small.yaml" in names
    assert "egs/mini_emo/conf/tuning/train_asr_ser_conformer_paper.yaml" in names
    for variant in ("", "_oracle", "_gst", "_ptgst"):
        assert f"egs/iemocap/conf/tuning/train_asr_ser_conformer{variant}.yaml" in names


def test_iemocap_gst_configs_are_the_paper_setting():
    tuning = REPO / "egs/iemocap/conf/tuning"
    base = yaml.safe_load((tuning / "train_asr_ser_conformer.yaml").read_text())
    assert base["optim_conf"]["lr"] == 0.0015 and base["batch_size"] == 64
    assert base["max_epoch"] == 100 and base["keep_nbest_models"] == 10
    for variant, style in (("oracle", "oracle"), ("gst", "gst"), ("ptgst", "gst")):
        conf = yaml.safe_load((tuning / f"train_asr_ser_conformer_{variant}.yaml").read_text())
        assert conf["encoder"] == "gst_conformer" and conf["style_encoder"] == style
        # the same AED as the baseline, plus the conditioning options
        extra = {k: v for k, v in conf["encoder_conf"].items() if k not in base["encoder_conf"]}
        assert set(extra) == {"cond_layers", "style_ffn"}
        assert {k: conf["encoder_conf"][k] for k in base["encoder_conf"]} == base["encoder_conf"]
        assert {k: v for k, v in conf.items() if k not in ("encoder", "encoder_conf", "style_encoder",
                "style_encoder_conf", "init_param")} == {k: v for k, v in base.items()
                                                          if k not in ("encoder", "encoder_conf")}
    ptgst = yaml.safe_load((tuning / "train_asr_ser_conformer_ptgst.yaml").read_text())
    assert ptgst["init_param"] == ["exp/gst_tacotron/gst.pth::style_encoder"]
    model = build(tuning / "train_asr_ser_conformer_gst.yaml", token_list(100))
    n_gst = sum(p.numel() for p in model.style_encoder.parameters())
    assert 470e3 < n_gst < 500e3, n_gst  # the paper's "about 480k"


def style_inputs(model, n_frames=(150, 110)):
    """The batch entry a model's style encoder reads (none without one)."""
    if model.style_input_name == "style_speech":
        return dict(style_speech=torch.randn(2, max(n_frames), 80),
                    style_speech_lengths=torch.tensor(n_frames))
    if model.style_input_name == "emotion":
        return dict(emotion=torch.tensor([[0], [3]]), emotion_lengths=torch.tensor([1, 1]))
    return {}


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_builds(config):
    model = build(config, token_list(100))
    assert isinstance(model, ESPnetASRSERModel)
    assert [model.token_list[i] for i in model.emotion_ids] == EMO
    feats = torch.randn(2, 120, 80)
    text = torch.tensor([[6, 7, 8, 2], [9, 10, 3, -1]])
    model.train()
    loss, stats, weight = model(feats, torch.tensor([120, 90]), text, torch.tensor([4, 3]),
                                **style_inputs(model))
    assert torch.isfinite(loss) and int(weight) == 2
    assert 0.0 <= float(stats["acc_emo"]) <= 1.0


def test_print_config_accepts_every_config(tmp_path):
    for config in TRAIN_CONFIGS:
        out = subprocess.run(
            [sys.executable, "-m", "espnet_ser.bin.asr_ser_train", "--config", str(config),
             "--print_config"], capture_output=True, text=True, cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        printed = yaml.safe_load(out.stdout[out.stdout.index("config:"):])
        assert printed["model"] == "asr_ser"
        assert printed["encoder"] == yaml.safe_load(config.read_text())["encoder"]


def test_paper_config_has_about_112m_parameters():
    # The paper's AED (12 conformer + 6 decoder blocks) has 112M parameters with its
    # word-level output layer; 5,000 output units land in the same range.
    config = REPO / "egs/mini_emo/conf/tuning/train_asr_ser_conformer_paper.yaml"
    model = build(config, token_list(5000))
    n = sum(p.numel() for p in model.parameters())
    assert 100e6 < n < 125e6, n
    assert len(model.encoder.encoders) == 12 and len(model.decoder.decoders) == 6


def test_unknown_model_name_is_rejected():
    with pytest.raises(SystemExit):
        ASRSERTask.get_parser().parse_args(["--model", "no_such_model"])
    args = ASRSERTask.get_parser().parse_args(["--model", "asr_ser"])
    assert args.model == "asr_ser"


def test_emotion_token_ids_skip_special_tokens():
    tl = ["<blank>", "<unk>", "<ang>", "a", "<sad>", "<sos/eos>"]
    assert emotion_token_ids(tl) == [2, 4]
    assert emotion_token_ids(tl, ["<sad>"]) == [4]
    with pytest.raises(ValueError, match="<hap>"):
        emotion_token_ids(tl, ["<hap>"])


def test_emotion_accuracy_counts_only_emotion_positions():
    # vocab: 0 blank, 1 w, 2 <ang>, 3 <sad>; utterance 0 ends with <ang>, utterance 1 with <sad>
    text = torch.tensor([[1, 1, 2], [1, 3, -1]])
    lengths = torch.tensor([3, 2])
    out = torch.zeros(2, 4, 4)
    out[0, 2, 2] = 5.0  # right: <ang> at position 2
    out[1, 1, 2] = 5.0  # wrong: predicts <ang> where <sad> is
    out[1, 1, 1] = 9.0  # a word scores higher, but only emotion tokens compete
    acc, n = emotion_accuracy(out, text, lengths, [2, 3])
    assert n == 2 and float(acc) == pytest.approx(0.5)
    out[1, 1, 3] = 6.0
    acc, _ = emotion_accuracy(out, text, lengths, [2, 3])
    assert float(acc) == pytest.approx(1.0)
    acc, n = emotion_accuracy(out, torch.tensor([[1, 1, 1]]), torch.tensor([3]), [2, 3])
    assert acc is None and n == 0
