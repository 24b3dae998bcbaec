"""espnet_ser.ser.inference: Speech2Emotion, tokens_to_text, pad_inputs."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_ser.ser.inference import Speech2Emotion, pad_inputs, tokens_to_text
from espnet_ser.tasks.ser import SERTask

EMOTIONS = ["ang", "hap", "neu", "sad"]
CHARS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "d", "e", "<sos/eos>"]
TINY_ENCODER = dict(output_size=16, attention_heads=2, linear_units=32, num_blocks=1,
                    input_layer="conv2d", dropout_rate=0.0, positional_dropout_rate=0.0,
                    attention_dropout_rate=0.0)


def make_exp(exp: Path, ctc: bool, input_layer: str = "conv2d", **conf) -> torch.nn.Module:
    """A tiny untrained model saved as exp/config.yaml + exp/model.pth (``conf``: more
    config entries, e.g. a personality fusion)."""
    args = SERTask.get_parser().parse_args(
        ["--emotions", *EMOTIONS, "--input_size", "20", "--encoder", "transformer",
         "--normalize", "utterance_mvn", "--pooling", "mean_max", "--classifier", "linear"])
    args.encoder_conf = dict(TINY_ENCODER, input_layer=input_layer)
    args.token_list = CHARS if ctc else None
    args.model_conf = dict(ctc_weight=0.3 if ctc else 0.0)
    for key, value in conf.items():
        setattr(args, key, value)
    torch.manual_seed(0)
    model = SERTask.build_model(args)
    exp.mkdir(parents=True)
    conf = {k: v for k, v in vars(args).items() if not callable(v)}
    (exp / "config.yaml").write_text(yaml.safe_dump(conf))
    torch.save(model.state_dict(), exp / "model.pth")
    return model.eval()


def test_tokens_to_text_and_padding():
    assert tokens_to_text([3, 4, 2, 5, 8, 1], CHARS) == "ab c<unk>"
    assert tokens_to_text([2, 3, 2, 2, 4, 2], CHARS) == "a b"
    with pytest.raises(ValueError, match="outside"):
        tokens_to_text([42], CHARS)
    x, n = pad_inputs([np.ones((2, 3)), np.ones((4, 3))])
    assert x.shape == (2, 4, 3) and n.tolist() == [2, 4] and float(x[0, 2:].abs().sum()) == 0
    with pytest.raises(ValueError, match="ranks"):
        pad_inputs([np.ones(3), np.ones((4, 3))])


def test_speech2emotion_short_inputs(tmp_path):
    from espnet_ser.ser.inference import UtteranceError

    model = make_exp(tmp_path / "exp", ctc=True)
    s2e = Speech2Emotion.from_exp_dir(tmp_path / "exp", tmp_path / "exp" / "model.pth")
    # conv2d subsampling (two 3x3 convolutions with stride 2) needs 7 frames
    assert s2e.min_input_length((20,)) == 7
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 20)).astype(np.float32)
    r = s2e(x)
    post, ids = model.predict(torch.from_numpy(x)[None], torch.tensor([12]))
    assert list(r.posterior) == EMOTIONS and r.emotion == EMOTIONS[int(post[0].argmax())]
    assert r.token_ids == ids[0] and r.text == tokens_to_text(ids[0], CHARS)
    # alone a 6-frame input is refused by the encoder; in a batch by the length check
    with pytest.raises(Exception, match="(?i)short"):
        s2e(x[:6])
    out = s2e.predict_batch([x, x[:6], x[:7]])
    assert isinstance(out[1], UtteranceError) and "at least 7" in str(out[1])
    assert out[0].posterior == pytest.approx(r.posterior, abs=1e-5)
    with pytest.raises(UtteranceError, match="NaN"):
        s2e(np.full((12, 20), np.nan, dtype=np.float32))
