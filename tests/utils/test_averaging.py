"""Tests for espnet_ser.utils.averaging: reporter metrics, n-best selection, averaging."""

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from espnet2.train.reporter import Reporter

from espnet_ser.utils.averaging import (
    MetricNotFoundError,
    average_checkpoint_files,
    average_nbest_checkpoints,
    average_state_dicts,
    find_epoch_checkpoints,
    infer_mode,
    read_epoch_metrics,
    select_nbest,
)

# Known per-epoch validation statistics. acc ties between epochs 2 and 5.
VALID_ACC = {1: 0.5, 2: 0.75, 3: 0.625, 4: 0.875, 5: 0.75}
VALID_LOSS = {1: 1.0, 2: 2.0, 3: 0.5, 4: 1.5, 5: 3.0}
TRAIN_LOSS = {1: 4.0, 2: 3.0, 3: 2.0, 4: 1.5, 5: 1.25}


def make_model():
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


def epoch_state(epoch):
    """State dict of make_model() whose float entries all equal `epoch`."""
    state = make_model().state_dict()
    for key, t in state.items():
        if t.is_floating_point():
            t.fill_(float(epoch))
        else:  # BatchNorm's num_batches_tracked
            t.fill_(epoch)
    return state


def make_exp(exp_dir: Path, epochs=(1, 2, 3, 4, 5)) -> Path:
    """A fake ESPnet experiment dir: {e}epoch.pth + checkpoint.pth with a real Reporter."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    reporter = Reporter()
    for e in sorted(VALID_ACC):
        reporter.set_epoch(e)
        with reporter.observe("train") as sub:
            sub.register({"loss": TRAIN_LOSS[e]})
            sub.next()
        with reporter.observe("valid") as sub:
            # two batches whose mean is the known value
            sub.register({"acc": VALID_ACC[e] - 0.125, "loss": VALID_LOSS[e] - 0.5})
            sub.next()
            sub.register({"acc": VALID_ACC[e] + 0.125, "loss": VALID_LOSS[e] + 0.5})
            sub.next()
    for e in epochs:
        torch.save(epoch_state(e), exp_dir / f"{e}epoch.pth")
    torch.save(
        {
            "model": epoch_state(5),
            "reporter": reporter.state_dict(),
            "optimizers": [],
            "schedulers": [],
            "scaler": None,
        },
        exp_dir / "checkpoint.pth",
    )
    return exp_dir


@pytest.fixture
def exp(tmp_path):
    return make_exp(tmp_path / "exp" / "x")


# --------------------------------------------------------------------------------------
# read_epoch_metrics
# --------------------------------------------------------------------------------------
def test_read_epoch_metrics_values(exp):
    assert read_epoch_metrics(exp, "valid.acc") == VALID_ACC
    assert read_epoch_metrics(exp, "valid.loss") == VALID_LOSS
    assert read_epoch_metrics(exp, "train.loss") == TRAIN_LOSS
    assert read_epoch_metrics(exp) == VALID_ACC  # default metric


def test_read_epoch_metrics_unknown_metric_lists_available(exp):
    with pytest.raises(MetricNotFoundError) as e:
        read_epoch_metrics(exp, "valid.cer_ctc")
    msg = str(e.value)
    assert "valid.cer_ctc" in msg
    assert "checkpoint.pth" in msg
    for name in ("train.loss", "valid.acc", "valid.loss"):
        assert name in msg
    assert "valid.time" not in msg and "total_count" not in msg


def test_read_epoch_metrics_bookkeeping_key_is_not_a_metric(exp):
    with pytest.raises(KeyError):
        read_epoch_metrics(exp, "valid.total_count")


def test_read_epoch_metrics_bad_name(exp):
    with pytest.raises(ValueError, match="<phase>.<key>"):
        read_epoch_metrics(exp, "acc")


def test_read_epoch_metrics_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "checkpoint.pth")):
        read_epoch_metrics(tmp_path, "valid.acc")


def test_read_epoch_metrics_not_a_training_checkpoint(tmp_path):
    torch.save(epoch_state(1), tmp_path / "checkpoint.pth")
    with pytest.raises(ValueError, match="no 'reporter' entry"):
        read_epoch_metrics(tmp_path, "valid.acc")


# --------------------------------------------------------------------------------------
# infer_mode / select_nbest
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metric, mode",
    [
        ("valid.acc", "max"),
        ("train.acc", "max"),
        ("valid.ccc", "max"),
        ("valid.loss", "min"),
        ("valid.loss_att", "min"),
        ("valid.cer_ctc", "min"),
        ("valid.wer", "min"),
        ("valid.cer", "min"),
    ],
)
def test_infer_mode(metric, mode):
    assert infer_mode(metric) == mode


def test_select_nbest_max_tie_prefers_later_epoch():
    assert select_nbest(VALID_ACC, 3, "max") == [(4, 0.875), (5, 0.75), (2, 0.75)]


def test_select_nbest_min():
    assert select_nbest(VALID_LOSS, 2, "min") == [(3, 0.5), (1, 1.0)]


def test_select_nbest_fewer_than_n_and_nan():
    metrics = {1: 0.5, 2: float("nan"), 3: 0.25}
    assert select_nbest(metrics, 10, "max") == [(1, 0.5), (3, 0.25)]
    assert select_nbest(metrics, 10, "min") == [(3, 0.25), (1, 0.5)]


@pytest.mark.parametrize("n, mode", [(0, "max"), (2, "best"), (2, None)])
def test_select_nbest_rejects_bad_arguments(n, mode):
    with pytest.raises(ValueError):
        select_nbest(VALID_ACC, n, mode)


# --------------------------------------------------------------------------------------
# average_state_dicts
# --------------------------------------------------------------------------------------
def test_average_state_dicts_values(exp):
    avg = average_state_dicts([exp / "4epoch.pth", exp / "5epoch.pth", exp / "2epoch.pth"])
    assert list(avg) == list(make_model().state_dict())
    expected = torch.tensor(11.0 / 3.0, dtype=torch.float32)  # (4 + 5 + 2) / 3
    for key, t in avg.items():
        if key.endswith("num_batches_tracked"):
            assert t.dtype == torch.int64
            assert t.item() == 3  # floor((4 + 5 + 2) / 3)
        else:
            assert t.dtype == torch.float32
            assert torch.equal(t, expected.expand_as(t))


def test_average_state_dicts_accumulates_in_float64(tmp_path):
    # 60000 + 60000 overflows float16 (max 65504); the mean does not.
    for i in (1, 2):
        torch.save({"w": torch.full((2,), 60000.0, dtype=torch.float16)}, tmp_path / f"{i}.pth")
    avg = average_state_dicts([tmp_path / "1.pth", tmp_path / "2.pth"])
    assert avg["w"].dtype == torch.float16
    assert avg["w"].tolist() == [60000.0, 60000.0]
    # and float32 keeps precision that a float32 running sum would lose
    torch.save({"w": torch.tensor([1.0e8])}, tmp_path / "a.pth")
    torch.save({"w": torch.tensor([1.0])}, tmp_path / "b.pth")
    torch.save({"w": torch.tensor([-1.0e8])}, tmp_path / "c.pth")
    avg = average_state_dicts([tmp_path / n for n in ("a.pth", "b.pth", "c.pth")])
    assert avg["w"].item() == pytest.approx(1.0 / 3.0)


def test_average_state_dicts_single_file_is_identity(exp):
    avg = average_state_dicts([exp / "3epoch.pth"])
    for key, t in epoch_state(3).items():
        assert torch.equal(avg[key], t)


def test_average_state_dicts_key_mismatch_names_file_and_key(exp, tmp_path):
    bad = epoch_state(1)
    bad["extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as e:
        average_state_dicts([exp / "1epoch.pth", tmp_path / "bad.pth"])
    assert str(tmp_path / "bad.pth") in str(e.value)
    assert "extra.weight" in str(e.value)

    missing = epoch_state(1)
    del missing["0.bias"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError) as e:
        average_state_dicts([exp / "1epoch.pth", tmp_path / "missing.pth"])
    assert str(tmp_path / "missing.pth") in str(e.value)
    assert "0.bias" in str(e.value)


def test_average_state_dicts_shape_mismatch_names_file_and_key(exp, tmp_path):
    bad = epoch_state(1)
    bad["0.weight"] = torch.zeros(5, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as e:
        average_state_dicts([exp / "1epoch.pth", tmp_path / "bad.pth"])
    assert str(tmp_path / "bad.pth") in str(e.value)
    assert "'0.weight'" in str(e.value)
    assert "(5, 3)" in str(e.value)


def test_average_state_dicts_bad_inputs(exp, tmp_path):
    with pytest.raises(ValueError):
        average_state_dicts([])
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        average_state_dicts([exp / "1epoch.pth", tmp_path / "nothere.pth"])
    # a full training checkpoint is not a state dict
    with pytest.raises(ValueError, match="checkpoint.pth"):
        average_state_dicts([exp / "checkpoint.pth"])
    torch.save({"w": torch.zeros(1), "step": 3}, tmp_path / "mixed.pth")
    with pytest.raises(ValueError, match="'step'"):
        average_state_dicts([tmp_path / "mixed.pth"])


# --------------------------------------------------------------------------------------
# average_nbest_checkpoints / average_checkpoint_files
# --------------------------------------------------------------------------------------
def test_average_nbest_by_acc(exp):
    info = average_nbest_checkpoints(exp, "valid.acc", nbest=2)
    out = exp / "valid.acc.ave_2best.pth"
    assert info["epochs"] == [4, 5]
    avg = torch.load(out)
    assert torch.equal(avg["0.weight"], torch.full((2, 3), 4.5))
    assert avg["1.num_batches_tracked"].item() == 4  # floor(9 / 2)
    # <metric>.ave.pth points at the averaged model
    link = exp / "valid.acc.ave.pth"
    assert link.is_symlink() and os.readlink(link) == out.name
    assert torch.equal(torch.load(link)["0.weight"], avg["0.weight"])


def test_average_nbest_sidecar_json(exp):
    average_nbest_checkpoints(exp, "valid.acc", nbest=3)
    info = json.loads((exp / "valid.acc.ave_3best.pth.json").read_text())
    assert info["metric"] == "valid.acc"
    assert info["mode"] == "max"
    assert info["nbest"] == 3
    assert info["num_averaged"] == 3
    assert info["epochs"] == [4, 5, 2]
    assert info["values"] == [0.875, 0.75, 0.75]
    assert info["checkpoints"] == [str(exp / f"{e}epoch.pth") for e in (4, 5, 2)]
    assert info["output"] == str(exp / "valid.acc.ave_3best.pth")


def test_average_nbest_by_loss_infers_min(exp):
    info = average_nbest_checkpoints(exp, "valid.loss", nbest=2)
    assert info["mode"] == "min"
    assert info["epochs"] == [3, 1]
    avg = torch.load(exp / "valid.loss.ave_2best.pth")
    assert torch.equal(avg["1.running_var"], torch.full((2,), 2.0))
    assert (exp / "valid.loss.ave.pth").resolve() == (exp / "valid.loss.ave_2best.pth")


def test_average_nbest_explicit_mode_overrides(exp):
    info = average_nbest_checkpoints(exp, "valid.acc", nbest=1, mode="min")
    assert info["epochs"] == [1]
    assert torch.equal(torch.load(exp / "valid.acc.ave_1best.pth")["0.bias"], torch.ones(2))


def test_average_nbest_skips_missing_epoch_files(tmp_path, caplog):
    exp = make_exp(tmp_path / "exp", epochs=(1, 2, 3, 5))  # best epoch 4 was removed
    with caplog.at_level(logging.INFO):
        info = average_nbest_checkpoints(exp, "valid.acc", nbest=2)
    assert info["epochs"] == [5, 2]
    avg = torch.load(exp / "valid.acc.ave_2best.pth")
    assert torch.equal(avg["0.weight"], torch.full((2, 3), 3.5))
    assert "[4]" in caplog.text


def test_average_nbest_fewer_than_n_warns(tmp_path, caplog):
    exp = make_exp(tmp_path / "exp", epochs=(2, 3))
    with caplog.at_level(logging.WARNING):
        info = average_nbest_checkpoints(exp, "valid.acc", nbest=10)
    assert info["epochs"] == [2, 3]
    assert info["num_averaged"] == 2
    assert "only 2 of the requested 10" in caplog.text
    avg = torch.load(exp / "valid.acc.ave_10best.pth")
    assert torch.equal(avg["1.weight"], torch.full((2,), 2.5))


def test_average_nbest_no_epoch_files_is_an_error(tmp_path):
    exp = make_exp(tmp_path / "exp", epochs=())
    with pytest.raises(FileNotFoundError) as e:
        average_nbest_checkpoints(exp, "valid.acc", nbest=2)
    assert str(exp) in str(e.value)
    assert not list(exp.glob("*.ave*"))


def test_average_nbest_custom_out(exp, tmp_path):
    out = tmp_path / "models" / "best.pth"
    average_nbest_checkpoints(exp, "valid.acc", nbest=2, out=out)
    assert out.is_file() and (tmp_path / "models" / "best.pth.json").is_file()
    assert os.readlink(tmp_path / "models" / "valid.acc.ave.pth") == "best.pth"
    assert not (exp / "valid.acc.ave_2best.pth").exists()


def test_failed_average_keeps_previous_output(exp, tmp_path):
    average_nbest_checkpoints(exp, "valid.acc", nbest=2)
    out = exp / "valid.acc.ave_2best.pth"
    before = out.read_bytes()
    bad = epoch_state(5)
    bad["0.weight"] = torch.zeros(1)
    torch.save(bad, exp / "5epoch.pth")
    with pytest.raises(ValueError, match="5epoch.pth"):
        average_nbest_checkpoints(exp, "valid.acc", nbest=2)
    assert out.read_bytes() == before
    leftovers = [p.name for p in exp.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_average_checkpoint_files(exp, tmp_path):
    out = tmp_path / "ave.pth"
    info = average_checkpoint_files([exp / "1epoch.pth", exp / "3epoch.pth"], out)
    assert torch.equal(torch.load(out)["0.weight"], torch.full((2, 3), 2.0))
    sidecar = json.loads((tmp_path / "ave.pth.json").read_text())
    assert sidecar == info
    assert sidecar["epochs"] == [1, 3]
    assert sidecar["metric"] is None and sidecar["values"] is None


def test_find_epoch_checkpoints(tmp_path):
    exp = make_exp(tmp_path / "exp", epochs=(3, 1, 10))
    (exp / "latest.pth").symlink_to("10epoch.pth")
    assert find_epoch_checkpoints(exp) == {e: exp / f"{e}epoch.pth" for e in (1, 3, 10)}


# --------------------------------------------------------------------------------------
# average_state_dicts: integer buffers, tied weights, mismatches
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, values, expected",
    [
        (torch.int8, [100, 120, 127], 115),  # the int8 sum (347) would overflow
        (torch.uint8, [255, 255], 255),
        (torch.int16, [-3, 0], -2),  # floor(-1.5)
        (torch.int32, [7, 8], 7),  # floor(7.5)
        (torch.int64, [2**40, 2**40 + 2], 2**40 + 1),
    ],
)
def test_average_state_dicts_integer_buffers_floor_mean(tmp_path, dtype, values, expected):
    paths = []
    for i, v in enumerate(values):
        state = {"w": torch.full((2,), float(i)), "count": torch.tensor(v, dtype=dtype)}
        torch.save(state, tmp_path / f"{i}.pth")
        paths.append(tmp_path / f"{i}.pth")
    avg = average_state_dicts(paths)
    assert avg["count"].dtype == dtype
    assert avg["count"].item() == expected


class TiedModel(torch.nn.Module):
    """An embedding tied with the output layer, as in a decoder."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(4, 3)
        self.output = torch.nn.Linear(3, 4)
        self.output.weight = self.embed.weight
        self.norm = torch.nn.BatchNorm1d(3)


def save_tied(path, value, bias=0.0):
    model = TiedModel()
    with torch.no_grad():
        model.embed.weight.fill_(value)
        model.output.bias.fill_(bias)
    torch.save(model.state_dict(), path)
    return path


def test_average_state_dicts_tied_weights_counted_once(tmp_path):
    paths = [save_tied(tmp_path / f"{v}.pth", v, bias=-v) for v in (1.0, 2.0, 6.0)]
    loaded = torch.load(paths[0], weights_only=True)
    # the tie is visible in the file: both keys share one storage
    assert loaded["embed.weight"].data_ptr() == loaded["output.weight"].data_ptr()

    avg = average_state_dicts(paths)
    assert torch.equal(avg["embed.weight"], torch.full((4, 3), 3.0))  # (1 + 2 + 6) / 3
    assert torch.equal(avg["output.bias"], torch.full((4,), -3.0))
    assert avg["output.weight"] is avg["embed.weight"]

    out = tmp_path / "avg.pth"
    average_checkpoint_files(paths, out)
    saved = torch.load(out, weights_only=True)
    assert saved["embed.weight"].data_ptr() == saved["output.weight"].data_ptr()
    assert torch.equal(saved["output.weight"], torch.full((4, 3), 3.0))
    model = TiedModel()
    model.load_state_dict(saved, strict=True)
    assert model.output.weight is model.embed.weight


def test_average_state_dicts_refuses_different_ties(tmp_path):
    tied = save_tied(tmp_path / "tied.pth", 1.0)
    state = TiedModel().state_dict()
    state["output.weight"] = state["output.weight"].clone()  # same keys, tie broken
    torch.save(state, tmp_path / "untied.pth")
    with pytest.raises(ValueError) as e:
        average_state_dicts([tied, tmp_path / "untied.pth"])
    msg = str(e.value)
    assert str(tmp_path / "untied.pth") in msg and str(tied) in msg
    assert "'output.weight'" in msg and "'embed.weight'" in msg


def _missing(state):
    del state["0.bias"]
    return "'0.bias'", "missing"


def _extra(state):
    state["extra.weight"] = torch.zeros(1)
    return "'extra.weight'", "unexpected"


def _shape(state):
    state["0.weight"] = torch.zeros(5, 3)
    return "'0.weight'", "(5, 3)"


def _dtype(state):
    state["0.weight"] = state["0.weight"].double()
    return "'0.weight'", "torch.float64"


def _int_dtype(state):
    state["1.num_batches_tracked"] = state["1.num_batches_tracked"].int()
    return "'1.num_batches_tracked'", "torch.int32"


@pytest.mark.parametrize("corrupt", [_missing, _extra, _shape, _dtype, _int_dtype])
def test_average_state_dicts_refuses_mismatch_naming_files_and_key(exp, tmp_path, corrupt):
    bad = epoch_state(2)
    key, detail = corrupt(bad)
    torch.save(bad, tmp_path / "bad.pth")
    out = tmp_path / "avg.pth"
    with pytest.raises(ValueError) as e:
        average_checkpoint_files([exp / "1epoch.pth", tmp_path / "bad.pth"], out)
    msg = str(e.value)
    assert str(tmp_path / "bad.pth") in msg
    assert str(exp / "1epoch.pth") in msg
    assert key in msg and detail in msg
    assert not out.exists()
