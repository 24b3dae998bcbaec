"""The SSL papers' configs fine-tune, clip, schedule and load what the papers did.

Multi-task SER paper (IEMOCAP): the whole wav2vec 2.0 is fine-tuned, the convolutional
feature encoder included; ``*_frozencnn.yaml`` variants freeze it. RAVDESS paper: the
checkpoints it cites, the Hugging Face Trainer's defaults (no warm-up, linear decay, max
gradient norm 1.0). Every HF-style config uses ``warmuplinearlr`` (a schedule of the run's
real length) and follows the checkpoint's own waveform normalisation.
"""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IEMOCAP = REPO / "egs/iemocap/conf/tuning"
RAVDESS = REPO / "egs/ravdess/conf/tuning"
ALPHAS = ("0", "0.001", "0.01", "0.1")
MTL = [IEMOCAP / f"train_ser_w2v2_base_mtl_alpha{a}.yaml" for a in ALPHAS]
MTL_FROZEN = [IEMOCAP / f"train_ser_w2v2_base_mtl_alpha{a}_frozencnn.yaml" for a in ALPHAS]
# the RAVDESS paper's references [9], [10], [12], [13]
RAVDESS_CHECKPOINTS = {
    "wav2vec2_base": "facebook/wav2vec2-base-960h",
    "xls_r_300m": "facebook/wav2vec2-xls-r-300m",
    "xls_r_1b": "patrickvonplaten/wav2vec2-xls-r-1b-common_voice-tr-ft",
    "hubert_large": "facebook/hubert-large-ls960-ft",
}
RAVDESS_CONFIGS = [RAVDESS / f"train_ser_{k}.yaml" for k in RAVDESS_CHECKPOINTS]
MINI = sorted((REPO / "egs/mini_emo/conf/tuning").glob("train_ser_ssl_tiny*.yaml"))
HF_STYLE = MTL + MTL_FROZEN + RAVDESS_CONFIGS + MINI


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def ids(path: Path):
    return f"{path.parts[-4]}/{path.name}"


@pytest.mark.parametrize("path", MTL, ids=ids)
def test_multitask_configs_fine_tune_the_whole_model(path):
    conf = load(path)
    assert conf["encoder_conf"]["freeze"] == "none"
    assert conf["encoder_conf"].get("freeze_layers", 0) == 0


@pytest.mark.parametrize("paper,frozen", list(zip(MTL, MTL_FROZEN)), ids=ALPHAS)
def test_frozen_cnn_variants_differ_only_in_freeze(paper, frozen):
    a, b = load(paper), load(frozen)
    assert b["encoder_conf"]["freeze"] == "feature_encoder"
    a["encoder_conf"].pop("freeze")
    b["encoder_conf"].pop("freeze")
    assert a == b


@pytest.mark.parametrize("path", MTL + MTL_FROZEN + RAVDESS_CONFIGS, ids=ids)
def test_paper_configs_clip_gradients_at_norm_one(path):
    assert float(load(path)["grad_clip"]) == 1.0


@pytest.mark.parametrize("path", HF_STYLE, ids=ids)
def test_schedules_are_the_run_length(path):
    conf = load(path)
    assert conf["scheduler"] == "warmuplinearlr"
    expected = 0.0 if path.parent == RAVDESS else 0.1
    assert conf["scheduler_conf"] == {"warmup_ratio": expected}
    text = path.read_text(encoding="utf-8")
    for fixed in ("55,400", "55400", "1440", "1,440", "5540", "1200"):
        assert fixed not in text, f"{path.name} still states a fixed step count {fixed}"


@pytest.mark.parametrize("path", MTL + MTL_FROZEN + RAVDESS_CONFIGS, ids=ids)
def test_checkpoint_configs_follow_the_checkpoint_normalisation(path):
    enc = load(path)["encoder_conf"]
    assert "model_name_or_path" in enc
    assert enc.get("normalize_waveform") is None


@pytest.mark.parametrize("key,name", list(RAVDESS_CHECKPOINTS.items()))
def test_ravdess_configs_name_the_papers_checkpoints(key, name):
    conf = load(RAVDESS / f"train_ser_{key}.yaml")
    assert conf["encoder_conf"]["model_name_or_path"] == name
    # transformers' audio-classification example freezes the feature encoder by default
    assert conf["encoder_conf"]["freeze"] == "feature_encoder"


@pytest.mark.parametrize("path,trainable_cnn", [(MTL[-1], True), (MTL_FROZEN[-1], False)],
                         ids=["paper", "frozencnn"])
def test_built_model_trains_the_feature_encoder_as_configured(path, trainable_cnn, tmp_path):
    """The SERTask model of the config (a tiny random wav2vec2 in place of the hub
    checkpoint) trains the CNN iff the config says so; grad_clip reaches the trainer args."""
    from espnet_ser.tasks.ser import SERTask

    conf = load(path)
    enc = dict(conf["encoder_conf"])
    enc.pop("model_name_or_path")
    enc["model_config"] = dict(
        model_type="wav2vec2", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, conv_dim=[8, 8], conv_kernel=[10, 3], conv_stride=[5, 2],
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
    )
    conf["encoder_conf"] = enc
    tiny = tmp_path / "config.yaml"
    tiny.write_text(yaml.safe_dump(conf))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "<space>", "a", "<sos/eos>"]) + "\n")
    args = SERTask.get_parser().parse_args(
        ["--config", str(tiny), "--emotions", "ang", "hap", "neu", "sad", "--input_size", "1",
         "--token_list", str(tokens)]
    )
    assert args.grad_clip == 1.0
    model = SERTask.build_model(args)
    cnn = [p.requires_grad for n, p in model.named_parameters() if ".feature_extractor." in n]
    assert cnn and all(flag == trainable_cnn for flag in cnn)
