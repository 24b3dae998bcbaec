"""Beam search with emotion posterior: loading an experiment and the posterior's maths."""

import itertools
import math

import numpy as np
import pytest
import torch
import yaml

from espnet_ser.asr.inference import Speech2TextEmotion, find_model_file, load_decode_config
from espnet_ser.tasks.asr_ser import ASRSERTask

TOKENS = ["<blank>", "<unk>", "<ang>", "<hap>", "hello", "world", "<sos/eos>"]


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    """A tiny trained-from-nothing experiment directory in ESPnet's layout."""
    d = tmp_path_factory.mktemp("exp")
    (d / "tokens.txt").write_text("".join(t + "\n" for t in TOKENS))
    args = ASRSERTask.get_parser().parse_args([
        "--token_list", str(d / "tokens.txt"), "--token_type", "word", "--input_size", "20",
        "--normalize", "none",
        "--encoder", "conformer", "--encoder_conf", "output_size=16",
        "--encoder_conf", "attention_heads=2", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "num_blocks=1", "--encoder_conf", "cnn_module_kernel=3",
        "--decoder", "transformer", "--decoder_conf", "attention_heads=2",
        "--decoder_conf", "linear_units=32", "--decoder_conf", "num_blocks=1",
        "--model_conf", "ctc_weight=0.3",
    ])
    torch.manual_seed(0)
    model = ASRSERTask.build_model(args)
    with (d / "config.yaml").open("w") as f:
        yaml.safe_dump(vars(args), f)
    torch.save(model.state_dict(), d / "3epoch.pth")
    torch.save(model.state_dict(), d / "valid.acc.ave.pth")
    return d


def test_find_model_file_prefers_the_averaged_model(exp_dir, tmp_path):
    assert find_model_file(exp_dir).name == "valid.acc.ave.pth"
    (tmp_path / "2epoch.pth").touch()
    (tmp_path / "10epoch.pth").touch()
    assert find_model_file(tmp_path).name == "10epoch.pth"
    with pytest.raises(FileNotFoundError):
        find_model_file(tmp_path / "nothing")


def test_decode_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "decode.yaml"
    p.write_text("beam_size: 3\nbeem: 2\n")
    with pytest.raises(ValueError, match="beem"):
        load_decode_config(p)
    p.write_text("beam_size: 3\n")
    assert load_decode_config(p)["beam_size"] == 3


def test_decoding_returns_consistent_hypotheses(exp_dir):
    s2t = Speech2TextEmotion.from_exp_dir(exp_dir, beam_size=3, nbest=2, maxlenratio=0.5)
    rng = np.random.default_rng(0)
    results = s2t(rng.standard_normal((40, 20)).astype(np.float32))
    assert 1 <= len(results) <= 2
    for r in results:
        assert r.text.split() == [t for t in r.tokens]
        assert r.words.split() == [t for t in r.tokens if t not in ("<ang>", "<hap>")]
        if r.emotion is None:
            assert r.posterior == {}
        else:
            assert f"<{r.emotion}>" in r.tokens
            assert set(r.posterior) == {"ang", "hap"}
            assert sum(r.posterior.values()) == pytest.approx(1.0, abs=1e-5)


def _ctc_prefix_prob(logp: np.ndarray, prefix, blank: int) -> float:
    """P(label sequence starts with ``prefix``) by summing over every CTC alignment."""
    T, V = logp.shape
    total = 0.0
    for path in itertools.product(range(V), repeat=T):
        labels, prev = [], None
        for s in path:
            if s != prev and s != blank:
                labels.append(s)
            prev = s
        if labels[: len(prefix)] == list(prefix):
            total += math.exp(sum(logp[t, s] for t, s in enumerate(path)))
    return total


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3, 1.0])
def test_emotion_posterior_matches_brute_force(exp_dir, ctc_weight):
    s2t = Speech2TextEmotion.from_exp_dir(exp_dir, ctc_weight=ctc_weight)
    model = s2t.model
    torch.manual_seed(1)
    feats = torch.randn(1, 15, 20)  # conv2d subsampling: 15 frames -> 3 encoder frames
    enc, _ = model.encode(feats, torch.tensor([15]))
    enc = enc[0]
    assert enc.shape[0] == 3
    prefix = [TOKENS.index("hello"), TOKENS.index("world")]
    post = s2t.emotion_posterior(enc, prefix)

    with torch.no_grad():
        ys = torch.tensor([[model.sos] + prefix])
        att = model.decoder.forward_one_step(ys, torch.ones(1, 3, 3, dtype=torch.bool).tril(), enc[None])[0][0]
        logp_ctc = model.ctc.log_softmax(enc[None])[0].numpy().astype(np.float64)
    scores = []
    for code in ("ang", "hap"):
        e = TOKENS.index(f"<{code}>")
        s = (1 - ctc_weight) * float(att[e])
        if ctc_weight > 0:
            s += ctc_weight * math.log(_ctc_prefix_prob(logp_ctc, prefix + [e], model.blank_id))
        scores.append(s)
    expected = np.exp(np.array(scores) - max(scores))
    expected /= expected.sum()
    assert post["ang"] == pytest.approx(expected[0], abs=1e-4)
    assert post["hap"] == pytest.approx(expected[1], abs=1e-4)
