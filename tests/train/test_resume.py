"""Crash-safe checkpoints and resume: a killed run continues to the same model."""

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.trainer import Trainer

from espnet_ser.tasks.asr_ser import ASRSERTask
from espnet_ser.train.trainer import ASRSERTrainer

REPO = Path(__file__).resolve().parents[2]


class _Task(ASRSERTask):
    trainer = ASRSERTrainer


# --------------------------------------------------------------------------------------
# In-process: a toy model through Trainer.run
# --------------------------------------------------------------------------------------
class ToyModel(AbsESPnetModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x, y, utt_id=None, **kwargs):
        loss = ((self.linear(x).squeeze(-1) - y) ** 2).mean()
        return loss, {"loss": loss.detach()}, torch.tensor(x.shape[0])

    def collect_feats(self, x, y, **kwargs):
        return {}


class ListIterFactory(AbsIterFactory):
    def build_iter(self, epoch, shuffle=None):
        g = torch.Generator().manual_seed(epoch)
        return [
            ([f"u{i}"], {"x": torch.randn(2, 4, generator=g), "y": torch.randn(2, generator=g)})
            for i in range(4)
        ]


def toy_run(out, max_epoch, trainer=ASRSERTrainer, resume=True):
    args = _Task.get_parser().parse_args(
        ["--output_dir", str(out), "--max_epoch", str(max_epoch), "--resume", str(resume),
         "--use_matplotlib", "false"]
    )
    torch.manual_seed(0)
    model = ToyModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer.run(
        model=model, optimizers=[optimizer], schedulers=[None],
        train_iter_factory=ListIterFactory(), valid_iter_factory=ListIterFactory(),
        plot_attention_iter_factory=None, trainer_options=trainer.build_options(args),
        distributed_option=DistributedOption(),
    )


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def temporaries(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


@pytest.fixture
def faulty_save(monkeypatch):
    """``torch.save`` that writes half of the bytes and fails for names containing a key."""
    real_save = torch.save
    armed = {}

    def save(obj, f, *args, **kwargs):
        name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else ""
        key = armed.get("key")
        if key and key in Path(name).name:
            buf = io.BytesIO()
            real_save(obj, buf)
            with open(name, "wb") as fh:
                fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            armed["hits"] = armed.get("hits", 0) + 1
            raise OSError(f"injected write failure for {name}")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return armed


def test_crash_while_writing_checkpoint_keeps_the_previous_one(tmp_path, faulty_save):
    out = tmp_path / "exp"
    toy_run(out, 2)
    before = (out / "checkpoint.pth").read_bytes()
    faulty_save["key"] = "checkpoint.pth"
    with pytest.raises(OSError, match="injected"):
        toy_run(out, 3)
    assert faulty_save["hits"] == 1
    assert (out / "checkpoint.pth").read_bytes() == before
    assert load(out / "checkpoint.pth")["reporter"]["epoch"] == 2
    assert temporaries(out) == []
    assert not (out / "3epoch.pth").exists()
    faulty_save["key"] = None
    toy_run(out, 3)  # resumes from epoch 2
    assert load(out / "checkpoint.pth")["reporter"]["epoch"] == 3


def test_plain_espnet_trainer_leaves_a_truncated_checkpoint(tmp_path, faulty_save):
    # The control: the same fault with ESPnet's own trainer corrupts checkpoint.pth.
    out = tmp_path / "exp"
    toy_run(out, 2, trainer=Trainer)
    faulty_save["key"] = "checkpoint.pth"
    with pytest.raises(OSError, match="injected"):
        toy_run(out, 3, trainer=Trainer)
    with pytest.raises(Exception):
        load(out / "checkpoint.pth")


def test_crash_while_writing_the_epoch_file_is_completed_on_resume(tmp_path, faulty_save):
    out = tmp_path / "exp"
    toy_run(out, 2)
    faulty_save["key"] = "3epoch.pth"
    with pytest.raises(OSError, match="injected"):
        toy_run(out, 3)
    assert not (out / "3epoch.pth").exists() and temporaries(out) == []
    assert load(out / "checkpoint.pth")["reporter"]["epoch"] == 3  # written just before
    faulty_save["key"] = None
    toy_run(out, 3)  # nothing left to train; the epoch's files are completed
    model = load(out / "checkpoint.pth")["model"]
    rebuilt = load(out / "3epoch.pth")
    assert all(torch.equal(model[k], rebuilt[k]) for k in model)
    assert os.readlink(out / "latest.pth") == "3epoch.pth"


def test_leftovers_of_a_killed_writer_are_cleaned_on_resume(tmp_path):
    out = tmp_path / "exp"
    toy_run(out, 2)
    (out / ".checkpoint.pth.k3j4.tmp").write_bytes(b"half")
    (out / ".latest.pth.123.lnk").symlink_to("1epoch.pth")
    (out / "2epoch.pth").unlink()
    (out / "latest.pth").unlink()
    (out / "valid.loss.best.pth").unlink()
    toy_run(out, 2)
    assert temporaries(out) == []
    assert os.readlink(out / "latest.pth") == "2epoch.pth"
    assert (out / "valid.loss.best.pth").resolve().name in {"1epoch.pth", "2epoch.pth"}
    model = load(out / "checkpoint.pth")["model"]
    assert all(torch.equal(model[k], load(out / "2epoch.pth")[k]) for k in model)


def test_run_restores_the_torch_name_in_espnet_modules(tmp_path):
    import espnet2.main_funcs.average_nbest_models as average_module
    import espnet2.train.trainer as trainer_module

    toy_run(tmp_path / "exp", 1)
    assert trainer_module.torch is torch and average_module.torch is torch


# --------------------------------------------------------------------------------------
# Subprocess: SIGKILL and --resume true with the real model
# --------------------------------------------------------------------------------------
def tiny_args(kit, d, out, max_epoch):
    return kit.tiny_args(d, out, batch_type="sorted") + [
        "--specaug", "specaug", "--specaug_conf", "apply_time_warp=false",
        "--specaug_conf", "time_mask_width_range=[0,5]",
        "--optim", "adam", "--optim_conf", "lr=0.005",
        "--scheduler", "warmuplr", "--scheduler_conf", "warmup_steps=10",
        "--max_epoch", str(max_epoch), "--keep_nbest_models", "1", "--resume", "true",
    ]


SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from espnet_ser.tasks.asr_ser import ASRSERTask
from espnet_ser.train.trainer import ASRSERTrainer


class Task(ASRSERTask):
    trainer = ASRSERTrainer


Task.main(cmd=sys.argv[1:])
"""


def start(tmp_path, args, log, env):
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "train.py"), *args], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )


def wait_for(proc, condition, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError("condition not reached")


def finish(proc, log, timeout=600):
    assert proc.wait(timeout=timeout) == 0, Path(log).read_text()[-3000:]


def test_sigkill_then_resume_gives_the_same_model(tmp_path, kit):
    max_epoch = 4
    d = kit.write_data(tmp_path, n_utts=128)
    (tmp_path / "train.py").write_text(SCRIPT)
    out_a, out_b = tmp_path / "exp_a", tmp_path / "exp_b"

    a = start(tmp_path, tiny_args(kit, d, out_a, max_epoch), tmp_path / "a.log", kit.env())
    finish(a, tmp_path / "a.log")

    rng = random.Random(1234)
    injected = survived = 0
    # 1. killed during the first epoch, before any checkpoint exists
    log = tmp_path / "b1.log"
    b = start(tmp_path, tiny_args(kit, d, out_b, max_epoch), log, kit.env())
    assert wait_for(b, lambda: "1/4epoch started" in log.read_text(errors="replace"))
    time.sleep(rng.uniform(0.0, 0.1))
    b.send_signal(signal.SIGKILL)
    b.wait()
    injected += 1
    first_killed_before_checkpoint = not (out_b / "checkpoint.pth").exists()
    # 2. resumed, then killed at a random moment after the first epoch's checkpoint
    log = tmp_path / "b2.log"
    b = start(tmp_path, tiny_args(kit, d, out_b, max_epoch), log, kit.env())
    assert wait_for(b, lambda: (out_b / "checkpoint.pth").exists())
    time.sleep(rng.uniform(0.0, 1.0))
    killed_alive = b.poll() is None
    b.send_signal(signal.SIGKILL)
    b.wait()
    injected += 1
    ckpt_epoch = load(out_b / "checkpoint.pth")["reporter"]["epoch"]
    # 3. resumed to the end
    log = tmp_path / "b3.log"
    b = start(tmp_path, tiny_args(kit, d, out_b, max_epoch), log, kit.env())
    finish(b, log)
    assert "The training was resumed using" in log.read_text()
    survived = injected

    assert first_killed_before_checkpoint and killed_alive
    assert 1 <= ckpt_epoch < max_epoch
    final_a, final_b = load(out_a / f"{max_epoch}epoch.pth"), load(out_b / f"{max_epoch}epoch.pth")
    assert final_a.keys() == final_b.keys()
    different = [k for k in final_a if not torch.equal(final_a[k], final_b[k])]
    assert different == [], f"{len(different)} tensors differ: {different[:5]}"
    ckpt_a, ckpt_b = load(out_a / "checkpoint.pth"), load(out_b / "checkpoint.pth")
    for sa, sb in zip(ckpt_a["optimizers"][0]["state"].values(),
                      ckpt_b["optimizers"][0]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ckpt_a["schedulers"] == ckpt_b["schedulers"]
    assert temporaries(out_b) == []
    assert survived == injected == 2
