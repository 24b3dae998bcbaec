"""Personality interaction and fusion (eqs. 3-7 of the personality paper), the model without a
fusion computing exactly the plain SER model, the task's data checks, training and inference
with the ``personality`` data key."""

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from espnet_ser.bin import ser_inference
from espnet_ser.data.datadir import DataFileError, read_kaldi_map, read_personality
from espnet_ser.ser.inference import Speech2Emotion
from espnet_ser.ser.personality import TABLE2_ROWS, PersonalityFusion
from espnet_ser.tasks.ser import SERTask
from tests.ser.test_inference import make_exp
from tests.tasks.test_ser import CHARS, EMOTIONS, TINY_ENCODER, batch, write_config, write_data

H = 16


def fusion_conf(row):
    speaker, listener, fusion = TABLE2_ROWS[row]
    return dict(speaker=speaker, listener=listener, fusion=fusion)


def fusion(row, seed=0):
    torch.manual_seed(seed)
    return PersonalityFusion(H, **fusion_conf(row)).eval()


def traits(n, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(1, 7, size=(n, 10))).float()


def frames(n=3, t=9, seed=0):
    return torch.randn(n, t, H, generator=torch.Generator().manual_seed(seed))


def build(row=None, ctc_weight=0.0, data_names=None):
    parser = SERTask.get_parser()
    args = parser.parse_args(["--emotions", *EMOTIONS, "--input_size", "20",
                              "--encoder", "transformer", "--pooling", "mean"])
    args.encoder_conf = dict(TINY_ENCODER)
    args.token_list = CHARS if ctc_weight > 0 else None
    args.model_conf = dict(ctc_weight=ctc_weight)
    if row:
        args.personality_fusion, args.personality_fusion_conf = "attention", fusion_conf(row)
    if data_names is not None:
        args.train_data_path_and_name_and_type = [[f"x/{n}", n, "t"] for n in data_names]
    torch.manual_seed(0)
    return SERTask.build_model(args)


def test_table2_has_the_papers_13_rows_and_each_builds():
    assert sorted(TABLE2_ROWS) == list(range(13))
    combos = {v for v in TABLE2_ROWS.values() if v is not None}
    assert len(combos) == 12  # 12 distinct fusions and the baseline
    for row in range(1, 13):
        out = fusion(row)(frames(), torch.tensor([9, 5, 7]), traits(3))
        assert out.shape == (3, 9, H) and torch.isfinite(out).all()


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="fuses nothing"):
        PersonalityFusion(H, speaker="none", listener="none")
    with pytest.raises(ValueError, match="fusion must be one of"):
        PersonalityFusion(H, speaker="projected", listener="projected")
    with pytest.raises(ValueError, match="leave it unset"):
        PersonalityFusion(H, speaker="projected", listener="none", fusion="parallel")
    with pytest.raises(ValueError, match="speaker must be one of"):
        PersonalityFusion(H, speaker="q_s")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        PersonalityFusion(12, speaker="projected")
    with pytest.raises(ValueError, match=r"personality must be \(batch, 10\)"):
        fusion(1)(frames(), torch.tensor([9, 9, 9]), traits(3)[:, :5])


def test_the_context_is_added_to_every_frame_and_padding_is_ignored():
    f, lens = frames(), torch.tensor([9, 4, 6])
    for row in (1, 3, 4, 8, 11):
        m = fusion(row)
        out = m(f, lens, traits(3))
        if TABLE2_ROWS[row][2] != "sequential":  # one context vector for all frames
            delta = out - f
            assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-6)
        # other values in the padding frames, more padding: the valid frames are unchanged
        padded = torch.cat([f, torch.randn(3, 5, H)], dim=1)
        for b, n in enumerate(lens.tolist()):
            padded[b, n:] = 100.0
        again = m(padded, lens, traits(3))
        for b, n in enumerate(lens.tolist()):
            assert torch.allclose(again[b, :n], out[b, :n], atol=1e-5)


def attend(mha, q, f):
    return mha(q, f, f, need_weights=False)[0]


def test_sequential_and_parallel_fusion_follow_eqs_6_and_7():
    f, lens, p = frames(t=6), torch.tensor([6, 6, 6]), traits(3)
    seq = fusion(4)
    q_s, q_l = seq.queries(p)
    f_s = f + attend(seq.fuse[0], q_s, f)
    assert torch.allclose(seq(f, lens, p), f_s + attend(seq.fuse[1], q_l, f_s), atol=1e-6)
    par = fusion(3)
    q_s, q_l = par.queries(p)
    mean = (attend(par.fuse[0], q_s, f) + attend(par.fuse[0], q_l, f)) / 2
    assert len(par.fuse) == 1
    assert torch.allclose(par(f, lens, p), f + mean, atol=1e-6)


def test_interaction_uses_the_other_side_and_is_a_linear_map_of_it():
    p, other = traits(2), traits(2, seed=1)
    other[:, :5] = p[:, :5]  # same speaker, another listener
    plain, inter = fusion(1), fusion(5)
    assert torch.equal(plain.queries(p)[0], plain.queries(other)[0])
    assert not torch.allclose(inter.queries(p)[0], inter.queries(other)[0])
    # one key: the attention weight is 1, so q'_s = q_s + W_o (W_v q_l + b_v) + b_o (eq. 3)
    mha = inter.listener_to_speaker
    w_v, b_v = mha.in_proj_weight[2 * H:], mha.in_proj_bias[2 * H:]
    q_s = inter.proj_speaker(p[:, None, :5])
    q_l = inter.proj_listener(p[:, None, 5:])
    expected = q_s + mha.out_proj(q_l @ w_v.T + b_v)
    assert torch.allclose(inter.queries(p)[0], expected, atol=1e-5)
    # row 6: q'_l = q_l + MHA(q_l, q_s, q_s) (eq. 4), only the listener fused
    row6 = fusion(6)
    assert row6.listener_to_speaker is None and row6.speaker_to_listener is not None
    assert len(row6.queries(p)) == 1


def test_no_fusion_is_exactly_the_plain_model():
    speech, lens = batch()
    target = torch.tensor([1, 3])
    plain = build(ctc_weight=0.0).eval()
    assert plain.personality_fusion is None
    assert not any("personality" in k for k in plain.state_dict())
    loss, stats, _ = plain(speech, lens, target)
    loss_p, stats_p, _ = plain(speech, lens, target, personality=traits(2))
    assert torch.equal(loss, loss_p) and torch.equal(stats["acc"], stats_p["acc"])

    # a fusion whose output projections are zero adds nothing: the same logits as the plain
    # model with the same weights, so the fusion sits between the encoder and the pooling only
    fused = build(row=8, data_names=["speech", "emotion", "personality"]).eval()
    missing, unexpected = fused.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("personality_fusion.") for k in missing)
    for mha in fused.personality_fusion.fuse:
        torch.nn.init.zeros_(mha.out_proj.weight)
        torch.nn.init.zeros_(mha.out_proj.bias)
    enc, enc_lens = plain.encode(speech, lens)
    assert torch.equal(fused.utterance_logits(enc, enc_lens, traits(2)),
                       plain.utterance_logits(enc, enc_lens))
    with pytest.raises(ValueError, match="needs 'personality'"):
        fused(speech, lens, target)


def test_ctc_reads_the_encoder_frames_not_the_fused_ones():
    speech, lens = batch()
    target = torch.tensor([0, 2])
    text = torch.tensor([[3, 4, 5], [5, 3, -1]])
    text_lens = torch.tensor([3, 2])
    plain = build(ctc_weight=0.1).train()
    fused = build(row=4, ctc_weight=0.1, data_names=["personality"]).train()
    fused.load_state_dict(plain.state_dict(), strict=False)
    _, s_plain, _ = plain(speech, lens, target, text=text, text_lengths=text_lens)
    _, s_fused, _ = fused(speech, lens, target, text=text, text_lengths=text_lens,
                          personality=traits(2))
    assert torch.equal(s_plain["loss_ctc"], s_fused["loss_ctc"])
    assert not torch.equal(s_plain["loss_ce"], s_fused["loss_ce"])


def test_a_fusion_without_personality_data_is_refused_before_training():
    with pytest.raises(ValueError, match="gives no 'personality'"):
        build(row=1, data_names=["speech", "emotion"])
    assert build(row=1, data_names=["speech", "emotion", "personality"]) is not None
    assert "personality" in SERTask.optional_data_names(True, False)
    assert "personality" in SERTask.optional_data_names(False, True)


def write_personality(d: Path, seed: int) -> Path:
    utts = list(read_kaldi_map(d / "emotion"))
    values = traits(len(utts), seed).numpy()
    (d / "utt2personality").write_text("".join(
        f"{u} {' '.join(f'{v:.3f}' for v in row)}\n" for u, row in zip(utts, values)))
    return d / "utt2personality"


def test_train_and_classify_with_personalities(tmp_path, capsys):
    data = tmp_path / "data"
    for split, n, seed in (("train", 8, 1), ("valid", 4, 2)):
        write_data(data / split, n, seed)
        write_personality(data / split, seed)
    config = tmp_path / "train.yaml"
    write_config(config, 0.0)
    conf = yaml.safe_load(config.read_text())
    # no subsampling: a padded batch computes what each utterance alone does
    conf.update(personality_fusion="attention", personality_fusion_conf=fusion_conf(8),
                encoder="transformer", encoder_conf=dict(TINY_ENCODER, input_layer="linear"))
    config.write_text(yaml.safe_dump(conf))
    exp = tmp_path / "exp"
    cmd = ["--config", str(config), "--output_dir", str(exp), "--ngpu", "0", "--num_workers",
           "0", "--batch_size", "4", "--batch_type", "unsorted", "--seed", "0",
           "--iterator_type", "sequence",
           "--max_epoch", "1"]
    for split in ("train", "valid"):
        d = data / split
        cmd += [f"--{split}_data_path_and_name_and_type", f"{d}/feats.scp,speech,kaldi_ark",
                f"--{split}_data_path_and_name_and_type", f"{d}/emotion,emotion,text_int",
                f"--{split}_shape_file", f"{d}/speech_shape"]
    with pytest.raises(ValueError, match="gives no 'personality'"):
        SERTask.main(cmd=cmd)
    assert not (exp / "1epoch.pth").exists()
    for split in ("train", "valid"):
        cmd += [f"--{split}_data_path_and_name_and_type",
                f"{data / split}/utt2personality,personality,text_float"]
    SERTask.main(cmd=cmd)
    model, _ = SERTask.build_model_from_file(exp / "config.yaml", exp / "1epoch.pth")
    assert model.personality_fusion.speaker == "interacted"

    # inference: the CLI reads utt2personality; the traits change the posteriors
    scp, out = data / "valid" / "feats.scp", tmp_path / "decode"
    base = ["--exp_dir", str(exp), "--model_file", str(exp / "1epoch.pth"),
            "--speech_scp", str(scp), "--output_dir", str(out)]
    with pytest.raises(SystemExit):
        ser_inference.main(base)
    assert "give --personality" in capsys.readouterr().err and not (out / "emotion").exists()
    base += ["--personality", str(data / "valid" / "utt2personality")]
    ser_inference.main(base + ["--batch_size", "2"])
    ser_inference.main(base + ["--merge"])
    got = read_kaldi_map(out / "posterior")
    s2e = Speech2Emotion.from_exp_dir(exp, exp / "1epoch.pth")
    table = read_personality(data / "valid" / "utt2personality")
    for utt, rx in read_kaldi_map(scp).items():
        x = np.array(kaldiio.load_mat(rx))
        alone = s2e(x, table[utt])
        shown = {k: float(v) for k, v in (i.split(":") for i in got[utt].split())}
        assert shown == pytest.approx(alone.posterior, abs=1e-4)
        other = s2e(x, table[utt][::-1].copy())
        assert other.posterior != pytest.approx(alone.posterior, abs=1e-6)
    # an utterance without traits fails alone
    results = s2e.predict_many([(u, lambda rx=rx: kaldiio.load_mat(rx))
                                for u, rx in read_kaldi_map(scp).items()],
                               personality={u: v for u, v in list(table.items())[1:]})
    first = next(iter(table))
    assert isinstance(results[first], Exception) and "no personality" in str(results[first])
    assert sum(isinstance(r, Exception) for r in results.values()) == 1


def test_plain_model_inference_ignores_personality(tmp_path):
    model = make_exp(tmp_path / "exp", ctc=False)
    s2e = Speech2Emotion.from_exp_dir(tmp_path / "exp", tmp_path / "exp" / "model.pth")
    assert not s2e.needs_personality
    x = np.random.default_rng(0).normal(size=(20, 20)).astype(np.float32)
    assert s2e(x).posterior == s2e(x, np.ones(10, np.float32)).posterior
    assert model.personality_fusion is None


def test_read_personality_names_file_and_line(tmp_path):
    path = tmp_path / "utt2personality"
    path.write_text("a " + " ".join(["4"] * 10) + "\nb 1 2 3\n")
    with pytest.raises(DataFileError, match=r"utt2personality:2: utterance b: expected 10"):
        read_personality(path)
    path.write_text("a " + " ".join(["4"] * 9) + " x\n")
    with pytest.raises(DataFileError, match=r":1: utterance a: field 10 'x'"):
        read_personality(path)
    path.write_text("a " + " ".join(["4.5"] * 10) + "\n")
    assert read_personality(path)["a"].tolist() == [4.5] * 10
