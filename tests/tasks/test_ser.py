"""ESPnetSERModel losses and stats, SERTask building, and training with ESPnet's trainer."""

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from espnet_ser.ser.espnet_model import ESPnetSERModel, ctc_greedy
from espnet_ser.ser.heads import AbsClassifier
from espnet_ser.tasks.ser import SERTask, parse_emotions
from tests.ser.test_espnet_model import TINY_W2V2
from tests.ssl.test_encoder import save_checkpoint

EMOTIONS = ["ang", "hap", "neu", "sad"]
CHARS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "d", "e", "<sos/eos>"]
TINY_ENCODER = dict(output_size=16, attention_heads=2, linear_units=32, num_blocks=1,
                    input_layer="conv2d", dropout_rate=0.0, positional_dropout_rate=0.0,
                    attention_dropout_rate=0.0)


def build(extra=(), token_list=None, **conf):
    parser = SERTask.get_parser()
    args = parser.parse_args(["--emotions", *EMOTIONS, "--input_size", "20",
                              "--encoder", "transformer", *extra])
    args.encoder_conf = dict(TINY_ENCODER)
    for k, v in conf.items():
        setattr(args, k, v)
    args.token_list = token_list
    return SERTask.build_model(args)


def batch(n_frames=(30, 22), seed=0):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(len(n_frames), max(n_frames), 20, generator=g)
    return speech, torch.tensor(n_frames)


def test_parse_emotions():
    assert parse_emotions("ang hap neu sad") == EMOTIONS
    assert parse_emotions(["ang,hap", "neu", "sad"]) == EMOTIONS
    with pytest.raises(ValueError, match="duplicate"):
        parse_emotions(["ang", "ang"])


def test_alpha_zero_builds_no_ctc_and_needs_no_text():
    model = build()
    assert isinstance(model, ESPnetSERModel) and model.ctc is None
    assert model.num_classes == 4 and model.emotions == EMOTIONS
    assert not any("ctc" in k for k in model.state_dict())
    speech, lens = batch()
    loss, stats, weight = model(speech, lens, torch.tensor([[1], [3]]), torch.tensor([1, 1]))
    assert torch.isfinite(loss) and int(weight) == 2
    assert set(stats) == {"loss", "loss_ce", "acc"}
    assert float(stats["loss"]) == pytest.approx(float(stats["loss_ce"]))
    posterior, ids = model.predict(speech, lens)
    assert posterior.shape == (2, 4) and ids is None
    assert torch.allclose(posterior.sum(-1), torch.ones(2))


def test_ctc_weight_needs_token_list():
    with pytest.raises(ValueError, match="token_list"):
        build(model_conf=dict(ctc_weight=0.3))


def test_loss_is_ce_plus_alpha_ctc():
    alpha = 0.3
    torch.manual_seed(0)
    model = build(token_list=CHARS, model_conf=dict(ctc_weight=alpha),
                  pooling="attentive_stats", classifier="ffn",
                  classifier_conf=dict(hidden_units=8, dropout=0.0))
    model.eval()
    assert model.ctc is not None and model.ctc.ctc_lo.out_features == len(CHARS)
    speech, lens = batch()
    emotion = torch.tensor([[2], [0]])
    text = torch.tensor([[3, 4, 2, 5], [6, 7, -1, -1]])
    text_lens = torch.tensor([4, 2])
    loss, stats, _ = model(speech, lens, emotion, torch.tensor([1, 1]), text, text_lens)

    with torch.no_grad():  # the same terms computed separately
        enc, enc_lens = model.encode(speech, lens)
        logits = model.classifier(model.pooling(enc, enc_lens))
        ce = F.cross_entropy(logits, emotion[:, 0])
        log_probs = F.log_softmax(model.ctc.ctc_lo(enc), dim=-1).transpose(0, 1)
        targets = torch.cat([text[0, :4], text[1, :2]])
        ctc = F.ctc_loss(log_probs, targets, enc_lens, text_lens, blank=0, reduction="sum",
                         zero_infinity=True) / 2
    assert float(stats["loss_ce"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(stats["loss_ctc"]) == pytest.approx(float(ctc), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(ce + alpha * ctc), rel=1e-5)
    assert float(stats["loss"]) == pytest.approx(float(loss.detach()))
    with pytest.raises(ValueError, match="text"):
        model(speech, lens, emotion)
    posterior, ids = model.predict(speech, lens)
    assert posterior.shape == (2, 4) and len(ids) == 2
    assert all(0 < i < len(CHARS) for seq in ids for i in seq)


def test_encode_leaves_the_input_intact():
    model = build()  # utterance_mvn normalizes in place inside ESPnet
    model.eval()
    speech, lens = batch()
    before = speech.clone()
    a, _ = model.encode(speech, lens)
    b, _ = model.encode(speech, lens)
    assert torch.equal(speech, before) and torch.equal(a, b)


class FixedLogits(AbsClassifier):
    """Returns the stored logits whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits.clone().requires_grad_(True)


def test_acc_stat_on_hand_built_batch():
    model = build()
    model.classifier = FixedLogits(torch.tensor([
        [5.0, 0.0, 0.0, 0.0],  # predicts 0
        [0.0, 0.0, 3.0, 0.0],  # predicts 2
        [0.0, 1.0, 0.0, 0.0],  # predicts 1
        [0.0, 0.0, 0.0, 2.0],  # predicts 3
    ]))
    speech, lens = batch((30, 25, 20, 18))
    emotion = torch.tensor([[0], [1], [1], [3]])  # 3 of 4 right
    loss, stats, weight = model(speech, lens, emotion)
    assert float(stats["acc"]) == pytest.approx(0.75) and int(weight) == 4
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(model.classifier.logits,
                                                              emotion[:, 0])))


def test_class_weights():
    model = build(model_conf=dict(class_weights=[1.0, 2.0, 1.0, 0.5]))
    model.classifier = FixedLogits(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 1.0]]))
    speech, lens = batch()
    emotion = torch.tensor([[1], [3]])
    loss, _, _ = model(speech, lens, emotion)
    w = torch.tensor([1.0, 2.0, 1.0, 0.5])
    expected = F.cross_entropy(model.classifier.logits, emotion[:, 0], weight=w)
    assert float(loss.detach()) == pytest.approx(float(expected))
    assert "class_weights" not in model.state_dict()


def test_ctc_greedy_collapses_repeats_and_blanks():
    ids = torch.tensor([[0, 3, 3, 0, 3, 4, 4, 0], [5, 5, 0, 6, 9, 9, 9, 9]])
    lp = F.one_hot(ids, 10).float()
    assert ctc_greedy(lp, torch.tensor([8, 4])) == [[3, 3, 4], [5, 6]]


def test_printed_config_builds(tmp_path):
    import io

    out = io.StringIO()
    SERTask.print_config(file=out)  # what --print_config writes
    conf = yaml.safe_load(out.getvalue())
    assert conf["model"] == "ser" and conf["pooling"] == "mean"
    assert conf["classifier"] == "linear" and "emotions" in conf
    conf.update(emotions=EMOTIONS, input_size=20, encoder="transformer",
                encoder_conf=TINY_ENCODER)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    model, _ = SERTask.build_model_from_file(tmp_path / "config.yaml")
    assert model.ctc is None and model.num_classes == 4


def test_data_names():
    assert SERTask.required_data_names(True, False) == ("speech", "emotion")
    assert SERTask.required_data_names(False, True) == ("speech",)
    assert "text" in SERTask.optional_data_names(True, False)


def test_class_recall_stats_in_eval_mode_only():
    model = build()
    model.classifier = FixedLogits(torch.tensor([
        [5.0, 0.0, 0.0, 0.0],  # predicts ang, right
        [0.0, 0.0, 3.0, 0.0],  # predicts neu, ref hap
        [0.0, 1.0, 0.0, 0.0],  # predicts hap, right
        [0.0, 0.0, 0.0, 2.0],  # predicts sad, right
    ]))
    speech, lens = batch((30, 25, 20, 18))
    emotion = torch.tensor([[0], [1], [1], [3]])
    _, stats, _ = model(speech, lens, emotion)
    assert not any(k.startswith(("cnt_", "hit_")) for k in stats)
    model.eval()
    _, stats, _ = model(speech, lens, emotion)
    got = {k: float(v) for k, v in stats.items() if k.startswith(("cnt_", "hit_"))}
    assert got == pytest.approx({"cnt_ang": 0.25, "hit_ang": 0.25, "cnt_hap": 0.5, "hit_hap": 0.25,
                                 "cnt_neu": 0.0, "hit_neu": 0.0, "cnt_sad": 0.25, "hit_sad": 0.25})


def test_unweighted_accuracy_from_batches_of_different_sizes():
    from espnet2.train.reporter import SubReporter

    from espnet_ser.train.trainer import unweighted_accuracy

    reporter = SubReporter("valid", 1, 0)
    # batch 1 (4 utts): 3 ang of which 3 right, 1 hap wrong
    reporter.register({"cnt_ang": 0.75, "hit_ang": 0.75, "cnt_hap": 0.25, "hit_hap": 0.0,
                       "cnt_sad": 0.0, "hit_sad": 0.0}, weight=4)
    reporter.next()
    # batch 2 (2 utts): 1 ang wrong, 1 hap right
    reporter.register({"cnt_ang": 0.5, "hit_ang": 0.0, "cnt_hap": 0.5, "hit_hap": 0.5,
                       "cnt_sad": 0.0, "hit_sad": 0.0}, weight=2)
    reporter.next()
    # ang 3/4, hap 1/2, sad absent: UA = (0.75 + 0.5) / 2
    assert unweighted_accuracy(reporter) == pytest.approx(0.625)
    assert unweighted_accuracy(SubReporter("valid", 1, 0)) is None


# --------------------------------------------------------------------------------------
# training with ESPnet's trainer
# --------------------------------------------------------------------------------------
WORDS = ["abc", "bad", "cab", "dead", "ace", "bed"]


def write_data(d: Path, n: int, seed: int):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    ids = [f"utt{seed}_{i:02d}" for i in range(n)]
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        shapes = []
        for i, u in enumerate(ids):
            t = int(rng.integers(16, 40))
            label = i % 4
            x = rng.normal(size=(t, 20)).astype(np.float32) + label  # separable classes
            w(u, x)
            shapes.append(f"{u} {t},20")
    (d / "speech_shape").write_text("\n".join(shapes) + "\n")
    (d / "emotion").write_text("".join(f"{u} {i % 4}\n" for i, u in enumerate(ids)))
    (d / "text").write_text("".join(
        f"{u} {WORDS[i % 6]} {WORDS[(i + 1) % 6]}\n" for i, u in enumerate(ids)))


def write_config(path: Path, ctc_weight: float):
    conf = dict(
        emotions=EMOTIONS,
        input_size=20,
        normalize="utterance_mvn",
        encoder="conformer",
        encoder_conf=dict(output_size=16, attention_heads=2, linear_units=32, num_blocks=1,
                          input_layer="conv2d", cnn_module_kernel=3, dropout_rate=0.0,
                          positional_dropout_rate=0.0, attention_dropout_rate=0.0),
        pooling="mean_max",
        classifier="ffn",
        classifier_conf=dict(hidden_units=16, dropout=0.0),
        model_conf=dict(ctc_weight=ctc_weight),
        optim="adam",
        optim_conf=dict(lr=0.005),
        best_model_criterion=[["valid", "acc", "max"], ["valid", "loss", "min"]],
        keep_nbest_models=1,
    )
    path.write_text(yaml.safe_dump(conf))


def run(data: Path, exp: Path, config: Path, *extra):
    cmd = ["--config", str(config), "--output_dir", str(exp), "--ngpu", "0",
           "--num_workers", "0", "--batch_size", "4", "--batch_type", "unsorted",
           "--seed", "0", "--iterator_type", "sequence"]
    for split in ("train", "valid"):
        cmd += [f"--{split}_data_path_and_name_and_type", f"{data}/{split}/feats.scp,speech,kaldi_ark",
                f"--{split}_data_path_and_name_and_type", f"{data}/{split}/emotion,emotion,text_int",
                f"--{split}_shape_file", f"{data}/{split}/speech_shape"]
    SERTask.main(cmd=cmd + list(extra))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ser_data")
    write_data(d / "train", 12, 1)
    write_data(d / "valid", 8, 2)
    return d


def epochs_logged(exp: Path):
    log = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    return log["reporter"]["epoch"]


def test_train_resume_and_reload(data, tmp_path):
    exp = tmp_path / "exp"
    config = tmp_path / "train.yaml"
    write_config(config, 0.0)
    run(data, exp, config, "--max_epoch", "2")
    assert (exp / "2epoch.pth").exists() and (exp / "valid.acc.best.pth").exists()
    assert epochs_logged(exp) == 2
    run(data, exp, config, "--max_epoch", "3", "--resume", "true")
    assert (exp / "3epoch.pth").exists() and epochs_logged(exp) == 3
    assert (exp / "valid.acc.best.pth").exists()

    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["emotions"] == EMOTIONS and saved["pooling"] == "mean_max"
    model, args = SERTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.best.pth")
    assert isinstance(model, ESPnetSERModel) and model.ctc is None
    reporter = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    assert not any("cer" in k or "wer" in k for e in reporter["stats"].values()
                   for section in e.values() for k in section)
    model.eval()
    speech, lens = batch()
    posterior, ids = model.predict(speech, lens)
    assert posterior.shape == (2, 4) and ids is None


def test_best_model_and_early_stopping_by_validation_ua(data, tmp_path):
    exp = tmp_path / "exp_ua"
    config = tmp_path / "train.yaml"
    write_config(config, 0.0)
    run(data, exp, config, "--max_epoch", "3", "--best_model_criterion", "valid,ua,max",
        "--patience", "1", "--early_stopping_criterion", "valid", "ua", "max")
    assert (exp / "valid.ua.best.pth").exists()
    log = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    last = log["epoch"]
    reported = log["stats"][last]["valid"]["ua"]
    # the reported UA is the mean per-class recall of that epoch's model on the whole set
    model, _ = SERTask.build_model_from_file(exp / "config.yaml", exp / f"{last}epoch.pth")
    model.eval()
    feats = dict(kaldiio.load_scp(str(data / "valid" / "feats.scp")))
    refs = dict(line.split() for line in (data / "valid" / "emotion").read_text().splitlines())
    hits, counts = np.zeros(4), np.zeros(4)
    for utt, x in feats.items():
        posterior, _ = model.predict(torch.from_numpy(np.array(x))[None], torch.tensor([len(x)]))
        ref = int(refs[utt])
        counts[ref] += 1
        hits[ref] += int(posterior.argmax()) == ref
    assert reported == pytest.approx(float(np.mean(hits[counts > 0] / counts[counts > 0])), abs=1e-6)
    # early stopping by UA: training stops once UA has not improved for one epoch
    values = [log["stats"][e]["valid"]["ua"] for e in range(1, last + 1)]
    if last < 3:
        assert max(values[:-1]) >= values[-1]


def test_train_with_ctc_and_text(data, tmp_path):
    exp = tmp_path / "exp_ctc"
    config = tmp_path / "train_ctc.yaml"
    write_config(config, 0.1)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(CHARS) + "\n")
    run(data, exp, config, "--max_epoch", "2", "--token_list", str(tokens),
        "--train_data_path_and_name_and_type", f"{data}/train/text,text,text",
        "--valid_data_path_and_name_and_type", f"{data}/valid/text,text,text")
    assert (exp / "valid.acc.best.pth").exists()
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["token_list"] == CHARS  # portable: the list itself, not the path
    model, _ = SERTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.best.pth")
    assert model.ctc is not None and model.ctc_weight == pytest.approx(0.1)
    stats = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    valid_stats = stats["reporter"]["stats"][2]["valid"]
    assert {"loss", "loss_ce", "loss_ctc", "acc"} <= set(valid_stats)
    model.eval()
    speech, lens = batch()
    posterior, ids = model.predict(speech, lens)
    assert posterior.shape == (2, 4) and len(ids) == 2

    # the CTC head's CER / WER in every validation epoch, never in training
    for epoch in (1, 2):
        epoch_stats = stats["reporter"]["stats"][epoch]
        assert {"cer_ctc", "wer_ctc"} <= set(epoch_stats["valid"])
        assert not any(k.endswith(("cer_ctc", "wer_ctc")) for k in epoch_stats["train"])
    # the epoch's WER is the WER over the whole set of that epoch's greedy CTC output
    import jiwer

    model, _ = SERTask.build_model_from_file(exp / "config.yaml", exp / "2epoch.pth")
    model.eval()
    feats = list(kaldiio.load_scp_sequential(str(data / "valid" / "feats.scp")))
    refs = dict(line.split(maxsplit=1) for line in (data / "valid" / "text").read_text().splitlines())
    hyps = []
    for start in range(0, len(feats), 4):  # the validation batches (--batch_size 4, unsorted)
        xs = [torch.from_numpy(np.array(x)) for _, x in feats[start:start + 4]]
        lens = torch.tensor([len(x) for x in xs])
        _, ids = model.predict(torch.nn.utils.rnn.pad_sequence(xs, batch_first=True), lens)
        hyps += ["".join(CHARS[i] for i in seq).replace("<space>", " ") for seq in ids]
    ref_texts = [refs[u] for u, _ in feats]
    assert valid_stats["wer_ctc"] == pytest.approx(jiwer.wer(ref_texts, hyps), abs=1e-6)
    # ESPnet's CER leaves spaces out
    no_space = [t.replace(" ", "") for t in ref_texts], [t.replace(" ", "") for t in hyps]
    assert valid_stats["cer_ctc"] == pytest.approx(jiwer.cer(*no_space), abs=1e-6)


def test_head_config_for_another_hidden_size_is_refused():
    args = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY_W2V2, freeze="all")
    args.pooling_conf = dict(input_size=768)  # written for a base-size checkpoint
    with pytest.raises(ValueError, match=r"pooling_conf.input_size is 768.*model_config=.*32-dim"):
        SERTask.build_model(args)
    args.pooling_conf = dict(input_size=32)  # the matching size is accepted
    model = SERTask.build_model(args)
    assert model.pooling.output_size() == 32


def test_config_yaml_keeps_the_resolved_decision(tmp_path):
    """SERTask.build_model records the decision taken from the checkpoint in the args that
    ESPnet writes to config.yaml, so a model decoded where the preprocessor config cannot be
    found (another machine, an uncached hub name) is normalised as in training."""
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
