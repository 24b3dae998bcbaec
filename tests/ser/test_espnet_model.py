"""ESPnetSERModel: an SSL encoder over waveforms; the CTC head's validation CER / WER (ESPnet's
error calculator, pooled over the whole set)."""

import jiwer
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.reporter import SubReporter, aggregate

from espnet_ser.ser.inference import tokens_to_text
from espnet_ser.ssl.encoder import SSLEncoder
from espnet_ser.tasks.ser import SERTask
from espnet_ser.train.trainer import ASRSERTrainer

EMOTIONS = ["ang", "hap", "neu", "sad"]
CHARS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "d", "e", "<sos/eos>"]
FRAMES = 30
TINY_W2V2 = dict(model_type="wav2vec2", hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, conv_dim=[16, 16],
                 conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=2, feat_extract_norm="layer")

# two validation batches of different sizes: (reference, greedy CTC hypothesis)
BATCHES = [
    [("abc bad", "abc bad"), ("cab", "cab"), ("dead ace", "dead ace")],  # 0 of 5 words wrong
    [("bed", "bad cab")],  # 1 substitution + 1 insertion over 1 word
]


def build(ctc_weight=0.1, **model_conf):
    args = SERTask.get_parser().parse_args(
        ["--emotions", *EMOTIONS, "--input_size", "20", "--encoder", "transformer"])
    # a linear input layer keeps every frame: the stubbed CTC output lines up with them
    args.encoder_conf = dict(output_size=16, attention_heads=2, linear_units=32, num_blocks=1,
                             input_layer="linear")
    args.token_list = CHARS if ctc_weight > 0 else None
    args.model_conf = dict(ctc_weight=ctc_weight, **model_conf)
    return SERTask.build_model(args)


def char_ids(text):
    return [CHARS.index("<space>" if c == " " else c) for c in text]


def frames_of(hyp):
    """One-hot CTC frames whose best path is ``hyp`` (a blank after each token)."""
    path = [t for i in char_ids(hyp) for t in (i, 0)]
    path += [0] * (FRAMES - len(path))
    return F.one_hot(torch.tensor(path), len(CHARS)).float().log_softmax(-1) * 10


def make_batch(pairs, seed):
    g = torch.Generator().manual_seed(seed)
    n = len(pairs)
    refs = [char_ids(r) for r, _ in pairs]
    text = torch.full((n, max(map(len, refs))), -1, dtype=torch.long)
    for k, r in enumerate(refs):
        text[k, : len(r)] = torch.tensor(r)
    return dict(speech=torch.randn(n, FRAMES, 20, generator=g),
                speech_lengths=torch.full((n,), FRAMES),
                emotion=torch.arange(n).reshape(n, 1) % 4,
                emotion_lengths=torch.ones(n, dtype=torch.long),
                text=text, text_lengths=torch.tensor([len(r) for r in refs]))


def stub_ctc_output(model, hyps):
    """The CTC head's log-probabilities: best path = ``hyps`` whatever the encoder says."""
    model.ctc.log_softmax = lambda h: torch.stack([frames_of(x) for x in hyps])[:, : h.size(1)]


def trainer_options():
    """The trainer and distributed options SERTask.main gives a CPU run."""
    args = SERTask.get_parser().parse_args(["--emotions", *EMOTIONS, "--ngpu", "0"])
    return ASRSERTrainer.build_options(args), DistributedOption(distributed=False)


def validate(model, batches):
    """ESPnet's validation loop through the toolkit's trainer; the epoch's SubReporter."""
    reporter = SubReporter("valid", 1, 0)

    def iterator():
        for k, pairs in enumerate(batches):
            stub_ctc_output(model, [h for _, h in pairs])
            yield [f"utt{k}_{i}" for i in range(len(pairs))], make_batch(pairs, k)

    ASRSERTrainer.validate_one_epoch(model, iterator(), reporter, *trainer_options())
    return reporter


def test_pooled_wer_and_cer_over_batches_of_different_sizes():
    torch.manual_seed(0)
    model = build()
    reporter = validate(model, BATCHES)

    # the hypotheses are what the model's greedy CTC decoding gives
    hyps, refs = [], []
    for pairs in BATCHES:
        stub_ctc_output(model, [h for _, h in pairs])
        b = make_batch(pairs, 0)
        _, ids = model.predict(b["speech"], b["speech_lengths"])
        hyps += [tokens_to_text(seq, CHARS) for seq in ids]
        refs += [r for r, _ in pairs]
    assert hyps == [h for pairs in BATCHES for _, h in pairs]

    wer = aggregate(reporter.stats["wer_ctc"])
    assert wer == pytest.approx(jiwer.wer(refs, hyps)) == pytest.approx(2 / 6)
    # ESPnet's CER leaves spaces out
    cer = aggregate(reporter.stats["cer_ctc"])
    no_space = [r.replace(" ", "") for r in refs], [h.replace(" ", "") for h in hyps]
    assert cer == pytest.approx(jiwer.cer(*no_space)) == pytest.approx(4 / 19)
    # the batch-size-weighted mean of per-batch WERs is another number
    per_batch = [jiwer.wer([r for r, _ in p], [h for _, h in p]) for p in BATCHES]
    assert np.average(per_batch, weights=[3, 1]) == pytest.approx(0.5)
    assert wer != pytest.approx(0.5)
    from espnet_ser.train.trainer import pooled_error_rates

    assert pooled_error_rates(reporter) == pytest.approx({"cer_ctc": 4 / 19, "wer_ctc": 2 / 6})


def test_error_counts_in_validation_only_and_only_with_ctc():
    torch.manual_seed(0)
    model = build()
    stub_ctc_output(model, [h for _, h in BATCHES[1]])
    model.train()  # no greedy decoding in training
    _, stats, _ = model(**make_batch(BATCHES[1], 0))
    assert "loss_ctc" in stats
    assert not any("cer" in k or "wer" in k for k in stats)
    model.eval()  # ref "bed", hyp "bad cab": 2 word errors over 1 word, 4 chars over 3
    _, stats, weight = model(**make_batch(BATCHES[1], 0))
    got = {k: float(v) for k, v in stats.items() if "cer" in k or "wer" in k}
    assert got == pytest.approx({"err_wer_ctc": 2.0, "ref_wer_ctc": 1.0,
                                 "err_cer_ctc": 4.0, "ref_cer_ctc": 3.0})
    assert int(weight) == 1

    model = build(ctc_weight=0.0)
    assert model.error_calculator is None
    reporter = validate_without_ctc(model)
    assert not any("cer" in k or "wer" in k for k in reporter.stats)
    assert "ua" in reporter.stats


def validate_without_ctc(model):
    reporter = SubReporter("valid", 1, 0)
    batches = [(["u0", "u1"], make_batch(BATCHES[0][:2], 0))]
    ASRSERTrainer.validate_one_epoch(model, iter(batches), reporter, *trainer_options())
    return reporter


def test_report_options():
    torch.manual_seed(0)
    model = build(report_wer=False)
    reporter = validate(model, BATCHES)
    assert "cer_ctc" in reporter.stats and "wer_ctc" not in reporter.stats
    assert build(report_cer=False, report_wer=False).error_calculator is None


def test_ssl_encoder_with_weighted_layers_and_ctc(tmp_path):
    chars = ["<blank>", "<unk>", "<space>", "a", "b", "<sos/eos>"]
    args = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "neu", "sad", "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY_W2V2, layer="weighted", freeze="feature_encoder")
    args.token_list = chars
    args.model_conf = dict(ctc_weight=0.1)
    torch.manual_seed(0)
    model = SERTask.build_model(args)
    assert isinstance(model.encoder, SSLEncoder)
    wave = torch.randn(2, 8000)
    lengths = torch.tensor([8000, 6000])
    loss, stats, weight = model(wave, lengths, torch.tensor([[1], [3]]), torch.tensor([1, 1]),
                                text=torch.tensor([[3, 2, 4], [4, 4, -1]]), text_lengths=torch.tensor([3, 2]))
    assert torch.isfinite(loss) and int(weight) == 2 and "loss_ctc" in stats
    loss.backward()
    # the layer weights learn; the frozen convolutional feature encoder does not
    assert model.encoder.layer_weights.grad is not None
    conv = [p for n, p in model.encoder.named_parameters() if "feature_extractor" in n]
    assert conv and all(p.grad is None for p in conv)
    posterior, ids = model.predict(wave, lengths)
    assert posterior.shape == (2, 4) and torch.allclose(posterior.sum(-1), torch.ones(2))
    assert ids is not None and len(ids) == 2
