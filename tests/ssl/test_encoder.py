"""Tests for espnet_ser.ssl.encoder; waveform normalisation follows the checkpoint's
preprocessor config (a tiny wav2vec 2.0 saved with ``save_pretrained`` next to a
``Wav2Vec2FeatureExtractor``; the reference is what ``transformers`` computes with them)."""

import logging
from pathlib import Path

import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Model

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet_ser.ssl import SSLEncoder, plot_layer_weights, published_size_configs

TINY = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16, 16),
    conv_kernel=(10, 3),
    conv_stride=(5, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)
LAYER_NORM = dict(feat_extract_norm="layer", conv_bias=True)

CONFIGS = {
    "wav2vec2_group": dict(
        TINY, model_type="wav2vec2", feat_extract_norm="group", conv_bias=False
    ),
    "wav2vec2_layer": dict(TINY, **LAYER_NORM, model_type="wav2vec2"),
    "wav2vec2_stable": dict(
        TINY, **LAYER_NORM, model_type="wav2vec2", do_stable_layer_norm=True
    ),
    "hubert_stable": dict(
        TINY, **LAYER_NORM, model_type="hubert", do_stable_layer_norm=True
    ),
    "wavlm_layer": dict(TINY, **LAYER_NORM, model_type="wavlm"),
}
MASKED = [k for k in CONFIGS if k != "wav2vec2_group"]


def n_frames(n):
    return ((n - 10) // 5 + 1 - 3) // 2 + 1


def make(name="wav2vec2_stable", **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("freeze", "none")
    return SSLEncoder(model_config=dict(CONFIGS[name]), **kwargs).eval()


def batch(lengths=(800, 523, 300), seed=1):
    g = torch.Generator().manual_seed(seed)
    xs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        xs[i, :n] = torch.randn(n, generator=g)
    return xs, torch.tensor(lengths)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_and_olens(name):
    enc = make(name)
    assert isinstance(enc, AbsEncoder)
    assert enc.output_size() == 32
    xs, ilens = batch()
    hs, olens, states = enc(xs, ilens)
    assert states is None
    assert hs.shape == (3, n_frames(800), 32)
    assert olens.tolist() == [n_frames(n) for n in ilens.tolist()]
    for i, n in enumerate(olens.tolist()):
        assert torch.all(hs[i, n:] == 0)


def test_input_size_positional_is_ignored():
    enc = SSLEncoder(1, model_config=dict(CONFIGS["wav2vec2_stable"]))
    assert enc.output_size() == 32


@pytest.mark.parametrize("name", MASKED)
@pytest.mark.parametrize("layer", ["last", 0, 1, "weighted"])
def test_padded_batch_equals_single(name, layer):
    enc = make(name, layer=layer)
    assert enc.use_attention_mask
    xs, ilens = batch()
    hs, olens, _ = enc(xs, ilens)
    for i, n in enumerate(ilens.tolist()):
        single, olen1, _ = enc(xs[i : i + 1, :n], ilens[i : i + 1])
        assert olen1.item() == olens[i].item()
        torch.testing.assert_close(
            hs[i, : olens[i]], single[0], atol=1e-5, rtol=1e-4
        )


def test_group_norm_uses_no_attention_mask():
    # HF: group-norm feature extractors get zero padding and no mask, so
    # padded outputs differ slightly from single-utterance outputs.
    enc = make("wav2vec2_group")
    assert not enc.use_attention_mask
    xs, ilens = batch()
    hs, olens, _ = enc(xs, ilens)
    single, _, _ = enc(xs[:1, :800], ilens[:1])
    # The longest utterance has no padding, so it is unaffected.
    torch.testing.assert_close(hs[0], single[0], atol=1e-5, rtol=1e-4)
    assert torch.isfinite(hs).all()


@pytest.mark.parametrize("name", ["wav2vec2_group", "wav2vec2_stable", "wavlm_layer"])
def test_layers_match_hf(name):
    xs, ilens = batch((640,))
    enc = make(name, layer="last")
    with torch.no_grad():
        ref = enc.model(xs, output_hidden_states=True)
        hs, _, _ = enc(xs, ilens)
    torch.testing.assert_close(hs, ref.last_hidden_state)
    assert len(ref.hidden_states) == 3
    for k in range(3):
        enc_k = make(name, layer=k)
        with torch.no_grad():
            hs_k, _, _ = enc_k(xs, ilens)
        torch.testing.assert_close(hs_k, ref.hidden_states[k])
    enc_w = make(name, layer="weighted")
    with torch.no_grad():
        hs_w, _, _ = enc_w(xs, ilens)
    torch.testing.assert_close(hs_w, torch.stack(ref.hidden_states).mean(0))
    torch.testing.assert_close(enc_w.get_layer_weights(), torch.full((3,), 1 / 3))


def test_layer_out_of_range():
    with pytest.raises(ValueError, match="2 transformer layers"):
        make(layer=3)
    with pytest.raises(ValueError, match="2 transformer layers"):
        make(layer=-1)
    with pytest.raises(ValueError, match="layer"):
        make(layer="middle")


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        SSLEncoder()
    with pytest.raises(ValueError, match="freeze"):
        make(freeze="some")
    with pytest.raises(ValueError, match="model_type"):
        SSLEncoder(model_config={"model_type": "bert"})
    with pytest.raises(ValueError, match="freeze_layers"):
        make(freeze_layers=3)


def trainable(enc):
    return {n for n, p in enc.named_parameters() if p.requires_grad}


def test_freeze_options():
    enc = make(freeze="none")
    names = trainable(enc)
    assert any(n.startswith("model.feature_extractor.") for n in names)
    assert "model.masked_spec_embed" not in names  # unused without masking

    enc = make(freeze="feature_encoder")
    names = trainable(enc)
    assert not any(n.startswith("model.feature_extractor.") for n in names)
    assert any(n.startswith("model.feature_projection.") for n in names)
    assert any(n.startswith("model.encoder.layers.0.") for n in names)

    enc = make(freeze="feature_encoder", freeze_layers=1)
    names = trainable(enc)
    assert not any(n.startswith("model.encoder.layers.0.") for n in names)
    assert any(n.startswith("model.encoder.layers.1.") for n in names)

    enc = make(freeze="all", layer="weighted")
    assert trainable(enc) == {"layer_weights"}


def test_frozen_parts_stay_in_eval_mode():
    enc = make(freeze="feature_encoder", freeze_layers=1).train()
    assert enc.training
    assert not enc.model.feature_extractor.training
    assert not enc.model.encoder.layers[0].training
    assert enc.model.encoder.layers[1].training
    enc = make(freeze="all").train()
    assert not any(m.training for m in enc.model.modules())


@pytest.mark.parametrize("freeze", ["none", "all"])
def test_gradients_reach_layer_weights(freeze):
    enc = make(layer="weighted", freeze=freeze).train()
    xs, ilens = batch()
    hs, olens, _ = enc(xs, ilens)
    (hs ** 2).sum().backward()
    assert enc.layer_weights.grad is not None
    assert torch.any(enc.layer_weights.grad != 0)
    grads = [p.grad for n, p in enc.named_parameters() if n.startswith("model.")]
    if freeze == "all":
        assert all(g is None for g in grads)
    else:
        assert any(g is not None for g in grads)


def test_feature_encoder_frozen_gets_no_grad():
    enc = make(freeze="feature_encoder").train()
    xs, ilens = batch()
    hs, _, _ = enc(xs, ilens)
    hs.sum().backward()
    for p in enc.model.feature_extractor.parameters():
        assert p.grad is None
    assert enc.model.feature_projection.projection.weight.grad is not None


def test_spec_augment_off_by_default():
    no_dropout = dict(
        CONFIGS["wav2vec2_stable"],
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.5,
    )
    xs, ilens = batch()
    enc = SSLEncoder(model_config=dict(no_dropout)).train()
    assert enc.model.config.apply_spec_augment is False
    assert enc.model.config.mask_time_prob == 0.0
    a, _, _ = enc(xs, ilens)
    b, _, _ = enc(xs, ilens)
    torch.testing.assert_close(a, b)

    on = SSLEncoder(model_config=dict(no_dropout), apply_spec_augment=True).train()
    assert on.model.config.mask_time_prob == 0.5
    assert "model.masked_spec_embed" in trainable(on)
    a, _, _ = on(xs, ilens)
    b, _, _ = on(xs, ilens)
    assert not torch.allclose(a, b)


def test_normalize_waveform():
    enc = make(normalize_waveform=True)
    xs, ilens = batch()
    hs, olens, _ = enc(xs * 3.0 + 0.5 * (xs != 0), ilens)
    for i, n in enumerate(ilens.tolist()):
        single, _, _ = enc(xs[i : i + 1, :n], ilens[i : i + 1])
        torch.testing.assert_close(
            hs[i, : olens[i]], single[0], atol=1e-4, rtol=1e-3
        )


def test_load_from_saved_directory(tmp_path):
    enc = make("wav2vec2_stable", layer=1)
    enc.model.save_pretrained(tmp_path / "model")
    loaded = SSLEncoder(
        model_name_or_path=str(tmp_path / "model"), layer=1, freeze="none"
    ).eval()
    xs, ilens = batch()
    with torch.no_grad():
        a, la, _ = enc(xs, ilens)
        b, lb, _ = loaded(xs, ilens)
    torch.testing.assert_close(a, b)
    assert la.tolist() == lb.tolist()


def test_directory_without_config_fails(tmp_path):
    empty = tmp_path / "no_config"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no_config"):
        SSLEncoder(model_name_or_path=str(empty))
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        SSLEncoder(model_name_or_path=str(tmp_path / "missing_dir"))


def test_describe_and_plot(tmp_path):
    enc = make(layer="weighted")
    text = enc.describe()
    assert "layer  2" in text and "0.3333" in text
    assert make().get_layer_weights() is None
    path = tmp_path / "weights.png"
    plot_layer_weights(enc.get_layer_weights(), str(path))
    assert path.stat().st_size > 0


PUBLISHED = {
    "wav2vec2-base": (95e6 * 0.97, 95e6 * 1.03),
    "hubert-base": (95e6 * 0.97, 95e6 * 1.03),  # 94.4M (HuBERT paper: 95M)
    "hubert-large": (317e6 * 0.97, 317e6 * 1.03),
    "xls-r-300m": (290e6, 330e6),
    "xls-r-1b": (0.9e9, 1.05e9),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_size_configs(name):
    from transformers import AutoConfig, AutoModel

    fields = dict(published_size_configs()[name])
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    count = sum(p.numel() for p in model.parameters())
    low, high = PUBLISHED[name]
    assert low <= count <= high, count
    assert config.num_hidden_layers in (12, 24, 48)


CKPT_TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    feat_proj_dropout=0.0, layerdrop=0.0,
)
# layer-norm feature encoder: trained with an attention mask (XLS-R, HuBERT-large style)
CKPT_LAYER_NORM = dict(CKPT_TINY, feat_extract_norm="layer", conv_bias=True,
                       do_stable_layer_norm=True)
# group norm: no attention mask (wav2vec2-base style)
CKPT_GROUP_NORM = dict(CKPT_TINY, feat_extract_norm="group", conv_bias=False)
LENGTHS = (3200, 2100)


def save_checkpoint(path: Path, do_normalize=True, arch=CKPT_LAYER_NORM,
                    model_cls=Wav2Vec2Model):
    """A checkpoint directory: config.json + weights (+ preprocessor_config.json)."""
    from transformers import Wav2Vec2Config

    torch.manual_seed(0)
    model_cls(Wav2Vec2Config(**arch)).eval().save_pretrained(path)
    if do_normalize is not None:
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0,
            do_normalize=do_normalize,
            return_attention_mask=arch["feat_extract_norm"] == "layer",
        ).save_pretrained(path)
    return path


def waves(lengths=LENGTHS):
    """Unnormalised utterances: offset and scale far from zero mean / unit variance."""
    g = torch.Generator().manual_seed(3)
    return [0.05 * torch.randn(n, generator=g) + 0.2 for n in lengths]


def padded(utts):
    xs = torch.zeros(len(utts), max(len(u) for u in utts))
    for i, u in enumerate(utts):
        xs[i, : len(u)] = u
    return xs, torch.tensor([len(u) for u in utts])


def encode(enc, utts):
    xs, ilens = padded(utts)
    with torch.no_grad():
        hs, olens, _ = enc(xs, ilens)
    return [hs[i, : olens[i]] for i in range(len(utts))]


def reference(path: Path, utts, normalize: bool):
    """last_hidden_state from transformers' feature extractor (do_normalize set) + model."""
    fe = Wav2Vec2FeatureExtractor.from_pretrained(path)
    fe.do_normalize = normalize
    model = Wav2Vec2Model.from_pretrained(path).eval()
    mask = model.config.feat_extract_norm == "layer"
    inputs = fe([u.numpy() for u in utts], sampling_rate=16000, padding=True,
                return_attention_mask=mask, return_tensors="pt")
    with torch.no_grad():
        out = model(inputs.input_values, attention_mask=inputs.get("attention_mask"))
    olens = model._get_feat_extract_output_lengths(torch.tensor([len(u) for u in utts]))
    return [out.last_hidden_state[i, : olens[i]] for i in range(len(utts))]


def max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def test_follows_do_normalize_true_padded_batch(tmp_path, caplog):
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=True)
    utts = waves()
    with caplog.at_level(logging.INFO):
        enc = SSLEncoder(model_name_or_path=str(path), freeze="none").eval()
    assert enc.normalize_waveform is True
    assert enc.use_attention_mask
    got = encode(enc, utts)
    want = reference(path, utts, normalize=True)
    assert max_diff(got, want) < 1e-3
    # the unnormalised input gives something else, so the comparison can fail
    assert max_diff(got, reference(path, utts, normalize=False)) > 1e-2
    lines = [r for r in caplog.records if "normalize_waveform=True" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert str(path / "preprocessor_config.json") in lines[0].getMessage()


def test_follows_do_normalize_true_group_norm(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=True, arch=CKPT_GROUP_NORM)
    utts = waves((2600,))
    enc = SSLEncoder(model_name_or_path=str(path), freeze="none").eval()
    assert enc.normalize_waveform is True
    assert max_diff(encode(enc, utts), reference(path, utts, normalize=True)) < 1e-3


def test_do_normalize_false_is_not_normalised(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=False)
    utts = waves()
    enc = SSLEncoder(model_name_or_path=str(path), freeze="none").eval()
    assert enc.normalize_waveform is False
    got = encode(enc, utts)
    assert max_diff(got, reference(path, utts, normalize=False)) < 1e-3
    assert max_diff(got, reference(path, utts, normalize=True)) > 1e-2


@pytest.mark.parametrize("do_normalize", [True, False])
def test_explicit_setting_overrides_the_checkpoint(tmp_path, do_normalize):
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=do_normalize)
    utts = waves()
    enc = SSLEncoder(
        model_name_or_path=str(path), freeze="none", normalize_waveform=not do_normalize
    ).eval()
    assert enc.normalize_waveform is (not do_normalize)
    assert "set by normalize_waveform" in enc.normalize_source
    got = encode(enc, utts)
    assert max_diff(got, reference(path, utts, normalize=not do_normalize)) < 1e-3


def test_directory_without_preprocessor_config(tmp_path, caplog):
    path = save_checkpoint(tmp_path / "bare", do_normalize=None)
    assert not (path / "preprocessor_config.json").exists()
    with caplog.at_level(logging.INFO):
        enc = SSLEncoder(model_name_or_path=str(path))
    assert enc.normalize_waveform is False
    assert any("normalize_waveform=False" in r.getMessage() and "preprocessor_config.json"
               in r.getMessage() for r in caplog.records)


def test_model_config_is_not_normalised():
    enc = SSLEncoder(model_config=dict(CKPT_LAYER_NORM, model_type="wav2vec2"))
    assert enc.normalize_waveform is False
    assert "model_config" in enc.normalize_source


@pytest.mark.parametrize("text,match", [
    ("{\"do_normalize\": tru", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ("{\"do_normalize\": \"yes\"}", "do_normalize must be true or false"),
])
def test_bad_preprocessor_config_names_the_file(tmp_path, text, match):
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=True)
    (path / "preprocessor_config.json").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as err:
        SSLEncoder(model_name_or_path=str(path))
    assert str(path / "preprocessor_config.json") in str(err.value)
    # an explicit setting does not need the file
    assert SSLEncoder(model_name_or_path=str(path), normalize_waveform=True).normalize_waveform


def test_hub_name_resolved_from_the_hub_cache(tmp_path, monkeypatch):
    """A hub name found in the local hub cache (offline) follows its preprocessor config."""
    import transformers.utils.hub as hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--test-org--tiny-w2v2"
    save_checkpoint(repo / "snapshots" / commit, do_normalize=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub, "TRANSFORMERS_CACHE", str(tmp_path / "cache"))
    enc = SSLEncoder(model_name_or_path="test-org/tiny-w2v2", local_files_only=True).eval()
    assert enc.normalize_waveform is True
    assert enc.normalize_source.endswith("preprocessor_config.json")
    utts = waves()
    want = reference(repo / "snapshots" / commit, utts, normalize=True)
    assert max_diff(encode(enc, utts), want) < 1e-3


def test_ctc_fine_tuned_checkpoint_loads_its_base_model(tmp_path):
    """A *ForCTC checkpoint (wav2vec2-base-960h, hubert-large-ls960-ft) gives its base model."""
    path = save_checkpoint(tmp_path / "ctc", do_normalize=True, model_cls=Wav2Vec2ForCTC)
    ctc = Wav2Vec2ForCTC.from_pretrained(path).eval()
    enc = SSLEncoder(model_name_or_path=str(path), freeze="none").eval()
    assert isinstance(enc.model, Wav2Vec2Model)
    for name, value in ctc.wav2vec2.state_dict().items():
        torch.testing.assert_close(enc.model.state_dict()[name], value)
    utts = waves()
    assert max_diff(encode(enc, utts), reference(path, utts, normalize=True)) < 1e-3
