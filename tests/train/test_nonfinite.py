"""Non-finite loss or gradient: the update is skipped, counted, and limited."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.reporter import Reporter

from espnet_ser.tasks.asr_ser import ASRSERTask
from espnet_ser.train.trainer import ASRSERTrainer, NonFiniteTrainingError

REPO = Path(__file__).resolve().parents[2]


class _Task(ASRSERTask):
    trainer = ASRSERTrainer


class ToyModel(AbsESPnetModel):
    """Linear regression whose loss is made non-finite at chosen forward calls (1-based)."""

    def __init__(self, bad_steps=(), bad="nan"):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.bad_steps = set(bad_steps)
        self.bad = bad
        self.calls = 0
        self.params_seen = []  # parameters at the start of every forward

    def forward(self, x, y, utt_id=None, **kwargs):
        self.calls += 1
        self.params_seen.append([p.detach().clone() for p in self.parameters()])
        loss = ((self.linear(x).squeeze(-1) - y) ** 2).mean()
        if self.calls in self.bad_steps:
            if self.bad == "nan":
                loss = loss * float("nan")  # NaN loss and NaN gradients
            else:
                loss = loss + float("inf")  # infinite loss, finite gradients
        return loss, {"loss": loss.detach()}, torch.tensor(x.shape[0])

    def collect_feats(self, x, y, **kwargs):
        return {}


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        ([f"u{i}a", f"u{i}b"], {"x": torch.randn(2, 4, generator=g), "y": torch.randn(2, generator=g)})
        for i in range(n)
    ]


def options(tmp_path, *extra):
    args = _Task.get_parser().parse_args(["--output_dir", str(tmp_path), *extra])
    return ASRSERTrainer.build_options(args), DistributedOption()


def one_epoch(model, tmp_path, n=6, *extra):
    opts, dist = options(tmp_path, *extra)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    reporter = Reporter()
    reporter.set_epoch(1)
    with reporter.observe("train") as sub:
        invalid = ASRSERTrainer.train_one_epoch(
            model=model, iterator=batches(n), optimizers=[optimizer], schedulers=[None],
            scaler=None, reporter=sub, summary_writer=None, options=opts,
            distributed_option=dist,
        )
    return optimizer, reporter, invalid


def changed(model):
    """For each update k (1-based), whether it changed any parameter."""
    seen = model.params_seen + [[p.detach().clone() for p in model.parameters()]]
    return [
        any(not torch.equal(a, b) for a, b in zip(seen[k], seen[k + 1]))
        for k in range(len(seen) - 1)
    ]


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nonfinite_step_leaves_parameters_unchanged_and_is_counted(tmp_path, caplog, bad):
    # "inf": the loss is infinite but its gradients are finite; ESPnet alone would step.
    model = ToyModel(bad_steps={3}, bad=bad)
    with caplog.at_level(logging.INFO):
        optimizer, reporter, invalid = one_epoch(model, tmp_path)
    assert changed(model) == [True, True, False, True, True, True]
    assert not invalid
    state = optimizer.state[model.linear.weight]
    assert int(state["step"]) == 5  # Adam stepped 5 times, not 6
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert "update skipped (1 consecutive, 1 in this epoch, 1 in total" in caplog.text
    assert "1 of 6 updates in this epoch were skipped" in caplog.text
    assert reporter.get_value("train", "nonfinite_skipped", 1) == pytest.approx(1 / 6)


def test_finite_training_counts_nothing(tmp_path, caplog):
    model = ToyModel()
    with caplog.at_level(logging.INFO):
        _, reporter, _ = one_epoch(model, tmp_path)
    assert all(changed(model))
    assert "0 of 6 updates skipped" in caplog.text
    assert reporter.get_value("train", "nonfinite_skipped", 1) == 0.0


def test_consecutive_nonfinite_steps_stop_training(tmp_path):
    model = ToyModel(bad_steps={2, 3, 4})
    with pytest.raises(NonFiniteTrainingError, match="3 consecutive updates"):
        one_epoch(model, tmp_path, 6, "--max_nonfinite_steps", "3")
    assert model.calls == 4  # stopped at the third consecutive bad update
    assert changed(model)[1:] == [False, False, False]


def test_a_finite_step_resets_the_consecutive_count(tmp_path):
    model = ToyModel(bad_steps={1, 2, 4, 5})
    one_epoch(model, tmp_path, 6, "--max_nonfinite_steps", "3")
    assert changed(model) == [False, False, True, False, False, True]


def test_zero_means_never_stop(tmp_path):
    model = ToyModel(bad_steps=set(range(1, 7)))
    _, _, invalid = one_epoch(model, tmp_path, 6, "--max_nonfinite_steps", "0")
    assert invalid and not any(changed(model))


def test_negative_limit_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="max_nonfinite_steps"):
        options(tmp_path, "--max_nonfinite_steps", "-1")


def test_hooks_are_removed_after_the_epoch(tmp_path):
    model = ToyModel()
    optimizer, _, _ = one_epoch(model, tmp_path)
    assert "zero_grad" not in vars(optimizer)
    assert not model._forward_hooks
    assert not optimizer._optimizer_step_post_hooks


SCRIPT = """
import sys
import torch
from espnet_ser.tasks.asr_ser import ASRSERTask
from espnet_ser.train.trainer import ASRSERTrainer


class Task(ASRSERTask):
    trainer = ASRSERTrainer

    @classmethod
    def build_model(cls, args):
        model = super().build_model(args)

        def nan_loss(module, inputs, retval):  # every loss is NaN
            loss, stats, weight = retval
            return loss * float("nan"), stats, weight

        model.register_forward_hook(nan_loss)
        return model


Task.main(cmd=sys.argv[1:])
"""


def test_training_stops_with_a_clear_error_after_the_limit(tmp_path, kit):
    d = kit.write_data(tmp_path)
    script = tmp_path / "train_nan.py"
    script.write_text(SCRIPT)
    out = tmp_path / "exp"
    proc = subprocess.run(
        [sys.executable, str(script), *kit.tiny_args(d, out), "--max_epoch", "2",
         "--max_nonfinite_steps", "3"],
        capture_output=True, text=True, cwd=tmp_path, env=kit.env(), timeout=600,
    )
    assert proc.returncode != 0
    assert "NonFiniteTrainingError: 3 consecutive updates had a non-finite loss" in proc.stderr
    for k in (1, 2, 3):
        assert f"update skipped ({k} consecutive, {k} in this epoch" in proc.stderr
    assert not (out / "checkpoint.pth").exists()  # no epoch finished
