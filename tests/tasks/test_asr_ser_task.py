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
    names = {p.name for p in TRAIN_CONFIGS}
    assert "train_asr_ser_conformer_small.yaml" in names
    assert "train_asr_ser_conformer_paper.yaml" in names


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_builds(config):
    model = build(config, token_list(100))
    assert isinstance(model, ESPnetASRSERModel)
    assert [model.token_list[i] for i in model.emotion_ids] == EMO
    feats = torch.randn(2, 120, 80)
    text = torch.tensor([[6, 7, 8, 2], [9, 10, 3, -1]])
    model.train()
    loss, stats, weight = model(feats, torch.tensor([120, 90]), text, torch.tensor([4, 3]))
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
