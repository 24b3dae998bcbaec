"""Waveform dumps (extract_feats --extractor wave) for SSL encoders."""

import numpy as np
import pytest
import yaml

from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.dataset import ESPnetDataset
from espnet2.fileio.read_text import load_num_sequence_text
from espnet_ser.bin.extract_feats import main
from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.features.fbank import iter_feats, resample
from espnet_ser.features.ssl_states import WaveExtractor


def run(data, out, *extra):
    main(["--extractor", "wave", "--data_dir", str(data), "--out_dir", str(out),
          "--log_level", "WARNING", *map(str, extra)])


def test_wave_dump_16k_nj2_merge_and_espnet_loader(make_data, tmp_path, wav_writer):
    lengths = [16000, 9000, 12345]
    data = make_data(lengths)
    out = tmp_path / "raw"
    for job in (1, 2):
        run(data, out, "--nj", 2, "--job", job)
    assert not (out / "feats.scp").exists()
    run(data, out, "--nj", 2, "--merge")
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
    assert yaml.safe_load((out / "fbank.yaml").read_text()) == {"extractor": "wave", "fs": 16000}
    assert (out / "split2" / "fbank.1.yaml").is_file()

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
        run(data, out, "--nj", 2, "--fs", 16000)
    run(data, out, "--nj", 2, "--fs", 16000, "--resample", "true")
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
    assert yaml.safe_load((out / "fbank.yaml").read_text())["fs"] == 16000


def test_wave_dump_conf_check_and_options(make_data, tmp_path, fbank_conf):
    data = make_data([16000, 9000], fs=16000)
    out = tmp_path / "raw"
    run(data, out, "--fs", 16000)
    # a dump at another rate is refused in the same out_dir
    data8 = make_data([8000, 4500], fs=8000, name="c8")
    with pytest.raises(SystemExit):
        run(data8, out, "--fs", 8000)
    # filterbank options make no sense for a waveform dump
    with pytest.raises(SystemExit):
        run(data, tmp_path / "x", "--config", fbank_conf)
    with pytest.raises(SystemExit):
        run(data, tmp_path / "x", "--n_mels", 40)


def test_wave_subset_dump(make_data, tmp_path):
    data = make_data([16000, 9000, 12000, 8000])
    out = tmp_path / "raw_all"
    run(data, out, "--nj", 2)
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
    main(["--subset_of", str(out), "--data_dir", str(sub), "--out_dir", str(tmp_path / "raw_sub"),
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
