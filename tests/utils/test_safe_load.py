"""Tests for espnet_ser.utils.safe_load and the safe loading in utils.averaging / packing."""

import io
import logging
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_ser.utils.averaging import average_state_dicts, load_state_dict
from espnet_ser.utils.packing import pack_model, unpack_model
from espnet_ser.utils.safe_load import (
    StateDictMismatchError,
    UnsafeFileError,
    build_model_from_file,
    load_model_state,
    load_yaml_config,
)


# --------------------------------------------------------------------------------------
# A tiny task: a model with a tied embedding / output layer and a BatchNorm buffer
# --------------------------------------------------------------------------------------
class TinyModel(AbsESPnetModel):
    def __init__(self, dim: int):
        super().__init__()
        self.embed = torch.nn.Embedding(5, dim)
        self.out = torch.nn.Linear(dim, 5)
        self.out.weight = self.embed.weight
        self.norm = torch.nn.BatchNorm1d(dim)

    def forward(self, **batch):
        raise NotImplementedError

    def collect_feats(self, **batch):
        return {}


class TinyTask:
    @classmethod
    def build_model(cls, args):
        return TinyModel(args.dim)


def write_exp(root: Path, state=None, config_text="dim: 3\n"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(config_text)
    if state is None:
        state = TinyModel(3).state_dict()
    torch.save(state, root / "model.pth")
    return root / "config.yaml", root / "model.pth"


# --------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------
PYTHON_TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/new:os.system ["touch {marker}"]',
    "!!python/name:os.system",
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_yaml_python_tags_refused(tmp_path, tag):
    marker = tmp_path / "marker"
    config = tmp_path / "exp" / "config.yaml"
    config.parent.mkdir()
    config.write_text("dim: 3\nhack: " + tag.format(marker=marker) + "\n")
    with pytest.raises(UnsafeFileError) as e:
        load_yaml_config(config)
    assert str(config) in str(e.value) and "python/" in str(e.value)
    # the model loader and the packer refuse it too
    with pytest.raises(UnsafeFileError):
        build_model_from_file(TinyTask, config, None)
    torch.save(TinyModel(3).state_dict(), tmp_path / "exp" / "model.pth")
    with pytest.raises(UnsafeFileError):
        pack_model(config, tmp_path / "exp" / "model.pth", tmp_path / "m.zip")
    assert not marker.exists()
    assert not (tmp_path / "m.zip").exists()


def test_yaml_plain_config_loads(tmp_path):
    (tmp_path / "c.yaml").write_text("dim: 3\nlist: [1, 2]\n")
    assert load_yaml_config(tmp_path / "c.yaml") == {"dim": 3, "list": [1, 2]}
    (tmp_path / "l.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="mapping"):
        load_yaml_config(tmp_path / "l.yaml")


# --------------------------------------------------------------------------------------
# Pickles
# --------------------------------------------------------------------------------------
class Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_files(tmp_path, marker):
    """Model files that would run ``touch marker`` when fully unpickled."""
    files = {}
    state = TinyModel(3).state_dict()
    state["out.bias"] = Evil(marker)
    torch.save(state, tmp_path / "in_state.pth")
    files["in_state"] = tmp_path / "in_state.pth"
    torch.save(Evil(marker), tmp_path / "whole.pth")
    files["whole"] = tmp_path / "whole.pth"
    torch.save(
        {"w": Evil(marker)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False
    )
    files["legacy"] = tmp_path / "legacy.pth"
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(Evil(marker)))
    files["raw"] = tmp_path / "raw.pkl"
    return files


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["in_state", "whole", "legacy", "raw"])
def test_malicious_pickle_refused(tmp_path, kind):
    marker = tmp_path / "marker"
    path = evil_files(tmp_path, marker)[kind]
    assert not marker.exists()
    with pytest.raises(UnsafeFileError) as e:
        load_model_state(path)
    assert str(path) in str(e.value) and "refused" in str(e.value)
    if kind != "raw":  # the raw pickle stops earlier, at an unsupported opcode
        assert "system" in str(e.value)
    config, _ = write_exp(tmp_path / "exp")
    with pytest.raises(UnsafeFileError):
        build_model_from_file(TinyTask, config, path)
    with pytest.raises(ValueError, match=str(path)):
        load_state_dict(path)
    with pytest.raises(ValueError, match=str(path)):
        average_state_dicts([tmp_path / "exp" / "model.pth", path])
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Strict state-dict loading
# --------------------------------------------------------------------------------------
def test_build_model_from_file_loads_weights(tmp_path):
    state = TinyModel(3).state_dict()
    state["embed.weight"].fill_(0.5)
    state["norm.num_batches_tracked"].fill_(7)
    config, model_file = write_exp(tmp_path, state)
    model, args = build_model_from_file(TinyTask, config, model_file)
    assert args.dim == 3
    assert torch.equal(model.out.weight, torch.full((5, 3), 0.5))
    assert model.out.weight is model.embed.weight
    assert model.norm.num_batches_tracked.item() == 7
    # config.yaml beside the model file by default
    model, _ = build_model_from_file(TinyTask, None, model_file)
    assert torch.equal(model.embed.weight, torch.full((5, 3), 0.5))


def _drop(state):
    del state["norm.running_var"]
    return ["norm.running_var"], "missing keys"


def _add(state):
    state["extra.weight"] = torch.zeros(2)
    return ["extra.weight"], "unexpected keys"


def _reshape(state):
    state["out.bias"] = torch.zeros(6)
    return ["out.bias", "(6,)", "(5,)"], "shape"


def _both(state):
    state["encoder.renamed"] = state.pop("norm.weight")
    return ["norm.weight", "encoder.renamed"], "missing keys"


@pytest.mark.parametrize("corrupt", [_drop, _add, _reshape, _both])
def test_build_model_from_file_strict_by_default(tmp_path, corrupt, caplog):
    state = TinyModel(3).state_dict()
    names, what = corrupt(state)
    config, model_file = write_exp(tmp_path, state)
    with pytest.raises(StateDictMismatchError) as e:
        build_model_from_file(TinyTask, config, model_file)
    msg = str(e.value)
    assert str(model_file) in msg and what in msg
    for name in names:
        assert name in msg
    # explicit opt-out: the matching keys load, a warning names the others
    with caplog.at_level(logging.WARNING):
        model, _ = build_model_from_file(TinyTask, config, model_file, strict=False)
    assert names[0] in caplog.text
    assert torch.equal(model.embed.weight, state["embed.weight"])


# --------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------
META = yaml.safe_dump(
    {"yaml_files": {"asr_train_config": "exp/config.yaml"},
     "files": {"asr_model_file": "exp/model.pth"}}
).encode()


def _model_bytes():
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    return buf.getvalue()


def _good_entries():
    return [("meta.yaml", META), ("exp/config.yaml", b"dim: 3\n"), ("exp/model.pth", _model_bytes())]


def make_zip(path, extra):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _good_entries() + extra:
            zf.writestr(name, data)
    return path


def make_tar(path, extra):
    with tarfile.open(path, "w:gz") as tf:
        for entry in _good_entries() + extra:
            name, data = entry[0], entry[1]
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):  # (link type, link target)
                info.type, info.linkname = data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def evil_cases(tmp_path):
    absolute = str(tmp_path / "abs" / "evil.txt")
    sym, hard = tarfile.SYMTYPE, tarfile.LNKTYPE
    return {
        "zip_dotdot": ("zip", [("../evil.txt", b"x")], "../evil.txt"),
        "zip_abs": ("zip", [(absolute, b"x")], absolute),
        "tar_dotdot": ("tar", [("../evil.txt", b"x")], "../evil.txt"),
        "tar_abs": ("tar", [(absolute, b"x")], absolute),
        "tar_symlink_out": (
            "tar", [("esc", (sym, "../")), ("esc/evil.txt", b"x")], "esc"
        ),
        "tar_symlink_abs": (
            "tar", [("al", (sym, str(tmp_path / "abs"))), ("al/evil.txt", b"x")], "al"
        ),
        "tar_hardlink_out": ("tar", [("hl", (hard, "../evil.txt"))], "hl"),
        "tar_symlink_chain": (
            "tar", [("q", (sym, ".")), ("p", (sym, "q/../evil.txt"))], "'p'"
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["zip_dotdot", "zip_abs", "tar_dotdot", "tar_abs", "tar_symlink_out",
     "tar_symlink_abs", "tar_hardlink_out", "tar_symlink_chain"],
)
def test_unpack_refuses_entries_outside(tmp_path, case):
    fmt, extra, entry = evil_cases(tmp_path)[case]
    archive = tmp_path / "src" / ("m.zip" if fmt == "zip" else "m.tar.gz")
    archive.parent.mkdir()
    (make_zip if fmt == "zip" else make_tar)(archive, extra)
    out = tmp_path / "a" / "out"
    with pytest.raises(UnsafeFileError) as e:
        unpack_model(archive, out)
    assert str(archive) in str(e.value)
    assert entry in str(e.value)
    assert not out.exists()  # nothing was extracted
    assert [p for p in tmp_path.rglob("*evil*")] == []
    assert not (tmp_path / "abs").exists()


def test_unpack_refuses_meta_path_outside(tmp_path):
    meta = yaml.safe_dump(
        {"yaml_files": {"asr_train_config": "exp/config.yaml"},
         "files": {"asr_model_file": str(tmp_path / "elsewhere.pth")}}
    ).encode()
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in [("meta.yaml", meta)] + _good_entries()[1:]:
            zf.writestr(name, data)
    with pytest.raises(UnsafeFileError, match="asr_model_file"):
        unpack_model(archive, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_unpack_accepts_safe_archive(tmp_path, fmt):
    extra = [("exp/sub/notes.txt", b"n")]
    if fmt == "tar":
        extra += [("exp/alias.pth", (tarfile.SYMTYPE, "model.pth")),
                  ("exp/sub/up.pth", (tarfile.SYMTYPE, "../model.pth"))]
    archive = tmp_path / ("m.zip" if fmt == "zip" else "m.tar.gz")
    (make_zip if fmt == "zip" else make_tar)(archive, extra)
    d = unpack_model(archive, tmp_path / "out")
    assert d["model_file"] == str(tmp_path / "out" / "exp" / "model.pth")
    assert torch.equal(load_model_state(d["model_file"])["w"], torch.arange(3.0))
    if fmt == "tar":
        assert torch.equal(load_model_state(tmp_path / "out/exp/sub/up.pth")["w"],
                           torch.arange(3.0))
