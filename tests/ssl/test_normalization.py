"""SSLEncoder normalises waveforms as the checkpoint's own preprocessor config says.

A tiny wav2vec 2.0 saved with ``save_pretrained`` next to a ``Wav2Vec2FeatureExtractor``
stands in for a released checkpoint; the reference is what ``transformers`` computes
with that feature extractor and model.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Model

from espnet_ser.features.ssl_states import SSLStatesExtractor
from espnet_ser.ssl.encoder import SSLEncoder

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    feat_proj_dropout=0.0, layerdrop=0.0,
)
# layer-norm feature encoder: trained with an attention mask (XLS-R, HuBERT-large style)
LAYER_NORM = dict(TINY, feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
# group norm: no attention mask (wav2vec2-base style)
GROUP_NORM = dict(TINY, feat_extract_norm="group", conv_bias=False)
LENGTHS = (3200, 2100)


def save_checkpoint(path: Path, do_normalize=True, arch=LAYER_NORM, model_cls=Wav2Vec2Model):
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
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=True, arch=GROUP_NORM)
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
    enc = SSLEncoder(model_config=dict(LAYER_NORM, model_type="wav2vec2"))
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


def test_hidden_state_dump_uses_the_same_decision(tmp_path):
    """extract_feats --extractor ssl_states (SSLStatesExtractor) normalises as training does."""
    path = save_checkpoint(tmp_path / "ckpt", do_normalize=True)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(dict(
        encoder="ssl", normalize="none",
        encoder_conf=dict(model_name_or_path=str(path), layer="last", freeze="all"),
    )))
    extractor = SSLStatesExtractor.from_train_config(config)
    assert extractor.conf["normalize_waveform"] is True
    utt = waves((2600,))
    states = extractor(utt[0].numpy())
    want = reference(path, utt, normalize=True)[0].numpy()
    assert states.shape == want.shape
    assert np.abs(states - want).max() < 1e-3


def test_config_yaml_keeps_the_resolved_decision(tmp_path):
    """SERTask.build_model records the decision taken from the checkpoint in the args that
    ESPnet writes to config.yaml, so a model decoded where the preprocessor config cannot be
    found (another machine, an uncached hub name) is normalised as in training."""
    from espnet_ser.tasks.ser import SERTask

    ckpt = save_checkpoint(tmp_path / "ckpt", do_normalize=True)
    conf = dict(encoder="ssl", encoder_conf=dict(model_name_or_path=str(ckpt)),
                pooling="mean", classifier="linear", normalize=None)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(conf))
    args = SERTask.get_parser().parse_args(
        ["--config", str(config), "--emotions", "ang", "hap", "--input_size", "1"])
    assert "normalize_waveform" not in args.encoder_conf
    SERTask.build_model(args)
    assert args.encoder_conf["normalize_waveform"] is True
    # the written config, read back without the preprocessor config, still normalises
    (ckpt / "preprocessor_config.json").unlink()
    again = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "--input_size", "1", "--encoder", "ssl",
         "--encoder_conf", f"model_name_or_path={ckpt}", "--encoder_conf",
         f"normalize_waveform={args.encoder_conf['normalize_waveform']}",
         "--pooling", "mean", "--classifier", "linear"])
    assert SERTask.build_model(again).encoder.normalize_waveform is True
