import os
import stat

import pytest
import torch

from espnet_ser.utils.io import (
    DataFileError,
    atomic_copy,
    atomic_path,
    atomic_symlink,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    read_kaldi_map,
    read_token_list,
    sha256sum,
    write_kaldi_map,
)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_writes_create_parents_and_follow_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "d" / "t.txt", "héllo\n")
        atomic_write_bytes(tmp_path / "d" / "b.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert (tmp_path / "d" / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "d" / "b.bin").read_bytes() == b"\x00\x01"
    assert _mode(tmp_path / "d" / "t.txt") == 0o640
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["b.bin", "t.txt"]


def test_atomic_copy_keeps_mode_on_request_and_same_file_is_untouched(tmp_path):
    src = tmp_path / "run.sh"
    src.write_text("echo hi\n")
    os.chmod(src, 0o755)
    atomic_copy(src, tmp_path / "plain.sh")
    atomic_copy(src, tmp_path / "kept.sh", keep_mode=True)
    assert (tmp_path / "plain.sh").read_text() == "echo hi\n"
    assert _mode(tmp_path / "kept.sh") == 0o755
    assert _mode(tmp_path / "plain.sh") != 0o755
    atomic_copy(src, src)
    assert src.read_text() == "echo hi\n"


def test_atomic_torch_save_and_symlink(tmp_path):
    atomic_torch_save({"w": torch.ones(2)}, tmp_path / "exp" / "1epoch.pth")
    assert torch.equal(torch.load(tmp_path / "exp" / "1epoch.pth")["w"], torch.ones(2))
    assert atomic_symlink(tmp_path / "exp" / "1epoch.pth", tmp_path / "exp" / "best.pth") == "symlink"
    assert os.readlink(tmp_path / "exp" / "best.pth") == "1epoch.pth"
    atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "exp" / "2epoch.pth")
    atomic_symlink(tmp_path / "exp" / "2epoch.pth", tmp_path / "exp" / "best.pth")
    assert os.readlink(tmp_path / "exp" / "best.pth") == "2epoch.pth"
    with pytest.raises(IsADirectoryError):
        atomic_symlink(tmp_path / "exp" / "2epoch.pth", tmp_path / "exp")


def test_sha256sum(tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    assert sha256sum(tmp_path / "x") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_kaldi_map_round_trip_sorted_in_c_order(tmp_path):
    write_kaldi_map(tmp_path / "utt2emo", {"b": "hap", "B": "ang", "a": "neu sad"})
    assert (tmp_path / "utt2emo").read_text() == "B ang\na neu sad\nb hap\n"
    assert read_kaldi_map(tmp_path / "utt2emo") == {"B": "ang", "a": "neu sad", "b": "hap"}
    with pytest.raises(DataFileError, match="white space"):
        write_kaldi_map(tmp_path / "bad", {"a b": "x"})


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a x\n\nb y\n", ":2: empty line"),
        (b"a x\na y\n", ":2: duplicate id a"),
        (b"b x\na y\n", ":2: id a comes after b"),
        (b"a x\nb\n", ":2: utterance b has an empty value"),
        (b"a \xff\n", ":1: not valid UTF-8"),
    ],
)
def test_read_kaldi_map_names_file_and_line(tmp_path, content, message):
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        read_kaldi_map(tmp_path / "f")


def test_read_kaldi_map_empty_text_only_where_listed(tmp_path):
    (tmp_path / "text").write_text("u1 hello\nu2\n")
    with pytest.raises(DataFileError, match="utterance u2 has an empty value"):
        read_kaldi_map(tmp_path / "text")
    (tmp_path / "utt2empty_text").write_text("u2 [LAUGHTER]\n")
    assert read_kaldi_map(tmp_path / "text") == {"u1": "hello", "u2": ""}
    (tmp_path / "other").write_text("u2\n")
    with pytest.raises(DataFileError):
        read_kaldi_map(tmp_path / "other")
    assert read_kaldi_map(tmp_path / "other", allow_empty_value=True) == {"u2": ""}


def test_read_token_list(tmp_path):
    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\r\n\nhello\n")
    assert read_token_list(tmp_path / "tokens.txt") == ["<blank>", "<unk>", "hello"]
    assert read_token_list(str(tmp_path / "tokens.txt"))[-1] == "hello"
    assert read_token_list(("a", "b")) == ["a", "b"]
    assert read_token_list(None) is None
