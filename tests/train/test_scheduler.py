"""``warmuplinearlr``: linear warm-up, linear decay to 0 at the run's last update, never rising."""

import io
import logging
import math

import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_pre_hook
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory

from espnet_ser.tasks.asr_ser import ASRSERTask
from espnet_ser.tasks.ser import SERTask
from espnet_ser.train.scheduler import (
    ScheduleLengthError,
    WarmupLinearLR,
    updates_per_epoch,
)
from espnet_ser.train.trainer import set_schedule_lengths

PEAK = 0.5


def optimizer(lr=PEAK):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def lrs_of_updates(opt, sched, n):
    """The learning rate each of the next ``n`` updates runs at (as ESPnet's trainer steps)."""
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def expected(k, warmup, total, peak=PEAK):
    """The specification: peak * k / W up to W, then linear to 0 at N, 0 after."""
    if k <= warmup:
        return peak * k / warmup
    return peak * max(0.0, (total - k) / (total - warmup))


# --------------------------------------------------------------------------------------
# the formula
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_epoch, epochs, ratio, warmup", [(5, 2, 0.3, 3), (7, 3, 0.1, 2),
                                                             (4, 1, 0.0, 0), (9, 1, 0.5, 5)])
def test_linear_warmup_then_linear_decay_to_zero_at_the_last_update(per_epoch, epochs, ratio,
                                                                    warmup):
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=ratio)
    line = sched.set_run_length(per_epoch, epochs)
    total = per_epoch * epochs
    assert line == (f"warmuplinearlr: {total} updates ({per_epoch} per epoch x {epochs} epochs), "
                    f"warm-up {warmup}")
    lrs = lrs_of_updates(opt, sched, total + 5)
    assert lrs == pytest.approx([expected(k, warmup, total) for k in range(1, total + 6)])
    if warmup:
        assert lrs[warmup - 1] == pytest.approx(PEAK) and lrs[0] == pytest.approx(PEAK / warmup)
    assert lrs[total - 1] == 0.0 and lrs[total - 2] > 0.0  # the last update of the run is at 0
    assert all(x == 0.0 for x in lrs[total:])  # and it stays there


def test_warmup_rounds_halves_up():
    sched = WarmupLinearLR(optimizer(), warmup_ratio=0.25)
    sched.set_run_length(5, 2)  # 2.5 -> 3
    assert (sched.total, sched.warmup) == (10, 3)


def test_each_parameter_group_follows_its_own_peak():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": [params[0]], "lr": 1.0}, {"params": [params[1]], "lr": 0.1}])
    sched = WarmupLinearLR(opt, warmup_ratio=0.5)
    sched.set_run_length(4, 1)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1.0, 0.1])  # update 2 = W


def test_explicit_total_steps_fixes_the_length():
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=0.1, total_steps=20)
    line = sched.set_run_length(3, 2)  # this run makes 6 updates; the schedule has 20
    assert (sched.total, sched.warmup) == (20, 2)
    assert line.startswith("warmuplinearlr: 20 updates (scheduler_conf.total_steps; this run: "
                           "3 per epoch x 2 epochs = 6)")
    lrs = lrs_of_updates(opt, sched, 25)
    assert lrs == pytest.approx([expected(k, 2, 20) for k in range(1, 26)])
    assert lrs[5] > 0.0  # the run stops before the schedule ends


def test_explicit_total_steps_works_without_the_trainer():
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=0.0, total_steps=4)
    assert lrs_of_updates(opt, sched, 5) == pytest.approx([0.375, 0.25, 0.125, 0.0, 0.0])


def test_a_schedule_never_given_its_length_fails_naming_the_fix():
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=0.1)  # as ESPnet builds it, before the iterators
    opt.step()
    with pytest.raises(ScheduleLengthError, match="total_steps"):
        sched.step()


# --------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------
def checkpoint_round_trip(opt, sched):
    buf = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def resumed(states, per_epoch, epochs, ratio=0.3):
    """A new run as ESPnet's trainer resumes it: built, given the length, then loaded."""
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=ratio)
    sched.set_run_length(per_epoch, epochs)
    opt.load_state_dict(states["optimizer"])
    sched.load_state_dict(states["scheduler"])
    return opt, sched


def test_state_dict_round_trip_continues_the_same_schedule():
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=0.3)
    sched.set_run_length(5, 2)
    lrs_of_updates(opt, sched, 4)
    states = checkpoint_round_trip(opt, sched)
    rest = lrs_of_updates(opt, sched, 8)
    opt2, sched2 = resumed(states, 5, 2)
    assert lrs_of_updates(opt2, sched2, 8) == pytest.approx(rest)
    assert rest[0] == pytest.approx(expected(5, 3, 10))


def test_an_extended_run_keeps_the_saved_length_and_never_rises(caplog):
    opt = optimizer()
    sched = WarmupLinearLR(opt, warmup_ratio=0.3)
    sched.set_run_length(5, 2)
    lrs_of_updates(opt, sched, 10)  # the whole run
    states = checkpoint_round_trip(opt, sched)
    with caplog.at_level(logging.WARNING):
        opt2, sched2 = resumed(states, 5, 4)  # max_epoch raised from 2 to 4
    assert sched2.total == 10 and "saved schedule of 10 updates" in caplog.text
    assert lrs_of_updates(opt2, sched2, 10) == [0.0] * 10


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan")])
def test_warmup_ratio_outside_0_1_is_refused_naming_the_field(ratio):
    with pytest.raises(ValueError, match=r"scheduler_conf\.warmup_ratio must be in \[0, 1\)"):
        WarmupLinearLR(optimizer(), warmup_ratio=ratio)


@pytest.mark.parametrize("total", [0, -5])
def test_total_steps_below_one_is_refused_naming_the_field(total):
    with pytest.raises(ValueError, match=r"scheduler_conf\.total_steps must be >= 1"):
        WarmupLinearLR(optimizer(), total_steps=total)


def test_a_warmup_covering_the_whole_run_is_refused():
    sched = WarmupLinearLR(optimizer(), warmup_ratio=0.5)
    with pytest.raises(ValueError, match="warmup_ratio 0.5 makes a warm-up of 1 of the 1 updates"):
        sched.set_run_length(1, 1)


def test_a_run_without_updates_is_refused():
    sched = WarmupLinearLR(optimizer(), warmup_ratio=0.1)
    with pytest.raises(ScheduleLengthError, match="no update"):
        sched.set_run_length(0, 3)


# --------------------------------------------------------------------------------------
# the run's count of updates
# --------------------------------------------------------------------------------------
def test_updates_per_epoch_counts_optimizer_steps_of_the_sampler():
    batches = [[f"u{i}"] for i in range(7)]
    assert updates_per_epoch(SequenceIterFactory(dataset=None, batches=batches), 1) == 7
    assert updates_per_epoch(SequenceIterFactory(dataset=None, batches=batches), 2) == 3
    limited = SequenceIterFactory(dataset=None, batches=batches, num_iters_per_epoch=200)
    assert updates_per_epoch(limited, 2) == 100  # --num_iters_per_epoch counts mini-batches


class _UnknownLength:
    def build_iter(self, epoch, shuffle=None):
        return iter(())


def test_an_iterator_of_unknown_length_needs_total_steps():
    options = type("Options", (), dict(accum_grad=1, max_epoch=2))()
    sched = WarmupLinearLR(optimizer(), warmup_ratio=0.1)
    with pytest.raises(ScheduleLengthError, match="num_iters_per_epoch, or give scheduler_conf"):
        set_schedule_lengths([sched], _UnknownLength(), options)
    fixed = WarmupLinearLR(optimizer(), warmup_ratio=0.1, total_steps=30)
    assert set_schedule_lengths([None, fixed], _UnknownLength(), options) == [
        "warmuplinearlr: 30 updates (scheduler_conf.total_steps; this run: the run's own count "
        "is not known), warm-up 3"
    ]


@pytest.mark.parametrize("task", [SERTask, ASRSERTask])
def test_registered_in_both_tasks(task):
    args = task.get_parser().parse_args(
        ["--scheduler", "warmuplinearlr", "--scheduler_conf", "warmup_ratio=0.2"])
    assert args.scheduler == "warmuplinearlr" and args.scheduler_conf == {"warmup_ratio": 0.2}


# --------------------------------------------------------------------------------------
# training through SERTask.main
# --------------------------------------------------------------------------------------
BATCH, ACCUM, EPOCHS, RATIO, LR = 2, 2, 3, 0.3, 0.01


def ser_config(path, **scheduler_conf):
    path.write_text(yaml.safe_dump(dict(
        emotions=["ang", "hap", "neu", "sad"], input_size=20, normalize=None,
        encoder="conformer",
        encoder_conf=dict(output_size=16, attention_heads=2, linear_units=16, num_blocks=1,
                          input_layer="linear", cnn_module_kernel=3),
        pooling="mean", classifier="linear", model_conf=dict(ctc_weight=0.0),
        optim="adam", optim_conf=dict(lr=LR), scheduler="warmuplinearlr",
        scheduler_conf=dict(warmup_ratio=RATIO, **scheduler_conf),
        batch_type="unsorted", batch_size=BATCH, accum_grad=ACCUM, max_epoch=EPOCHS,
        keep_nbest_models=1, num_workers=0,
    )))
    return path


def ser_data(kit, d, n_utts):
    """The training kit's tiny feature set, with the class of each utterance as ``emotion``."""
    d.mkdir()
    kit.write_data(d, n_utts=n_utts)
    utts = [line.split()[0] for line in (d / "shape").read_text().splitlines()]
    (d / "emotion").write_text("".join(f"{u} {i % 4}\n" for i, u in enumerate(utts)))
    return d


def train(d, exp, config, *extra):
    cmd = ["--config", str(config), "--output_dir", str(exp), "--ngpu", "0", "--seed", "0",
           "--use_matplotlib", "false", "--use_tensorboard", "false"]
    for split in ("train", "valid"):
        cmd += [f"--{split}_data_path_and_name_and_type", f"{d}/feats.scp,speech,kaldi_ark",
                f"--{split}_data_path_and_name_and_type", f"{d}/emotion,emotion,text_int",
                f"--{split}_shape_file", f"{d}/shape"]
    seen = []

    def record(opt, args, kwargs):
        seen.append(opt.param_groups[0]["lr"])

    handle = register_optimizer_step_pre_hook(record)
    try:
        SERTask.main(cmd=cmd + list(extra))
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("n_utts", [8, 14])
def test_training_sets_of_different_size_end_at_zero(kit, tmp_path, caplog, n_utts):
    d = ser_data(kit, tmp_path / "data", n_utts)
    config = ser_config(tmp_path / "train.yaml")
    # the unsorted sampler makes n_utts // BATCH mini-batches; ESPnet's trainer steps the
    # optimizer every ACCUM of them: 8 utterances -> 2 updates an epoch, 14 -> 3
    per_epoch = (n_utts // BATCH) // ACCUM
    total = per_epoch * EPOCHS
    warmup = math.floor(RATIO * total + 0.5)
    with caplog.at_level(logging.INFO):
        lrs = train(d, tmp_path / "exp", config)
    assert (f"warmuplinearlr: {total} updates ({per_epoch} per epoch x {EPOCHS} epochs), "
            f"warm-up {warmup}") in caplog.text
    assert len(lrs) == total
    assert lrs[-1] == 0.0
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(LR) and peak == warmup - 1
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))  # rises to the peak
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # then never rises
    assert lrs == pytest.approx([expected(k, warmup, total, LR) for k in range(1, total + 1)])

    # resumed with one more epoch: the saved schedule is kept, the learning rate stays 0
    more = train(d, tmp_path / "exp", config, "--max_epoch", str(EPOCHS + 1), "--resume", "true")
    assert more == [0.0] * per_epoch


def test_paper_length_through_num_iters_per_epoch(kit, tmp_path):
    d = ser_data(kit, tmp_path / "data", 8)
    config = ser_config(tmp_path / "train.yaml", total_steps=12)
    # "epochs" of 3 updates (6 mini-batches, cycling through the 4 of the set), stopped
    # after 2 of them: the schedule keeps its 12 updates
    lrs = train(d, tmp_path / "exp", config, "--num_iters_per_epoch", "6", "--max_epoch", "2")
    assert lrs == pytest.approx([expected(k, 4, 12, LR) for k in range(1, 7)])


def test_bad_warmup_ratio_through_the_task_names_the_field(kit, tmp_path):
    d = ser_data(kit, tmp_path / "data", 8)
    config = ser_config(tmp_path / "train.yaml")
    with pytest.raises(ValueError, match=r"scheduler_conf\.warmup_ratio"):
        train(d, tmp_path / "exp", config, "--scheduler_conf", "warmup_ratio=1.0")
