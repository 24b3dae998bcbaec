"""Stage 2: emotion-token placement and the token inventory."""

import json

import pytest

from espnet_ser.data.datadir import DataDirError, write_data_dir
from espnet_ser.text.emotion_text import (
    build_tokenizer_for,
    place_emotion_token,
    prepare_token_dir,
    token_tag,
)

EMOS = ["ang", "hap", "neu", "sad"]
SENTS = [
    "the red fox jumps over the lazy dog",
    "kids are talking by the door",
    "dogs are sitting by the door",
    "my friend painted three lamps in the hotel",
    "our lawyer listened near the castle tomorrow",
    "a thin lamp was standing in the square",
]


def make_sets(root):
    dirs = {}
    for name, n in (("train", 24), ("valid", 8)):
        fields = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2emo")}
        for i in range(n):
            spk = f"{name}{i % 3}"
            utt = f"{spk}_{i:03d}"
            fields["wav.scp"][utt] = f"/nonexistent/{utt}.wav"
            fields["text"][utt] = SENTS[i % len(SENTS)]
            fields["utt2spk"][utt] = spk
            fields["utt2emo"][utt] = EMOS[i % 4]
        write_data_dir(root / name, fields, emotions=EMOS)
        dirs[name] = root / name
    return dirs


def test_place_emotion_token_positions():
    assert place_emotion_token("kids are  talking", "ang", "end") == "kids are talking <ang>"
    assert place_emotion_token("kids are talking", "sad", "front") == "<sad> kids are talking"
    assert place_emotion_token("kids are talking", "sad", "none") == "kids are talking"
    with pytest.raises(ValueError, match="position"):
        place_emotion_token("a b", "ang", "middle")
    with pytest.raises(ValueError, match="already"):
        place_emotion_token("a b <hap>", "ang", "end")


@pytest.mark.parametrize("position", ["end", "front"])
def test_bpe_inventory_keeps_emotion_tokens_whole(tmp_path, position):
    dirs = make_sets(tmp_path / "data")
    out = tmp_path / "tok"
    sizes = prepare_token_dir(dirs, "train", out, EMOS, position=position, token_type="bpe", nbpe=40)
    assert sizes == {"train": 24, "valid": 8}
    vocab = (out / "tokens.txt").read_text().split("\n")[:-1]
    assert vocab[:2] == ["<blank>", "<unk>"] and vocab[-1] == "<sos/eos>"
    for e in EMOS:
        assert vocab.count(f"<{e}>") == 1
    assert len(vocab) == len(set(vocab))
    tok = build_tokenizer_for("bpe", out / "bpe.model", None)
    for line in (out / "valid" / "text").read_text().splitlines():
        utt, text = line.split(maxsplit=1)
        words = text.split()
        emo_word = words[-1] if position == "end" else words[0]
        assert emo_word in {f"<{e}>" for e in EMOS}
        pieces = tok.text2tokens(text)
        assert pieces.count(emo_word) == 1
        assert tok.tokens2text(pieces).split() == words
    shapes = dict(l.split() for l in (out / "train" / "text_shape").read_text().splitlines())
    texts = dict(l.split(maxsplit=1) for l in (out / "train" / "text").read_text().splitlines())
    for utt, shape in shapes.items():
        n, v = shape.split(",")
        assert int(n) == len(tok.text2tokens(texts[utt])) and int(v) == len(vocab)
    meta = json.loads((out / "token_info.json").read_text())
    assert meta["emo_token_position"] == position and meta["vocab_size"] == len(vocab)


def test_none_position_has_no_emotion_units(tmp_path):
    dirs = make_sets(tmp_path / "data")
    out = tmp_path / "tok"
    prepare_token_dir(dirs, "train", out, EMOS, position="none", token_type="word")
    vocab = (out / "tokens.txt").read_text().split()
    assert not any(t in vocab for t in ("<ang>", "<hap>", "<neu>", "<sad>"))
    assert "door" in vocab
    assert "<" not in (out / "train" / "text").read_text().replace("<blank>", "")


def test_char_inventory_uses_non_linguistic_symbols(tmp_path):
    dirs = make_sets(tmp_path / "data")
    out = tmp_path / "tok"
    prepare_token_dir(dirs, "train", out, EMOS, position="end", token_type="char")
    vocab = (out / "tokens.txt").read_text().split("\n")[:-1]
    assert "<ang>" in vocab and "<space>" in vocab and "a" in vocab
    assert (out / "nlsyms.txt").read_text().split() == [f"<{e}>" for e in EMOS]
    assert token_tag("char", 150, "end") == "char_emoend"
    assert token_tag("bpe", 150, "front") == "bpe150_emofront"


def test_unknown_emotion_is_reported_with_file(tmp_path):
    dirs = make_sets(tmp_path / "data")
    p = dirs["valid"] / "utt2emo"
    lines = p.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " fru"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataDirError, match=r"utt2emo:3: utterance valid\S+ has unknown emotion 'fru'"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS)
    assert not (tmp_path / "tok" / "tokens.txt").exists()
