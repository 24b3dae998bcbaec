"""Stage 2: emotion-token placement and the token inventory."""

import json

import pytest

from espnet_ser.data.datadir import DataDirError, read_kaldi_map, write_data_dir
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


# --------------------------------------------------------------------------------------
# A pretrained tokenizer (as written by espnet_ser.bin.extend_pretrained)


def make_pretrained(root, add=True):
    """A 'stock' sentencepiece model + ESPnet token list; with ``add`` the emotion tokens
    are added the way extend_pretrained adds them."""
    import sentencepiece as spm

    from espnet_ser.asr.pretrained import extend_sentencepiece, extend_token_list

    root.mkdir(parents=True)
    (root / "corpus.txt").write_text("".join(s + "\n" for s in SENTS * 3))
    spm.SentencePieceTrainer.train(
        input=str(root / "corpus.txt"), model_prefix=str(root / "stock"), vocab_size=40,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(root / "stock.model"))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    tokens = ["<blank>", "<unk>"] + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    tokens.append("<sos/eos>")
    if not add:
        (root / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
        return root / "stock.model", root / "tokens.txt"
    emo = [f"<{e}>" for e in EMOS]
    tokens, _ = extend_token_list(tokens, emo)
    (root / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
    (root / "bpe.model").write_bytes(extend_sentencepiece(root / "stock.model", emo))
    return root / "bpe.model", root / "tokens.txt"


def test_pretrained_tokenizer_is_used_as_given(tmp_path, caplog):
    dirs = make_sets(tmp_path / "data")
    bpemodel, token_list = make_pretrained(tmp_path / "pre")
    before = (bpemodel.read_bytes(), token_list.read_text())
    out = tmp_path / "tok"
    with caplog.at_level("INFO"):
        sizes = prepare_token_dir(dirs, "train", out, EMOS, position="front",
                                  bpemodel=bpemodel, token_list=token_list)
    assert sizes == {"train": 24, "valid": 8}
    assert (bpemodel.read_bytes(), token_list.read_text()) == before
    assert (out / "bpe.model").read_bytes() == before[0]
    assert (out / "tokens.txt").read_text() == before[1]
    vocab = before[1].splitlines()
    assert not (out / "train_text_for_bpe.txt").exists()  # nothing trained
    tok = build_tokenizer_for("bpe", out / "bpe.model", None)
    texts = dict(l.split(maxsplit=1) for l in (out / "train" / "text").read_text().splitlines())
    shapes = dict(l.split() for l in (out / "train" / "text_shape").read_text().splitlines())
    for utt, text in texts.items():
        pieces = tok.text2tokens(text)
        assert pieces.count(text.split()[0]) == 1 and all(p in vocab for p in pieces)
        assert shapes[utt] == f"{len(pieces)},{len(vocab)}"
    meta = json.loads((out / "token_info.json").read_text())
    assert meta["pretrained"] is True and meta["vocab_size"] == len(vocab)
    assert meta["source_bpemodel"] == str(bpemodel.resolve()) and meta["oov"] == {"train": 0, "valid": 0}
    assert meta["nbpe"] == 40 + 4 and meta["bpemode"] == "unigram"
    assert "train: 24 utterances" in caplog.text and "OOV 0" in caplog.text


def test_pretrained_tokenizer_counts_oov(tmp_path, caplog):
    dirs = make_sets(tmp_path / "data")
    bpemodel, token_list = make_pretrained(tmp_path / "pre")  # knows lower case only
    from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map

    text = read_kaldi_map(dirs["valid"] / "text")
    text[sorted(text)[0]] = "the red fox ZEBRA QUARTZ"  # upper case: unknown characters
    write_kaldi_map(dirs["valid"] / "text", text)
    with caplog.at_level("INFO"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel,
                          token_list=token_list)
    meta = json.loads((tmp_path / "tok" / "token_info.json").read_text())
    assert meta["oov"]["train"] == 0 and meta["oov"]["valid"] > 0
    assert meta["oov"]["valid"] == 2  # sentencepiece returns each unknown run as one piece
    assert "become <unk> ('ZEBRA' x1, 'QUARTZ' x1)" in caplog.text


def test_pretrained_tokenizer_without_emotion_pieces_is_refused(tmp_path):
    dirs = make_sets(tmp_path / "data")
    bpemodel, token_list = make_pretrained(tmp_path / "pre", add=False)
    with pytest.raises(ValueError, match=r"tokens.txt: emotion token\(s\) <ang> <hap> <neu> <sad> "
                                         r"missing; run espnet_ser.bin.extend_pretrained first"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel,
                          token_list=token_list)
    # in the token list but not a piece of the model
    token_list.write_text(token_list.read_text().replace("<sos/eos>", "<ang>\n<hap>\n<neu>\n<sad>\n<sos/eos>"))
    with pytest.raises(ValueError, match=r"stock.model: the emotion token <ang> is not one piece"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel,
                          token_list=token_list)
    assert not (tmp_path / "tok").exists()
    # without emotion tokens the stock tokenizer is fine
    prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, position="none", bpemodel=bpemodel,
                      token_list=token_list)
    assert "<" not in (tmp_path / "tok" / "train" / "text").read_text()


def test_pretrained_tokenizer_option_errors(tmp_path):
    dirs = make_sets(tmp_path / "data")
    bpemodel, token_list = make_pretrained(tmp_path / "pre")
    with pytest.raises(ValueError, match="both bpemodel and token_list"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel)
    with pytest.raises(ValueError, match="token_type bpe"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, token_type="char",
                          bpemodel=bpemodel, token_list=token_list)
    with pytest.raises(ValueError, match="nope.txt: no such token list"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel,
                          token_list=tmp_path / "nope.txt")
    token_list.write_text(token_list.read_text() + "<ang>\n")
    with pytest.raises(ValueError, match="listed twice: <ang>"):
        prepare_token_dir(dirs, "train", tmp_path / "tok", EMOS, bpemodel=bpemodel,
                          token_list=token_list)


def test_prepare_text_cli_takes_a_pretrained_tokenizer(tmp_path):
    from espnet_ser.bin.prepare_text import main

    dirs = make_sets(tmp_path / "data")
    bpemodel, token_list = make_pretrained(tmp_path / "pre")
    main(["--data_dirs", str(dirs["train"]), str(dirs["valid"]), "--train_set", "train",
          "--out_dir", str(tmp_path / "tok"), "--emotions", " ".join(EMOS),
          "--bpemodel", str(bpemodel), "--token_list", str(token_list)])
    assert (tmp_path / "tok" / "tokens.txt").read_text() == token_list.read_text()
    assert json.loads((tmp_path / "tok" / "token_info.json").read_text())["pretrained"] is True
    with pytest.raises(SystemExit):
        main(["--data_dirs", str(dirs["train"]), "--train_set", "train",
              "--out_dir", str(tmp_path / "tok2"), "--emotions", " ".join(EMOS),
              "--bpemodel", str(bpemodel)])


def test_emotion_ids_follow_the_emotion_order(tmp_path):
    dirs = make_sets(tmp_path / "data")
    out = tmp_path / "tok"
    order = ["sad", "neu", "hap", "ang"]  # any order: the id is the index in it
    prepare_token_dir(dirs, "train", out, order, position="none", token_type="word")
    for name, d in dirs.items():
        utt2emo = read_kaldi_map(d / "utt2emo")
        ids = read_kaldi_map(out / name / "emotion_id")
        assert sorted(ids) == sorted(utt2emo)
        assert all(order[int(ids[u])] == utt2emo[u] for u in utt2emo)


def test_upper_case_vocabulary_detection():
    from espnet_ser.text.emotion_text import vocabulary_is_upper_case

    assert vocabulary_is_upper_case(["<blank>", "<unk>", "▁THE", "S", "'", "<hap>", "<sos/eos>"])
    assert not vocabulary_is_upper_case(["<blank>", "<unk>", "▁the", "s", "<HAP>", "<sos/eos>"])
