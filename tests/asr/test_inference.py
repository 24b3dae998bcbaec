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


def _bad_utterance_set(tmp_path):
    """feats.scp: two good utterances and three that cannot be decoded."""
    import kaldiio

    rng = np.random.default_rng(0)
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        w("a_good", rng.standard_normal((40, 20)).astype(np.float32))
        w("b_short", rng.standard_normal((3, 20)).astype(np.float32))  # < 7 frames for conv2d
        w("e_good", rng.standard_normal((30, 20)).astype(np.float32))
    lines = scp.read_text().splitlines()
    lines.append(f"c_no_ark {tmp_path / 'missing.ark'}:12")
    lines.append(f"d_bad_offset {ark}:{ark.stat().st_size + 100}")
    scp.write_text("".join(line + "\n" for line in sorted(lines)))
    (tmp_path / "decode.yaml").write_text("beam_size: 2\nmaxlenratio: 0.5\n")
    return scp


def _run_decode(exp_dir, tmp_path, scp, out, nj, *extra):
    from espnet_ser.bin import asr_ser_inference

    base = ["--exp_dir", str(exp_dir), "--feats_scp", str(scp), "--output_dir", str(out),
            "--decode_config", str(tmp_path / "decode.yaml"), "--nj", str(nj), *extra]
    for job in range(1, nj + 1):
        asr_ser_inference.main(base + ["--job", str(job)])
    asr_ser_inference.main(base + ["--merge"])


def test_undecodable_utterances_are_written_empty_and_listed_as_failed(exp_dir, tmp_path):
    from espnet_ser.data.datadir import read_kaldi_map

    scp = _bad_utterance_set(tmp_path)
    out = tmp_path / "decode"
    _run_decode(exp_dir, tmp_path, scp, out, 2)
    bad = ["b_short", "c_no_ark", "d_bad_offset"]
    everything = sorted(["a_good", "e_good"] + bad)
    text = read_kaldi_map(out / "text", allow_empty_value=True)
    assert list(text) == everything
    for utt in bad:
        assert text[utt] == ""
    failed = read_kaldi_map(out / "failed")
    assert list(failed) == bad
    assert failed["b_short"].startswith("TooShortUttError: has 3 frames")
    assert "missing.ark" in failed["c_no_ark"] and "No such file" in failed["c_no_ark"]
    assert failed["d_bad_offset"].startswith(f"RuntimeError: {scp}: cannot read {tmp_path}")
    emo = read_kaldi_map(out / "utt2emo")
    post = read_kaldi_map(out / "emotion_posterior", allow_empty_value=True)
    beam = read_kaldi_map(out / "beam_score")
    for utt in bad:
        assert emo[utt] == "none" and post[utt] == "" and beam[utt] == "nan"
    for utt in ("a_good", "e_good"):
        assert math.isfinite(float(beam[utt]))
        if emo[utt] != "none":
            assert f"<{emo[utt]}>" in text[utt].split()
    assert (out / "num_utts").read_text() == "5\n"


def test_failures_limit_and_a_set_with_nothing_decoded(exp_dir, tmp_path):
    from espnet_ser.bin import asr_ser_inference

    scp = _bad_utterance_set(tmp_path)
    base = ["--exp_dir", str(exp_dir), "--feats_scp", str(scp), "--output_dir",
            str(tmp_path / "d1"), "--decode_config", str(tmp_path / "decode.yaml")]
    with pytest.raises(SystemExit) as e:  # 3 failures > 2: the job fails after writing
        asr_ser_inference.main(base + ["--max_failures", "2"])
    assert e.value.code == 1
    assert len((tmp_path / "d1" / "split1" / "output.1" / "failed").read_text().splitlines()) == 3
    asr_ser_inference.main(base + ["--max_failures", "3"])
    with pytest.raises(SystemExit):
        asr_ser_inference.main(base + ["--merge", "--max_failures", "2"])
    asr_ser_inference.main(base + ["--merge", "--max_failures", "3"])
    assert (tmp_path / "d1" / "failed").read_text().count("\n") == 3

    # no failure: the merged failed file is empty
    only_good = tmp_path / "good.scp"
    only_good.write_text("".join(l + "\n" for l in scp.read_text().splitlines() if "_good " in l))
    _run_decode(exp_dir, tmp_path, only_good, tmp_path / "d2", 1)
    assert (tmp_path / "d2" / "failed").read_text() == ""

    # every utterance fails: the jobs finish, the merge exits non-zero with the outputs written
    only_bad = tmp_path / "bad.scp"
    only_bad.write_text("".join(l + "\n" for l in scp.read_text().splitlines() if "_good " not in l))
    with pytest.raises(SystemExit) as e:
        _run_decode(exp_dir, tmp_path, only_bad, tmp_path / "d3", 2)
    assert e.value.code == 1
    assert (tmp_path / "d3" / "failed").read_text().count("\n") == 3


def test_a_model_that_cannot_load_fails_the_job(tmp_path):
    from espnet_ser.bin import asr_ser_inference

    scp = _bad_utterance_set(tmp_path)
    with pytest.raises(SystemExit):
        asr_ser_inference.main(["--exp_dir", str(tmp_path / "no_exp"), "--feats_scp", str(scp),
                                "--output_dir", str(tmp_path / "d")])
    assert not (tmp_path / "d" / "split1").exists()
