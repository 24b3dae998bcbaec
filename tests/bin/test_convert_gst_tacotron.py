"""Tests for espnet_ser.bin.convert_gst_tacotron (GST-Tacotron checkpoint -> GSTEncoder)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from espnet_ser.asr.gst import GSTEncoder
from espnet_ser.bin.convert_gst_tacotron import (
    ConversionError,
    convert_state_dict,
    find_prefixes,
    main,
    n_mels_range,
    unwrap_state_dict,
)

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------
# A GST module in the GST-Tacotron parameter layout, written from its description
# --------------------------------------------------------------------------------------
class ReferenceEncoder(torch.nn.Module):
    def __init__(self, n_mels, filters, gru_units):
        super().__init__()
        self.n_mels = n_mels
        sizes = [1] + list(filters)
        self.convs = torch.nn.ModuleList(
            [
                torch.nn.Conv2d(
                    sizes[i], sizes[i + 1], kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)
                )
                for i in range(len(filters))
            ]
        )
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm2d(n) for n in filters])
        bins = n_mels
        for _ in filters:
            bins = (bins - 3 + 2 * 1) // 2 + 1
        self.gru = torch.nn.GRU(filters[-1] * bins, gru_units, batch_first=True)

    def forward(self, mels):  # (N, Ty, n_mels), unpadded
        n = mels.size(0)
        out = mels.view(n, 1, -1, self.n_mels)
        for conv, bn in zip(self.convs, self.bns):
            out = F.relu(bn(conv(out)))
        out = out.transpose(1, 2)  # (N, Ty', C, F')
        out = out.contiguous().view(n, out.size(1), -1)
        _, h = self.gru(out)
        return h.squeeze(0)  # (N, gru_units)


class MultiHeadAttention(torch.nn.Module):
    def __init__(self, query_dim, key_dim, num_units, num_heads):
        super().__init__()
        self.num_units, self.num_heads, self.key_dim = num_units, num_heads, key_dim
        self.W_query = torch.nn.Linear(query_dim, num_units, bias=False)
        self.W_key = torch.nn.Linear(key_dim, num_units, bias=False)
        self.W_value = torch.nn.Linear(key_dim, num_units, bias=False)

    def forward(self, query, key):  # (N, T_q, query_dim), (N, T_k, key_dim)
        size = self.num_units // self.num_heads
        qs = torch.stack(torch.split(self.W_query(query), size, dim=2), dim=0)  # (h, N, T_q, d)
        ks = torch.stack(torch.split(self.W_key(key), size, dim=2), dim=0)
        vs = torch.stack(torch.split(self.W_value(key), size, dim=2), dim=0)
        scores = torch.matmul(qs, ks.transpose(2, 3)) / (self.key_dim**0.5)
        scores = F.softmax(scores, dim=3)
        out = torch.matmul(scores, vs)  # (h, N, T_q, d)
        return torch.cat(torch.split(out, 1, dim=0), dim=3).squeeze(0)  # (N, T_q, num_units)


class STL(torch.nn.Module):
    def __init__(self, token_num, E, num_heads, query_dim):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.randn(token_num, E // num_heads) * 0.5)
        self.attention = MultiHeadAttention(query_dim, E // num_heads, E, num_heads)

    def forward(self, ref):  # (N, query_dim)
        n = ref.size(0)
        keys = torch.tanh(self.embed).unsqueeze(0).expand(n, -1, -1)
        return self.attention(ref.unsqueeze(1), keys)  # (N, 1, E)


class TacotronGST(torch.nn.Module):
    def __init__(
        self, n_mels=80, filters=(32, 32, 64, 64, 128, 128), E=256, token_num=10, num_heads=8
    ):
        super().__init__()
        self.encoder = ReferenceEncoder(n_mels, filters, E // 2)
        self.stl = STL(token_num, E, num_heads, E // 2)

    def forward(self, mels):
        return self.stl(self.encoder(mels)).squeeze(1)


SMALL = dict(n_mels=40, filters=(8, 16, 16), E=32, token_num=5, num_heads=4)


def make_gst(seed=0, **kwargs) -> TacotronGST:
    torch.manual_seed(seed)
    gst = TacotronGST(**kwargs)
    with torch.no_grad():
        for p in gst.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        for bn in gst.encoder.bns:
            bn.running_mean.copy_(torch.randn_like(bn.running_mean) * 0.3)
            bn.running_var.copy_(torch.rand_like(bn.running_var) + 0.5)
            bn.num_batches_tracked.fill_(123)
    return gst.eval()


def unrelated_tacotron_keys():
    return {
        "embedding.weight": torch.randn(30, 16),
        "encoder.prenet.layer0.weight": torch.randn(8, 16),
        "encoder.cbhg.gru.weight_ih_l0": torch.randn(12, 8),
        "encoder.cbhg.gru.weight_ih_l0_reverse": torch.randn(12, 8),
        "decoder.attn_rnn.weight_hh": torch.randn(12, 4),
        "decoder.mel_linear.bias": torch.randn(7),
    }


def save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_converted(out: Path) -> GSTEncoder:
    conf = yaml.safe_load(out.with_suffix(".yaml").read_text())
    model = GSTEncoder(**conf)
    model.load_state_dict(torch.load(out, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def assert_same_style(gst: TacotronGST, model: GSTEncoder, n_mels: int):
    torch.manual_seed(10)
    mels = torch.randn(3, 97, n_mels)
    with torch.no_grad():
        expected = gst(mels)
        got = model(mels)
        one = model(mels[1:2, :50])
        expected_one = gst(mels[1:2, :50])
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert torch.allclose(one, expected_one, atol=1e-5)


# --------------------------------------------------------------------------------------
def layouts(gst: TacotronGST):
    sd = gst.state_dict()
    whole = dict(unrelated_tacotron_keys())
    whole.update({f"gst.{k}": v for k, v in sd.items()})
    dp = {f"module.gst.{k}": v for k, v in sd.items()}
    return {
        "plain": sd,
        "model_gst_prefix": {"model": whole, "step": 5},
        "state_dict": {"state_dict": sd},
        "module_prefix_with_optimizer": {
            "state_dict": dp,
            "optimizer": {
                "state": {0: {"exp_avg": torch.randn(3)}},
                "param_groups": [{"lr": 1e-3}],
            },
            "epoch": 3,
        },
    }


@pytest.mark.parametrize(
    "layout", ["plain", "model_gst_prefix", "state_dict", "module_prefix_with_optimizer"]
)
def test_main_converts_default_gst(tmp_path, layout):
    gst = make_gst()
    src = save(layouts(gst)[layout], tmp_path / "tacotron.pth")
    before = digest(src)
    out = tmp_path / "exp" / "gst.pth"
    main([str(src), str(out)])
    assert digest(src) == before
    conf = yaml.safe_load((tmp_path / "exp" / "gst.yaml").read_text())
    assert conf == {
        "n_mels": 80,
        "conv_channels": [32, 32, 64, 64, 128, 128],
        "ref_dim": 128,
        "n_tokens": 10,
        "n_heads": 8,
        "style_dim": 256,
        "token_dim": 32,
    }
    model = load_converted(out)
    assert_same_style(gst, model, 80)
    tracked = model.reference_encoder.bns[0].num_batches_tracked
    assert int(tracked) == 123
    assert sorted(p.name for p in out.parent.iterdir()) == ["gst.pth", "gst.yaml"]  # no tmp files


def test_main_converts_small_gst_with_n_mels(tmp_path, capsys):
    gst = make_gst(seed=1, **SMALL)
    src = save({"model": {f"gst.{k}": v for k, v in gst.state_dict().items()}}, tmp_path / "in.pth")
    out = tmp_path / "small.pth"
    with pytest.raises(SystemExit) as e:
        main([str(src), str(out)])  # default n_mels 80 does not fit 3 convs -> 5 bins
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert "33..40" in err and "--n_mels" in err and str(src) in err
    assert not out.exists() and not out.with_suffix(".yaml").exists()

    main([str(src), str(out), "--n_mels", "40", "--n_heads", "4"])
    conf = yaml.safe_load(out.with_suffix(".yaml").read_text())
    assert conf == {
        "n_mels": 40,
        "conv_channels": [8, 16, 16],
        "ref_dim": 16,
        "n_tokens": 5,
        "n_heads": 4,
        "style_dim": 32,
        "token_dim": 8,
    }
    assert_same_style(gst, load_converted(out), 40)


def test_convert_state_dict_function():
    gst = make_gst(seed=2, **SMALL)
    wrapped = {"model": {f"gst.{k}": v for k, v in gst.state_dict().items()}, "step": 5}
    sd = unwrap_state_dict(wrapped)
    assert find_prefixes(sd) == ["model.gst."]
    new_sd, conf = convert_state_dict(sd, n_heads=4, n_mels=40)
    key_proj = new_sd["style_tokens.key_proj.weight"]
    assert torch.equal(key_proj, sd["model.gst.stl.attention.W_key.weight"])
    assert key_proj.data_ptr() != sd["model.gst.stl.attention.W_key.weight"].data_ptr()
    assert torch.equal(new_sd["style_tokens.embed"], gst.stl.embed)
    assert torch.equal(new_sd["reference_encoder.gru.weight_hh_l0"], gst.encoder.gru.weight_hh_l0)
    model = GSTEncoder(**conf)
    model.load_state_dict(new_sd, strict=True)
    assert_same_style(gst, model.eval(), 40)


def test_n_mels_range():
    assert n_mels_range(6, 2) == (65, 128)
    assert n_mels_range(3, 5) == (33, 40)
    assert n_mels_range(1, 1) == (1, 2)


def test_n_heads_untied_from_token_dim_warns(caplog):
    sd = make_gst(**SMALL).state_dict()  # E=32, 4 heads -> token_dim 8
    with caplog.at_level("WARNING"):
        _, conf = convert_state_dict(sd, n_heads=2, n_mels=40)
    assert conf["n_heads"] == 2 and conf["token_dim"] == 8
    assert "suggests n_heads=4" in caplog.text


def test_missing_num_batches_tracked_is_filled():
    gst = make_gst(seed=3, **SMALL)
    sd = {k: v for k, v in gst.state_dict().items() if not k.endswith("num_batches_tracked")}
    new_sd, conf = convert_state_dict(sd, n_heads=4, n_mels=40)
    assert int(new_sd["reference_encoder.bns.1.num_batches_tracked"]) == 0


# --------------------------------------------------------------------------------------
def run_failing(capsys, args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    assert e.value.code not in (0, None)
    return capsys.readouterr().err


def test_missing_w_key_fails_listing_keys(tmp_path, capsys):
    sd = {f"gst.{k}": v for k, v in make_gst(**SMALL).state_dict().items()}
    del sd["gst.stl.attention.W_key.weight"]
    sd.update(unrelated_tacotron_keys())
    src = save({"model": sd, "step": 5}, tmp_path / "in.pth")
    before = digest(src)
    out = tmp_path / "out.pth"
    err = run_failing(capsys, [src, out, "--n_mels", "40"])
    assert str(src) in err
    assert "missing" in err and "stl.attention.W_key.weight" in err
    assert "model.gst.stl.embed" in err  # the found keys are listed
    assert "tensor keys found" in err
    assert not out.exists() and not out.with_suffix(".yaml").exists()
    assert digest(src) == before


def test_unrelated_state_dict_fails(tmp_path, capsys):
    keys = {f"layer{i}.weight": torch.randn(2) for i in range(30)}
    src = save(keys, tmp_path / "asr.pth")
    out = tmp_path / "out.pth"
    err = run_failing(capsys, [src, out])
    assert str(src) in err and "no GST-Tacotron style token layer" in err
    assert "30 tensor keys found" in err and "layer0.weight" in err and "(10 more)" in err
    assert not out.exists() and not out.with_suffix(".yaml").exists()


def test_two_prefixes_fail_unless_chosen(tmp_path, capsys):
    gst_a, gst_b = make_gst(seed=4, **SMALL), make_gst(seed=5, **SMALL)
    sd = {f"a.gst.{k}": v for k, v in gst_a.state_dict().items()}
    sd.update({f"b.gst.{k}": v for k, v in gst_b.state_dict().items()})
    src = save(sd, tmp_path / "two.pth")
    out = tmp_path / "out.pth"
    err = run_failing(capsys, [src, out, "--n_mels", "40", "--n_heads", "4"])
    assert "a.gst." in err and "b.gst." in err and "--prefix" in err
    assert not out.exists()
    main([str(src), str(out), "--n_mels", "40", "--n_heads", "4", "--prefix", "b.gst."])
    assert_same_style(gst_b, load_converted(out), 40)


def test_wrong_n_heads_fails(tmp_path, capsys):
    src = save(make_gst(**SMALL).state_dict(), tmp_path / "in.pth")
    err = run_failing(capsys, [src, tmp_path / "out.pth", "--n_mels", "40", "--n_heads", "5"])
    assert "n_heads=5" in err


def test_unexpected_gst_keys_fail(tmp_path, capsys):
    sd = make_gst(**SMALL).state_dict()
    sd["stl.attention.W_query.bias"] = torch.zeros(32)
    src = save(sd, tmp_path / "in.pth")
    err = run_failing(capsys, [src, tmp_path / "out.pth", "--n_mels", "40", "--n_heads", "4"])
    assert "stl.attention.W_query.bias" in err


def test_shape_mismatch_fails():
    sd = make_gst(**SMALL).state_dict()
    sd["stl.attention.W_value.weight"] = torch.zeros(32, 7)
    with pytest.raises(ConversionError, match="W_value"):
        convert_state_dict(sd, n_heads=4, n_mels=40)


def test_pickled_objects_are_refused_not_unpickled(tmp_path, capsys):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    sd = make_gst(**SMALL).state_dict()
    src = save({"model": sd, "extra": Payload()}, tmp_path / "in.pth")
    out = tmp_path / "out.pth"
    err = run_failing(capsys, [src, out, "--n_mels", "40", "--n_heads", "4"])
    assert "weights_only" in err and str(src) in err
    assert not marker.exists()
    assert not out.exists()


def test_output_must_not_be_input(tmp_path, capsys):
    src = save(make_gst(**SMALL).state_dict(), tmp_path / "in.pth")
    before = digest(src)
    err = run_failing(capsys, [src, src, "--n_mels", "40", "--n_heads", "4"])
    assert "overwrite" in err
    yaml_in = save(make_gst(**SMALL).state_dict(), tmp_path / "x.yaml")
    err = run_failing(capsys, [yaml_in, tmp_path / "x.pth", "--n_mels", "40", "--n_heads", "4"])
    assert "overwrite" in err
    assert digest(src) == before
    assert not (tmp_path / "x.pth").exists()


def test_missing_input_fails(tmp_path, capsys):
    err = run_failing(capsys, [tmp_path / "nope.pth", tmp_path / "out.pth"])
    assert "nope.pth" in err


def test_command_line_entry_point(tmp_path):
    gst = make_gst(seed=6, **SMALL)
    src = save({"state_dict": gst.state_dict()}, tmp_path / "in.pth")
    out = tmp_path / "gst"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_ser.bin.convert_gst_tacotron", str(src), str(out),
         "--n_mels", "40", "--n_heads", "4"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "gst.yaml").is_file()
    assert_same_style(gst, load_converted(out), 40)
