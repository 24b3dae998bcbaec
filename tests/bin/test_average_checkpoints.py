"""Tests for the espnet_ser.bin.average_checkpoints entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from espnet2.train.reporter import Reporter

from espnet_ser.bin.average_checkpoints import get_parser, main

VALID_ACC = {1: 0.5, 2: 0.75, 3: 0.625, 4: 0.875, 5: 0.25}
VALID_LOSS = {1: 1.0, 2: 2.0, 3: 0.5, 4: 1.5, 5: 3.0}


def make_exp(exp_dir: Path, epochs=(1, 2, 3, 4, 5)) -> Path:
    """Fake experiment: {e}epoch.pth whose weights all equal e, checkpoint.pth with a
    Reporter holding VALID_ACC / VALID_LOSS."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    reporter = Reporter()
    for e in VALID_ACC:
        reporter.set_epoch(e)
        with reporter.observe("valid") as sub:
            sub.register({"acc": VALID_ACC[e], "loss": VALID_LOSS[e]})
            sub.next()
    for e in epochs:
        state = {"w": torch.full((2,), float(e)), "n": torch.tensor(e)}
        torch.save(state, exp_dir / f"{e}epoch.pth")
    checkpoint = {
        "model": {},
        "reporter": reporter.state_dict(),
        "optimizers": [],
        "schedulers": [],
        "scaler": None,
    }
    torch.save(checkpoint, exp_dir / "checkpoint.pth")
    return exp_dir


def test_parser_defaults():
    args = get_parser().parse_args(["--exp_dir", "exp/x"])
    assert args.metric == "valid.acc"
    assert args.nbest == 10
    assert args.mode is None
    assert args.out is None
    assert args.link is True


def test_main_nbest_by_metric(tmp_path):
    exp = make_exp(tmp_path / "exp" / "x")
    main(["--exp_dir", str(exp), "--metric", "valid.acc", "--nbest", "3"])
    out = exp / "valid.acc.ave_3best.pth"
    avg = torch.load(out)
    assert torch.equal(avg["w"], torch.full((2,), 3.0))  # epochs 4, 2, 3
    assert avg["n"].item() == 3
    info = json.loads((exp / "valid.acc.ave_3best.pth.json").read_text())
    assert info["epochs"] == [4, 2, 3]
    assert info["values"] == [0.875, 0.75, 0.625]
    assert info["mode"] == "max"
    assert os.readlink(exp / "valid.acc.ave.pth") == out.name


def test_main_loss_and_mode(tmp_path):
    exp = make_exp(tmp_path / "exp")
    main(["--exp_dir", str(exp), "--metric", "valid.loss", "--nbest", "2"])
    assert json.loads((exp / "valid.loss.ave_2best.pth.json").read_text())["epochs"] == [3, 1]
    # --mode overrides the inferred direction
    main(["--exp_dir", str(exp), "--metric", "valid.acc", "--nbest", "1", "--mode", "min",
          "--out", str(exp / "worst.pth"), "--link", "false"])
    assert torch.equal(torch.load(exp / "worst.pth")["w"], torch.full((2,), 5.0))
    assert not (exp / "valid.acc.ave.pth").exists()


def test_main_explicit_checkpoints(tmp_path):
    exp = make_exp(tmp_path / "exp")
    out = tmp_path / "ave.pth"
    main(["--checkpoints", str(exp / "1epoch.pth"), str(exp / "4epoch.pth"), "--out", str(out)])
    assert torch.equal(torch.load(out)["w"], torch.full((2,), 2.5))
    info = json.loads((tmp_path / "ave.pth.json").read_text())
    assert info["epochs"] == [1, 4]
    assert info["checkpoints"] == [str(exp / "1epoch.pth"), str(exp / "4epoch.pth")]


def test_main_argument_errors(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--checkpoints", "a.pth"])  # no --out
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([])  # neither --exp_dir nor --checkpoints
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", str(tmp_path), "--nbest", "0"])
    assert e.value.code == 2


def test_main_reports_errors(tmp_path, capsys):
    # main() installs its own stderr log handler (setup_logging), so read stderr.
    exp = make_exp(tmp_path / "exp", epochs=())
    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", str(exp)])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "ERROR" in err and str(exp) in err
    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", str(exp), "--metric", "valid.wer"])
    assert e.value.code == 1
    assert "available metrics: valid.acc, valid.loss" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    exp = make_exp(tmp_path / "exp", epochs=(2, 4))
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_ser.bin.average_checkpoints",
         "--exp_dir", str(exp), "--nbest", "10"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "only 2 of the requested 10" in proc.stderr
    assert torch.equal(torch.load(exp / "valid.acc.ave_10best.pth")["w"], torch.full((2,), 3.0))
