"""The joint model with a style source (GST or oracle emotion) and its decoding."""

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from espnet_ser.asr.inference import Speech2TextEmotion
from espnet_ser.asr.style import OracleEmotionStyle
from espnet_ser.bin import asr_ser_inference
from espnet_ser.tasks.asr_ser import ASRSERTask

TOKENS = ["<blank>", "<unk>", "<ang>", "<hap>", "<neu>", "<sad>", "hello", "world", "<sos/eos>"]
COMMON = [
    "--token_type", "word", "--input_size", "20", "--normalize", "none",
    "--encoder_conf", "output_size=16", "--encoder_conf", "attention_heads=2",
    "--encoder_conf", "linear_units=32", "--encoder_conf", "num_blocks=2",
    "--encoder_conf", "cnn_module_kernel=3", "--encoder_conf", "macaron_style=true",
    "--decoder", "transformer", "--decoder_conf", "attention_heads=2",
    "--decoder_conf", "linear_units=32", "--decoder_conf", "num_blocks=1",
    "--model_conf", "ctc_weight=0.3",
]
GST = ["--style_encoder", "gst", "--style_encoder_conf", "n_mels=20",
       "--style_encoder_conf", "conv_channels=[4,4,8]", "--style_encoder_conf", "ref_dim=8",
       "--style_encoder_conf", "n_tokens=3", "--style_encoder_conf", "n_heads=2",
       "--style_encoder_conf", "style_dim=8"]


def build_args(tmp_path, *extra):
    (tmp_path / "tokens.txt").write_text("".join(t + "\n" for t in TOKENS))
    return ASRSERTask.get_parser().parse_args(
        ["--token_list", str(tmp_path / "tokens.txt"), *COMMON, *extra])


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        speech=torch.randn(2, 60, 20, generator=g), speech_lengths=torch.tensor([60, 45]),
        text=torch.tensor([[6, 7, 2], [7, 5, -1]]), text_lengths=torch.tensor([3, 2]),
        style_speech=torch.randn(2, 80, 20, generator=g), style_speech_lengths=torch.tensor([80, 70]),
        emotion=torch.tensor([[0], [3]]), emotion_lengths=torch.tensor([1, 1]),
    )


def test_oracle_style_is_the_one_hot_reference():
    style = OracleEmotionStyle(4)
    out = style(torch.tensor([[2], [0]]))
    assert torch.equal(out, torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]]))
    with pytest.raises(ValueError, match="emotion id 4"):
        style(torch.tensor([[4]]))


def test_gst_model_starts_as_the_plain_conformer_model(tmp_path):
    """Zero-initialised style FFN: the GST model computes what the baseline computes."""
    torch.manual_seed(0)
    base = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "conformer")).eval()
    gst = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "gst_conformer", *GST)).eval()
    missing, unexpected = gst.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(k.startswith(("style_encoder.", "encoder.style_ffn")) for k in missing)
    b = batch()
    with torch.no_grad():
        loss_b, stats_b, _ = base(**{k: b[k] for k in ("speech", "speech_lengths", "text", "text_lengths")})
        loss_g, stats_g, _ = gst(**b)
    assert torch.equal(loss_b, loss_g)
    assert stats_b["acc"] == stats_g["acc"]
    # once the style FFN is trained, the style changes the encoder output
    for p in gst.encoder.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        loss_g2, _, _ = gst(**b)
    assert not torch.equal(loss_g2, loss_b)


def test_missing_style_input_is_named(tmp_path):
    model = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "gst_conformer", *GST))
    b = batch()
    del b["style_speech"], b["style_speech_lengths"]
    with pytest.raises(ValueError, match="style_speech"):
        model(**b)


def test_style_encoder_needs_a_style_conditioned_encoder(tmp_path):
    with pytest.raises(ValueError, match="gst_conformer"):
        ASRSERTask.build_model(build_args(tmp_path, "--encoder", "conformer", *GST))


def test_gradients_reach_the_gst_module(tmp_path):
    model = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "gst_conformer", *GST)).train()
    loss, _, _ = model(**batch())
    loss.backward()
    # the last style layer starts at zero, so only it gets a gradient in the first step
    grads = {n: p.grad for n, p in model.named_parameters() if "style" in n}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "encoder.style_ffn" in n)


@pytest.fixture
def oracle_exp(tmp_path):
    d = tmp_path / "exp"
    d.mkdir()
    args = build_args(d, "--encoder", "gst_conformer", "--style_encoder", "oracle",
                      "--style_encoder_conf", "n_emotions=4")
    torch.manual_seed(1)
    model = ASRSERTask.build_model(args)
    for n, p in model.encoder.named_parameters():  # a "trained" style FFN
        if "style" in n:
            torch.nn.init.normal_(p, std=1.0)
    with (d / "config.yaml").open("w") as f:
        yaml.safe_dump(vars(args), f)
    torch.save(model.state_dict(), d / "valid.acc.ave.pth")
    return d


def test_decoding_with_oracle_emotion(oracle_exp, tmp_path):
    s2t = Speech2TextEmotion.from_exp_dir(oracle_exp, beam_size=2, maxlenratio=0.5)
    assert s2t.style_input_name == "emotion"
    feats = np.random.default_rng(0).standard_normal((50, 20)).astype(np.float32)
    with pytest.raises(ValueError, match="reference emotion"):
        s2t(feats)
    encs = []
    for e in range(4):
        enc, _ = s2t.model.encode(torch.from_numpy(feats)[None], torch.tensor([50]),
                                  style=s2t.style(np.array([e])))
        encs.append(enc)
        assert s2t(feats, np.array([e]))  # decodes
    assert not torch.allclose(encs[0], encs[1])

    # the decoding CLI reads the ids and says the output is oracle-conditioned
    scp = tmp_path / "feats.scp"
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'feats.ark'},{scp}") as w:
        w("u1", feats)
        w("u2", feats[:40])
    ids = tmp_path / "emotion_id"
    ids.write_text("u1 0\nu2 3\n")
    out = tmp_path / "decode"
    (tmp_path / "decode.yaml").write_text("beam_size: 2\nmaxlenratio: 0.5\n")
    base = ["--exp_dir", str(oracle_exp), "--feats_scp", str(scp), "--output_dir", str(out),
            "--decode_config", str(tmp_path / "decode.yaml")]
    with pytest.raises(SystemExit):  # no ids given
        asr_ser_inference.main(base)
    asr_ser_inference.main(base + ["--emotion_ids", str(ids)])
    asr_ser_inference.main(base + ["--emotion_ids", str(ids), "--merge"])
    assert (out / "ORACLE_EMOTION_CONDITIONING").is_file()
    assert sorted(l.split()[0] for l in (out / "text").read_text().splitlines()) == ["u1", "u2"]
    ids.write_text("u1 0\n")
    with pytest.raises(SystemExit):  # u2 has no id
        asr_ser_inference.main(base + ["--emotion_ids", str(ids), "--output_dir", str(tmp_path / "d2")])


def test_gst_experiment_computes_its_style_features_from_the_wave(tmp_path):
    import shutil

    from espnet_ser.asr.inference import STYLE_FEATS_CONFIG
    from espnet_ser.features.fbank import FbankExtractor

    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    d = tmp_path / "exp"
    d.mkdir()
    gst80 = [a if a != "n_mels=20" else "n_mels=80" for a in GST]
    args = build_args(d, "--encoder", "gst_conformer", *gst80)
    model = ASRSERTask.build_model(args)
    with (d / "config.yaml").open("w") as f:
        yaml.safe_dump(vars(args), f)
    torch.save(model.state_dict(), d / "valid.acc.ave.pth")
    wave = (0.1 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)

    s2t = Speech2TextEmotion.from_exp_dir(d, beam_size=2, maxlenratio=0.5)
    with pytest.raises(ValueError, match=STYLE_FEATS_CONFIG):
        s2t.style_features(wave)
    shutil.copy(repo / "conf" / "fbank_gst.yaml", d / STYLE_FEATS_CONFIG)
    s2t = Speech2TextEmotion.from_exp_dir(d, beam_size=2, maxlenratio=0.5)
    style = s2t.style_features(wave, 16000)
    np.testing.assert_array_equal(style, FbankExtractor.from_yaml(repo / "conf" / "fbank_gst.yaml")(wave))
    assert style.shape == (16000 // 200 + 1, 80)  # 12.5 ms hop
    with pytest.raises(ValueError, match="8000 Hz"):
        s2t.style_features(wave, 8000)
    feats = np.random.default_rng(0).standard_normal((60, 20)).astype(np.float32)
    assert s2t(feats, style)


INTERCTC = ["--encoder_conf", "num_blocks=3", "--encoder_conf", "interctc_layer_idx=[1,2]",
            "--model_conf", "interctc_weight=0.4"]


def test_style_conditioned_encoder_with_conditioned_intermediate_ctc(tmp_path):
    model = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "gst_conformer", *GST,
                                              *INTERCTC, "--encoder_conf",
                                              "interctc_use_conditioning=true"))
    _, stats, _ = model(**batch())
    assert "loss_interctc_layer2" in stats


@pytest.mark.parametrize("extra", [
    [], INTERCTC, INTERCTC + ["--encoder_conf", "interctc_use_conditioning=true"]])
@pytest.mark.parametrize("train", [False, True])
def test_loss_and_stats_are_espnets(tmp_path, extra, train):
    """Without a style source, asr_ser computes ESPnet's ESPnetASRModel loss and stats."""
    torch.manual_seed(0)
    ours = ASRSERTask.build_model(build_args(tmp_path, "--encoder", "conformer", *extra))
    espnet = ASRSERTask.build_model(build_args(tmp_path, "--model", "espnet", "--encoder",
                                               "conformer", *extra))
    assert type(espnet).__name__ == "ESPnetASRModel"
    espnet.load_state_dict(ours.state_dict())
    b = {k: v for k, v in batch().items() if k in ("speech", "speech_lengths", "text",
                                                    "text_lengths")}
    results = []
    for model in (ours, espnet):
        model.train(train)
        torch.manual_seed(1)  # the same dropout masks
        results.append(model(**{k: v.clone() for k, v in b.items()}))
    (loss, stats, weight), (loss_e, stats_e, weight_e) = results
    assert torch.equal(loss, loss_e) and torch.equal(weight, weight_e)
    assert "acc_emo" in stats
    del stats["acc_emo"]
    assert list(stats) == list(stats_e)
    for key, value in stats_e.items():
        assert (value is None and stats[key] is None) or torch.equal(stats[key], value), key
