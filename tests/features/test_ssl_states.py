"""SSL dumps: waveforms (extract_feats --extractor wave) and frozen-encoder hidden states
(--extractor ssl_states) read by SSLEncoder instead of running the model."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.dataset import ESPnetDataset
from espnet2.fileio.read_text import load_num_sequence_text
from espnet_ser.bin.extract_feats import main as extract_main
from espnet_ser.data.datadir import read_kaldi_map, write_data_dir
from espnet_ser.features.audio import resample
from espnet_ser.features.dump import dump_config, extract_part, iter_feats
from espnet_ser.features.extractor import FeatureError
from espnet_ser.features.ssl_states import SSLStatesExtractor, WaveExtractor, load_train_config
from espnet_ser.ssl.encoder import SSLEncoder, model_fingerprint
from espnet_ser.tasks.ser import SERTask
from tests.ssl.test_encoder import reference, save_checkpoint, waves

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=[16, 16], conv_kernel=[10, 3], conv_stride=[5, 2],
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
)
MODELS = {
    # layer-norm feature extractor: attention mask, padding does not matter
    "layer": dict(TINY, model_type="wav2vec2", feat_extract_norm="layer", conv_bias=True),
    "stable": dict(TINY, model_type="wav2vec2", feat_extract_norm="layer", conv_bias=True,
                   do_stable_layer_norm=True),
    # group norm: no mask, padding changes the outputs, so single utterances only
    "group": dict(TINY, model_type="wav2vec2", feat_extract_norm="group", conv_bias=False),
}
EMOTIONS = ["ang", "hap", "neu", "sad"]


def n_frames(n):
    return ((n - 10) // 5 + 1 - 3) // 2 + 1


def make_corpus(root: Path, lengths, fs=16000) -> Path:
    fields = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo")}
    for i, n in enumerate(lengths):
        utt = f"spk{i % 2}_utt{i:02d}"
        rng = np.random.default_rng(i)
        t = np.arange(n) / fs
        sig = 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.1 * rng.standard_normal(n)
        path = root / "wav" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), sig.astype(np.float32), fs, subtype="FLOAT")
        fields["wav.scp"][utt] = str(path)
        fields["text"][utt] = f"hello {i}"
        fields["utt2spk"][utt] = f"spk{i % 2}"
        fields["utt2emo"][utt] = EMOTIONS[i % 4]
    write_data_dir(root / "data", fields)
    return root / "data"


def write_config(path: Path, model="layer", layer="weighted", **enc) -> Path:
    enc.setdefault("freeze", "all")
    conf = dict(
        encoder="ssl", input_size=1, normalize="none", pooling="mean", classifier="linear",
        emotions=EMOTIONS, seed=0,
        encoder_conf=dict(model_config=dict(MODELS[model]), layer=layer, **enc),
    )
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    return path


def build_model(config: Path):
    """The SERTask model of a training config, built as the trainer builds it."""
    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    parser = SERTask.get_parser()
    parser.set_defaults(**conf)
    args = parser.parse_args([])
    torch.manual_seed(123)  # the random SSL weights do not depend on the global RNG
    return SERTask.build_model(args).eval()


def load_batch(feats_scp: Path, utts):
    """ESPnet's kaldi_ark loader and CommonCollateFn, as in training."""
    dataset = ESPnetDataset([(str(feats_scp), "speech", "kaldi_ark")], float_dtype="float32")
    _, batch = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)(
        [(u, dataset[u][1]) for u in utts]
    )
    return batch["speech"], batch["speech_lengths"]


def dump(kind, data: Path, out: Path, *extra):
    extract_main(["--extractor", kind, "--data_dir", str(data), "--out_dir", str(out),
                  "--nj", "2", "--log_level", "WARNING", *extra])
    return out / "feats.scp"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    data = make_corpus(root, [3200, 2100, 2650])
    waves = dump("wave", data, root / "raw")
    return root, data, waves


@pytest.mark.parametrize("model,layer", [
    ("layer", "last"), ("layer", 1), ("layer", 0), ("layer", "weighted"),
    ("stable", "last"), ("stable", "weighted"),
])
def test_dumped_states_give_the_waveform_output(corpus, tmp_path, model, layer):
    root, data, wave_scp = corpus
    config = write_config(tmp_path / "train.yaml", model, layer)
    states_scp = dump("ssl_states", data, tmp_path / "states", "--train_config", str(config))

    net = build_model(config)
    enc = net.encoder
    assert isinstance(enc, SSLEncoder) and enc.use_attention_mask
    if layer == "weighted":  # non-uniform weights, so the index order matters
        with torch.no_grad():
            enc.layer_weights.copy_(torch.tensor([0.7, -1.0, 2.0]))

    conf = dump_config(tmp_path / "states")
    assert conf["layers"] == enc.dumped_layers()
    assert conf["dim"] == 32 * len(enc.dumped_layers())
    assert conf["model_fingerprint"] == model_fingerprint(enc.model)  # same weights

    utts = ["spk0_utt00", "spk1_utt01"]  # 3200 and 2100 samples: padded batch
    wave, wave_lens = load_batch(wave_scp, utts)
    states, state_lens = load_batch(states_scp, utts)
    assert wave.shape == (2, 3200) and wave_lens.tolist() == [3200, 2100]
    assert states.shape == (2, n_frames(3200), conf["dim"])
    assert state_lens.tolist() == [n_frames(3200), n_frames(2100)]

    with torch.no_grad():
        hs_w, olens_w = net.encode(wave, wave_lens)
        hs_d, olens_d = net.encode(states, state_lens)
        post_w, _ = net.predict(wave, wave_lens)
        post_d, _ = net.predict(states, state_lens)
    assert olens_w.tolist() == olens_d.tolist() == state_lens.tolist()
    torch.testing.assert_close(hs_d, hs_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(post_d, post_w, atol=1e-5, rtol=1e-5)
    # not trivially equal: the two utterances and the layers differ
    assert not torch.allclose(hs_w[0, :10], hs_w[1, :10])


@pytest.mark.parametrize("layer", ["last", 1, "weighted"])
def test_group_norm_single_utterance(corpus, tmp_path, layer):
    root, data, wave_scp = corpus
    config = write_config(tmp_path / "train.yaml", "group", layer)
    states_scp = dump("ssl_states", data, tmp_path / "states", "--train_config", str(config))
    net = build_model(config)
    assert not net.encoder.use_attention_mask
    if layer == "weighted":
        with torch.no_grad():
            net.encoder.layer_weights.copy_(torch.tensor([-0.5, 1.5, 0.2]))
    for utt in ("spk0_utt00", "spk0_utt02"):
        wave, wave_lens = load_batch(wave_scp, [utt])
        states, state_lens = load_batch(states_scp, [utt])
        with torch.no_grad():
            hs_w, olens_w = net.encode(wave, wave_lens)
            hs_d, olens_d = net.encode(states, state_lens)
        assert olens_w.tolist() == olens_d.tolist()
        torch.testing.assert_close(hs_d, hs_w, atol=1e-5, rtol=1e-5)


def test_checkpoint_trained_on_dumps_decodes_waveforms(corpus, tmp_path):
    root, data, wave_scp = corpus
    config = write_config(tmp_path / "train.yaml", "layer", "weighted")
    states_scp = dump("ssl_states", data, tmp_path / "states", "--train_config", str(config))
    utts = ["spk0_utt00", "spk0_utt02", "spk1_utt01"]
    states, state_lens = load_batch(states_scp, utts)
    net = build_model(config).train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1.0)
    for _ in range(3):
        loss, _, _ = net(states, state_lens, torch.tensor([[0], [2], [1]]), torch.ones(3, dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # only the layer weights, pooling and classifier learn; the SSL model is frozen
    assert not torch.allclose(net.encoder.get_layer_weights(), torch.full((3,), 1 / 3))
    torch.save(net.state_dict(), tmp_path / "model.pth")

    fresh = build_model(config)
    fresh.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True), strict=True)
    wave, wave_lens = load_batch(wave_scp, utts)
    with torch.no_grad():
        post_d, _ = fresh.predict(states, state_lens)
        post_w, _ = fresh.predict(wave, wave_lens)
    torch.testing.assert_close(post_w, post_d, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model", ["layer", "stable", "group"])
def test_layer_matrix_and_index_order(tmp_path, model):
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(1800).astype(np.float32))
    expected_layers = {"last": [2], 0: [0], 1: [1], 2: [2], "weighted": [0, 1, 2]}
    for layer, layers in expected_layers.items():
        ext = SSLStatesExtractor(
            dict(model_config=dict(MODELS[model]), layer=layer, freeze="all")
        )
        assert ext.encoder.dumped_layers() == layers == ext.conf["layers"]
        assert ext.conf["dim"] == ext.dim == 32 * len(layers)
        assert ext.conf["hidden_size"] == 32 and ext.conf["num_hidden_layers"] == 2
        out = ext(x.numpy())
        assert out.dtype == np.float32 and out.shape == (n_frames(1800), 32 * len(layers))
        with torch.no_grad():
            ref = ext.encoder.model(x[None], output_hidden_states=True)
        for j, i in enumerate(layers):
            np.testing.assert_allclose(out[:, 32 * j : 32 * (j + 1)],
                                       ref.hidden_states[i][0].numpy(), atol=1e-5, rtol=0)
        if layer == "last":
            np.testing.assert_allclose(out, ref.last_hidden_state[0].numpy(), atol=1e-5, rtol=0)
    # the shortest waveform giving one frame
    assert ext.min_samples == 10 + 2 * 5 == 20
    assert ext(np.zeros(20, dtype=np.float32)).shape[0] == 1


@pytest.mark.parametrize("change,match", [
    (dict(freeze="feature_encoder"), "freeze is 'feature_encoder'"),
    (dict(freeze=None), "freeze is 'feature_encoder'"),  # the SSLEncoder default
    (dict(freeze="none"), "freeze is 'none'"),
    (dict(apply_spec_augment=True), "apply_spec_augment"),
])
def test_non_frozen_config_is_refused(corpus, tmp_path, capsys, change, match):
    root, data, _ = corpus
    enc = {k: v for k, v in change.items() if v is not None}
    config = write_config(tmp_path / "train_x.yaml", "layer", "last", **enc)
    if change.get("freeze", "") is None:
        conf = yaml.safe_load(config.read_text())
        del conf["encoder_conf"]["freeze"]
        config.write_text(yaml.safe_dump(conf))
    with pytest.raises(FeatureError, match=match) as e:
        load_train_config(config)
    assert "train_x.yaml" in str(e.value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        dump("ssl_states", data, tmp_path / "states", "--train_config", str(config))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "train_x.yaml" in err and match in err
    assert not (tmp_path / "states" / "feats.scp").exists()


@pytest.mark.parametrize("field,value,match", [
    ("encoder", "conformer", "encoder: ssl"),
    ("normalize", "utterance_mvn", "normalize: none"),
    ("normalize", "__missing__", "normalize: none"),
    ("specaug", "specaug", "specaug"),
])
def test_other_unusable_configs_are_refused(tmp_path, field, value, match):
    config = write_config(tmp_path / "train_y.yaml")
    conf = yaml.safe_load(config.read_text())
    if value == "__missing__":
        del conf[field]
    else:
        conf[field] = value
    config.write_text(yaml.safe_dump(conf))
    with pytest.raises(FeatureError, match=match):
        load_train_config(config)


def test_dump_of_other_model_or_layers_is_refused(corpus, tmp_path):
    root, data, _ = corpus
    out = tmp_path / "states"
    dump("ssl_states", data, out, "--train_config", str(write_config(tmp_path / "a.yaml", layer="last")))
    # "last" and layer 2 need the same hidden state of the same model: the dump is kept
    dump("ssl_states", data, out, "--train_config", str(write_config(tmp_path / "b.yaml", layer=2)))
    for other in (
        dict(layer="weighted"),                  # another layer set
        dict(layer=1),
        dict(model="stable", layer="last"),      # another model
        dict(layer="last", normalize_waveform=True),
    ):
        ext = SSLStatesExtractor.from_train_config(write_config(tmp_path / "c.yaml", **other))
        with pytest.raises(FeatureError, match="another config"):
            extract_part(data, out, ext, 2, 1)
    # other weights of the same architecture (another init_seed) are refused too
    conf = yaml.safe_load((tmp_path / "a.yaml").read_text())
    conf["encoder_conf"]["init_seed"] = 1
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(conf))
    ext = SSLStatesExtractor.from_train_config(tmp_path / "d.yaml")
    with pytest.raises(FeatureError, match="another config"):
        extract_part(data, out, ext, 2, 2)


def test_mismatched_dump_is_a_clear_error():
    torch.manual_seed(0)
    enc = SSLEncoder(model_config=dict(MODELS["layer"]), layer="last", freeze="all")
    states = torch.randn(2, 7, 96)  # a 'weighted' dump: 3 layers x 32
    with pytest.raises(ValueError, match=r"do not match this encoder.*dim 96, expected 32") as e:
        enc(states, torch.tensor([7, 5]))
    assert "wav2vec2" in str(e.value) and "hidden_size: 32" in str(e.value)

    torch.manual_seed(0)
    weighted = SSLEncoder(model_config=dict(MODELS["layer"]), layer="weighted", freeze="all")
    with pytest.raises(ValueError, match="dim 32, expected 96"):
        weighted(torch.randn(2, 7, 32), torch.tensor([7, 5]))
    hs, olens, _ = weighted(torch.randn(2, 7, 96), torch.tensor([7, 5]))
    assert hs.shape == (2, 7, 32) and olens.tolist() == [7, 5] and torch.all(hs[1, 5:] == 0)

    for kwargs, match in (
        (dict(freeze="feature_encoder"), "freeze='feature_encoder'.*freeze: all"),
        (dict(freeze="none"), "freeze='none'"),
        (dict(freeze="all", apply_spec_augment=True), "apply_spec_augment"),
    ):
        enc = SSLEncoder(model_config=dict(MODELS["layer"]), layer="last", **kwargs)
        with pytest.raises(ValueError, match=match):
            enc(torch.randn(2, 7, 32), torch.tensor([7, 5]))
    with pytest.raises(ValueError, match=r"\(B, T\) waveforms or \(B, T, F\)"):
        enc(torch.randn(2, 7, 32, 1), torch.tensor([7, 5]))


def test_compressed_dump_is_a_quarter_the_size_and_close(corpus, tmp_path):
    """--compress true: Kaldi kSpeechFeature matrices, read back through ESPnet's loader."""
    root, data, wave_scp = corpus
    config = write_config(tmp_path / "train.yaml", "layer", "weighted")
    plain_scp = dump("ssl_states", data, tmp_path / "plain", "--train_config", str(config))
    packed_scp = dump("ssl_states", data, tmp_path / "packed", "--train_config", str(config),
                      "--compress", "true")
    plain_conf = dump_config(tmp_path / "plain")
    packed_conf = dump_config(tmp_path / "packed")
    assert "compress" not in plain_conf and packed_conf.pop("compress") == "kaldi_speech_feature"
    assert packed_conf == plain_conf
    assert (tmp_path / "plain" / "feats_shape").read_text() == \
        (tmp_path / "packed" / "feats_shape").read_text()

    def ark_bytes(d):
        return sum(p.stat().st_size for p in d.rglob("*.ark"))
    ratio = ark_bytes(tmp_path / "plain") / ark_bytes(tmp_path / "packed")
    assert 3.0 < ratio < 4.1, ratio

    utts = ["spk0_utt00", "spk1_utt01", "spk0_utt02"]
    plain, plain_lens = load_batch(plain_scp, utts)
    packed, packed_lens = load_batch(packed_scp, utts)
    assert packed.dtype == torch.float32 and packed.shape == plain.shape
    assert packed_lens.tolist() == plain_lens.tolist()
    assert not torch.equal(packed, plain)  # lossy
    for i, n in enumerate(plain_lens.tolist()):
        a, b = plain[i, :n], packed[i, :n]
        col_range = a.max(dim=0).values - a.min(dim=0).values
        # 8-bit codes between per-column percentiles: errors within 1 % of the column's range
        assert bool(((a - b).abs() <= 0.01 * col_range + 1e-6).all())

    net = build_model(config)
    with torch.no_grad():
        post_plain, _ = net.predict(plain, plain_lens)
        post_packed, _ = net.predict(packed, packed_lens)
    torch.testing.assert_close(post_packed, post_plain, atol=2e-2, rtol=0)


def test_compression_is_part_of_the_dump_config(corpus, tmp_path, capsys):
    root, data, wave_scp = corpus
    config = write_config(tmp_path / "train.yaml", "layer", "last")
    dump("ssl_states", data, tmp_path / "states", "--train_config", str(config))
    with pytest.raises(SystemExit) as e:  # adding compressed parts to a float32 dump
        dump("ssl_states", data, tmp_path / "states", "--train_config", str(config),
             "--compress", "true")
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "another config" in err and str(tmp_path / "states") in err
    with pytest.raises(SystemExit) as e:
        dump("wave", data, tmp_path / "raw", "--compress", "true")
    assert e.value.code == 2


# ---------------------------------------------------------------- waveform dumps


def run_wave(data, out, *extra):
    extract_main(["--extractor", "wave", "--data_dir", str(data), "--out_dir", str(out),
          "--log_level", "WARNING", *map(str, extra)])


def test_wave_dump_16k_nj2_merge_and_espnet_loader(make_data, tmp_path, wav_writer):
    lengths = [16000, 9000, 12345]
    data = make_data(lengths)
    out = tmp_path / "raw"
    for job in (1, 2):
        run_wave(data, out, "--nj", 2, "--job", job)
    assert not (out / "feats.scp").exists()
    run_wave(data, out, "--nj", 2, "--merge")
    scp = read_kaldi_map(out / "feats.scp")
    wav = read_kaldi_map(data / "wav.scp")
    assert sorted(scp) == sorted(wav)
    # 1-D float32 vectors equal to the samples of the files; shape lines <utt> <samples>
    shapes = read_kaldi_map(out / "feats_shape")
    got = dict(iter_feats(out / "feats.scp"))
    import soundfile
    for utt, path in wav.items():
        ref, fs = soundfile.read(path, dtype="float32")
        assert fs == 16000
        assert got[utt].dtype == np.float32 and got[utt].ndim == 1
        np.testing.assert_array_equal(got[utt], ref)
        assert shapes[utt] == str(len(ref))
    assert sorted(int(v) for v in shapes.values()) == sorted(lengths)
    # ESPnet's shape-file reader used by the batch samplers
    assert load_num_sequence_text(str(out / "feats_shape"), loader_type="csv_int") == {
        u: [int(v)] for u, v in shapes.items()}
    assert dump_config(out) == {"extractor": "wave", "fs": 16000}
    assert (out / "split2" / "wave.1.yaml").is_file()

    # ESPnet's kaldi_ark loader and CommonCollateFn: (B, T) waveforms, lengths in samples
    dataset = ESPnetDataset([(str(out / "feats.scp"), "speech", "kaldi_ark")],
                            float_dtype="float32")
    utts = sorted(scp)
    _, batch = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)(
        [(u, dataset[u][1]) for u in utts])
    assert batch["speech"].shape == (3, max(lengths))
    assert batch["speech_lengths"].tolist() == [int(shapes[u]) for u in utts]
    for i, u in enumerate(utts):
        n = int(shapes[u])
        np.testing.assert_array_equal(batch["speech"][i, :n].numpy(), got[u])
        assert not batch["speech"][i, n:].any()


def test_wave_dump_resamples_48k(make_data, tmp_path):
    data = make_data([48000, 30000, 24003], fs=48000)
    out = tmp_path / "raw"
    with pytest.raises(SystemExit):  # another rate is an error without --resample
        run_wave(data, out, "--nj", 2, "--fs", 16000)
    run_wave(data, out, "--nj", 2, "--fs", 16000, "--resample", "true")
    import soundfile
    got = dict(iter_feats(out / "feats.scp"))
    shapes = read_kaldi_map(out / "feats_shape")
    for utt, path in read_kaldi_map(data / "wav.scp").items():
        ref48, fs = soundfile.read(path, dtype="float32")
        assert fs == 48000
        assert len(got[utt]) == -(-len(ref48) // 3) == int(shapes[utt])
        np.testing.assert_allclose(got[utt], resample(ref48, 48000, 16000), atol=1e-6, rtol=0)
        # a 150-250 Hz tone survives resampling: same energy (roughly) as the original
        assert abs(np.std(got[utt]) - np.std(ref48)) < 0.05 * np.std(ref48)
    assert dump_config(out)["fs"] == 16000


def test_wave_dump_conf_check_and_options(make_data, tmp_path, fbank_conf):
    data = make_data([16000, 9000], fs=16000)
    out = tmp_path / "raw"
    run_wave(data, out, "--fs", 16000)
    # a dump at another rate is refused in the same out_dir
    data8 = make_data([8000, 4500], fs=8000, name="c8")
    with pytest.raises(SystemExit):
        run_wave(data8, out, "--fs", 8000)
    # filterbank options make no sense for a waveform dump
    with pytest.raises(SystemExit):
        run_wave(data, tmp_path / "x", "--config", fbank_conf)
    with pytest.raises(SystemExit):
        run_wave(data, tmp_path / "x", "--n_mels", 40)


def test_wave_subset_dump(make_data, tmp_path):
    data = make_data([16000, 9000, 12000, 8000])
    out = tmp_path / "raw_all"
    run_wave(data, out, "--nj", 2)
    sub = tmp_path / "sub"
    sub.mkdir()
    keep = sorted(read_kaldi_map(data / "wav.scp"))[:2]
    for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim"):
        lines = [l for l in (data / name).read_text().splitlines() if l.split()[0] in keep]
        (sub / name).write_text("".join(l + "\n" for l in lines))
    spk = {}
    for l in (sub / "utt2spk").read_text().splitlines():
        u, s = l.split()
        spk.setdefault(s, []).append(u)
    (sub / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk.items())))
    extract_main(["--subset_of", str(out), "--data_dir", str(sub), "--out_dir", str(tmp_path / "raw_sub"),
          "--log_level", "WARNING"])
    assert sorted(read_kaldi_map(tmp_path / "raw_sub" / "feats.scp")) == keep
    shapes = read_kaldi_map(tmp_path / "raw_sub" / "feats_shape")
    full = read_kaldi_map(out / "feats_shape")
    assert shapes == {u: full[u] for u in keep}


def test_wave_extractor():
    ext = WaveExtractor(16000)
    assert ext.conf == {"extractor": "wave", "fs": 16000} and ext.min_samples == 1
    x = np.arange(5, dtype=np.float64) / 10
    y = ext(x)
    assert y.dtype == np.float32 and y.tolist() == pytest.approx(x.tolist())
    with pytest.raises(ValueError):
        ext(np.zeros((3, 2)))


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
