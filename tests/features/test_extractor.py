"""The extractor interface: every extractor kind implements it, and each dump records its
extractor's config under the extractor's name (old dumps: fbank.yaml)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from espnet_ser.bin import extract_feats
from espnet_ser.features.dump import dump_config, merge_dump, subset_dump
from espnet_ser.features.extractor import Extractor, FeatureError
from espnet_ser.features.fbank import FbankExtractor, GSTFbankExtractor
from espnet_ser.features.ssl_states import SSLStatesExtractor, WaveExtractor

REPO = Path(__file__).resolve().parents[2]
TINY = dict(model_type="wav2vec2", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, conv_dim=[16, 16], conv_kernel=[10, 3], conv_stride=[5, 2],
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
            feat_extract_norm="layer", conv_bias=True)


def extractors():
    conf = yaml.safe_load((REPO / "conf" / "fbank_gst_tacotron.yaml").read_text())
    return [FbankExtractor.from_yaml(REPO / "conf" / "fbank.yaml"), FbankExtractor(**conf),
            WaveExtractor(16000),
            SSLStatesExtractor(dict(model_config=TINY, layer="weighted", freeze="all"))]


def test_every_extractor_kind_implements_the_interface():
    fbank, gst, wave, states = extractors()
    assert type(gst) is GSTFbankExtractor  # normalization: tacotron picks the GST variant
    x = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    for ext, name in ((fbank, "fbank"), (gst, "fbank"), (wave, "wave"), (states, "ssl_states")):
        assert isinstance(ext, Extractor) and ext.name == name and ext.fs == 16000
        assert isinstance(ext.conf, dict) and ext.min_samples >= 1
        out = ext.extract(x, 16000)
        assert out.dtype == np.float32 and out.shape[1:] == ext.output_dims
        np.testing.assert_array_equal(out, ext(x))
        with pytest.raises(FeatureError, match="audio at 8000 Hz, the extractor takes 16000 Hz"):
            ext.extract(x, 8000)
    assert fbank.output_dims == (80,) and wave.output_dims == () and states.output_dims == (96,)


def test_each_dump_config_is_named_for_its_extractor(tmp_path, make_data, fbank_conf):
    data = make_data([4000, 5000, 6000])
    extract_feats.main(["--config", str(fbank_conf), "--data_dir", str(data), "--out_dir",
                        str(tmp_path / "fbank"), "--nj", "2"])
    extract_feats.main(["--extractor", "wave", "--data_dir", str(data), "--out_dir",
                        str(tmp_path / "wave"), "--nj", "2"])
    assert sorted(p.name for p in (tmp_path / "fbank").glob("*.yaml")) == ["fbank.yaml"]
    assert sorted(p.name for p in (tmp_path / "wave").glob("*.yaml")) == ["wave.yaml"]
    assert sorted(p.name for p in (tmp_path / "wave" / "split2").glob("*.yaml")) == [
        "wave.1.yaml", "wave.2.yaml"]
    assert dump_config(tmp_path / "fbank") == yaml.safe_load(fbank_conf.read_text())
    assert dump_config(tmp_path / "wave") == {"extractor": "wave", "fs": 16000}


def test_a_dump_made_before_with_only_fbank_yaml_is_still_read(tmp_path, make_data):
    data = make_data([4000, 5000])
    out = tmp_path / "wave"
    extract_feats.main(["--extractor", "wave", "--data_dir", str(data), "--out_dir", str(out)])
    for old, new in ((out / "wave.yaml", out / "fbank.yaml"),
                     (out / "split1" / "wave.1.yaml", out / "split1" / "fbank.1.yaml")):
        old.rename(new)  # the layout written before the configs were named
    assert dump_config(out) == {"extractor": "wave", "fs": 16000}
    # a subset of it and a new merge of it name the config for its extractor
    subset_dump(data, out, tmp_path / "sub")
    assert dump_config(tmp_path / "sub") == {"extractor": "wave", "fs": 16000}
    assert not (tmp_path / "sub" / "fbank.yaml").exists()
    merge_dump(data, out, 1, overwrite=True)
    assert (out / "wave.yaml").is_file() and not (out / "fbank.yaml").exists()
    # the old part is kept by a re-run (same config), not recomputed
    mtime = (out / "split1" / "feats.1.ark").stat().st_mtime_ns
    extract_feats.main(["--extractor", "wave", "--data_dir", str(data), "--out_dir", str(out)])
    assert (out / "split1" / "feats.1.ark").stat().st_mtime_ns == mtime
    (out / "wave.yaml").rename(out / "fbank.yaml")
    (out / "ssl_states.yaml").write_text("extractor: ssl_states\n")
    with pytest.raises(FeatureError, match="expected one extractor config, found fbank.yaml ssl"):
        dump_config(out)
    with pytest.raises(FeatureError, match="found none of fbank.yaml wave.yaml ssl_states.yaml"):
        dump_config(tmp_path)


def test_the_job_split_does_not_import_the_features():
    code = ("import sys, espnet_ser.utils.jobs as j; j.split_utterances(['b', 'a'], 2); "
            "print([m for m in sys.modules if m.startswith('espnet_ser.features')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
