"""Stage 5 of SER recipes: ser_inference (nj / merge / failures) against model.predict."""

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from espnet_ser.bin import ser_inference
from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.ser.inference import tokens_to_text
from espnet_ser.tasks.ser import SERTask
from tests.ser.test_inference import CHARS, EMOTIONS, make_exp

TINY_W2V2 = dict(model_type="wav2vec2", hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, conv_dim=[16, 16],
                 conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=2, feat_extract_norm="layer")


def write_feats(d: Path, frames: dict) -> Path:
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for utt, t in frames.items():
            w(utt, rng.normal(size=(t, 20)).astype(np.float32))
    return d / "feats.scp"


FRAMES = {"u1": 30, "u2": 17, "u3": 45, "u4": 22, "u5": 38}


def direct(model, scp: Path) -> dict:
    """model.predict on every utterance alone: utt -> (posterior list, ids)."""
    out = {}
    for utt, rx in read_kaldi_map(scp).items():
        x = torch.from_numpy(np.array(kaldiio.load_mat(rx)))[None]
        post, ids = model.predict(x, torch.tensor([x.shape[1]]))
        out[utt] = (post[0].tolist(), None if ids is None else ids[0])
    return out


def parse_posterior(value: str) -> dict:
    return {k: float(v) for k, v in (item.split(":") for item in value.split())}


def run(exp, scp, out, *extra):
    base = ["--exp_dir", str(exp), "--model_file", str(exp / "model.pth"),
            "--speech_scp", str(scp), "--output_dir", str(out), *extra]
    return base


# With conv2d subsampling ESPnet's length masks keep one edge frame computed over the
# zero padding, so only batch_size 1 reproduces model.predict of each utterance alone;
# batches are checked with an encoder without subsampling (input_layer linear).
@pytest.mark.parametrize("ctc,batch_size,input_layer", [
    (True, "1", "conv2d"), (False, "1", "conv2d"), (True, "3", "linear"), (False, "2", "linear")])
def test_nj2_merge_matches_model_predict(tmp_path, ctc, batch_size, input_layer):
    model = make_exp(tmp_path / "exp", ctc, input_layer)
    scp = write_feats(tmp_path / "dump", FRAMES)
    out = tmp_path / "decode"
    base = run(tmp_path / "exp", scp, out, "--nj", "2", "--batch_size", batch_size)
    for job in ("1", "2"):
        ser_inference.main(base + ["--job", job])
    # job 1 holds u1 u2 u3, job 2 u4 u5 (contiguous parts of the sorted list)
    assert sorted(read_kaldi_map(out / "split2" / "output.1" / "emotion")) == ["u1", "u2", "u3"]
    ser_inference.main(base + ["--merge"])

    expected = direct(model, scp)
    emotion = read_kaldi_map(out / "emotion")
    posterior = read_kaldi_map(out / "posterior")
    assert list(emotion) == list(FRAMES)
    assert (out / "failed").read_text() == ""
    assert (out / "num_utts").read_text() == "5\n"
    for utt, (post, ids) in expected.items():
        got = parse_posterior(posterior[utt])
        assert list(got) == EMOTIONS  # class order
        assert list(got.values()) == pytest.approx(post, abs=1.01e-4)
        assert emotion[utt] == EMOTIONS[int(np.argmax(post))]
    assert len(set(posterior.values())) == len(FRAMES)  # the check is not vacuous
    if ctc:
        text = read_kaldi_map(out / "text", allow_empty_value=True)
        assert list(text) == list(FRAMES)
        for utt, (_, ids) in expected.items():
            assert text[utt] == tokens_to_text(ids, CHARS)
        assert any(text.values())
    else:
        assert not (out / "text").exists()


def test_failures_are_written_as_none_and_listed(tmp_path):
    make_exp(tmp_path / "exp", ctc=True)
    scp = write_feats(tmp_path / "dump", {"a1": 30, "a2": 3, "a3": 25})
    # an entry whose ark does not exist
    scp.write_text(scp.read_text() + f"a4 {tmp_path}/missing.ark:12\n")
    out = tmp_path / "decode"
    base = run(tmp_path / "exp", scp, out, "--batch_size", "4")
    ser_inference.main(base)
    ser_inference.main(base + ["--merge"])
    failed = read_kaldi_map(out / "failed")
    assert sorted(failed) == ["a2", "a4"]
    assert "missing.ark" in failed["a4"]
    assert "short" in failed["a2"].lower()
    emotion = read_kaldi_map(out / "emotion")
    assert emotion["a2"] == emotion["a4"] == "none"
    assert emotion["a1"] in EMOTIONS and emotion["a3"] in EMOTIONS
    posterior = read_kaldi_map(out / "posterior", allow_empty_value=True)
    assert posterior["a2"] == posterior["a4"] == ""
    assert len(parse_posterior(posterior["a1"])) == 4
    text = read_kaldi_map(out / "text", allow_empty_value=True)
    assert text["a2"] == text["a4"] == ""
    # more failures than allowed: the job and the merge fail (after writing)
    with pytest.raises(SystemExit):
        ser_inference.main(base + ["--max_failures", "1"])
    with pytest.raises(SystemExit):
        ser_inference.main(base + ["--merge", "--max_failures", "1"])
    ser_inference.main(base + ["--merge", "--max_failures", "2"])


def test_sound_scp_waveforms(tmp_path):
    """speech_type sound: wav files read with soundfile into an SSL model over (B, T) waveforms."""
    import soundfile

    args = SERTask.get_parser().parse_args(
        ["--emotions", *EMOTIONS, "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY_W2V2, layer="weighted")
    args.token_list = None
    torch.manual_seed(0)
    model = SERTask.build_model(args).eval()
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(
        {k: v for k, v in vars(args).items() if not callable(v)}))
    torch.save(model.state_dict(), exp / "model.pth")
    rng = np.random.default_rng(1)
    lines = []
    waves = {}
    for utt, n in (("s1", 4000), ("s2", 2500)):
        w = (0.1 * rng.normal(size=n)).astype(np.float32)
        soundfile.write(tmp_path / f"{utt}.wav", w, 16000, subtype="FLOAT")
        waves[utt] = w
        lines.append(f"{utt} {tmp_path / (utt + '.wav')}\n")
    (tmp_path / "wav.scp").write_text("".join(lines))
    out = tmp_path / "decode"
    base = run(exp, tmp_path / "wav.scp", out, "--speech_type", "sound", "--fs", "16000")
    ser_inference.main(base)
    ser_inference.main(base + ["--merge"])
    posterior = read_kaldi_map(out / "posterior")
    assert posterior["s1"] != posterior["s2"]
    for utt, w in waves.items():
        post, _ = model.predict(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        assert list(parse_posterior(posterior[utt]).values()) == pytest.approx(
            post[0].tolist(), abs=1.01e-4)
    # a wrong sample rate fails the utterances
    ser_inference.main(base[:-1] + ["8000", "--output_dir", str(tmp_path / "d2")])
    failed = read_kaldi_map(tmp_path / "d2" / "split1" / "output.1" / "failed")
    assert sorted(failed) == ["s1", "s2"] and "16000 Hz, expected 8000 Hz" in failed["s1"]


def test_missing_model_fails_the_job(tmp_path):
    scp = write_feats(tmp_path / "dump", {"a1": 30})
    with pytest.raises(SystemExit):
        ser_inference.main(["--exp_dir", str(tmp_path / "nothing"), "--speech_scp", str(scp),
                            "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
