"""Stage 2: transcripts with an emotion token, and the token inventory.

The joint ASR + SER target of an utterance is its transcript with the emotion token
placed at the end (default), at the front, or nowhere::

    end:    "kids are talking by the door <ang>"
    front:  "<ang> kids are talking by the door"
    none:   "kids are talking by the door"

The token inventory is built with ESPnet's own tokenizers (sentencepiece bpe / unigram,
char, word) so that ESPnet's preprocessor tokenises training text exactly the same way.
Every emotion token is a single unit: a sentencepiece user-defined symbol, a char-level
non-linguistic symbol, or a word. The token list follows ESPnet's convention:
``<blank>`` first, ``<unk>`` second, ``<sos/eos>`` last.
"""

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_ser.data.datadir import (
    DataDirError,
    atomic_write_text,
    emotion_of_token,
    emotion_token,
    read_kaldi_map,
    validate_data_dir,
    write_kaldi_map,
)

POSITIONS = ("end", "front", "none")
TOKEN_TYPES = ("bpe", "char", "word")
SPECIAL_FIRST = ("<blank>", "<unk>")
SPECIAL_LAST = "<sos/eos>"


def place_emotion_token(text: str, emotion: str, position: str) -> str:
    """Return ``text`` with the emotion token of ``emotion`` at ``position``."""
    if position not in POSITIONS:
        raise ValueError(f"emotion token position must be one of {POSITIONS}, got {position!r}")
    words = text.split()
    for w in words:
        if emotion_of_token(w) is not None:
            raise ValueError(f"transcript already holds an emotion token {w}: {text!r}")
    if position == "none":
        return " ".join(words)
    tok = emotion_token(emotion)
    return " ".join([tok] + words if position == "front" else words + [tok])


def token_tag(token_type: str, nbpe: int, position: str) -> str:
    """Name of a text configuration, e.g. ``bpe150_emoend``."""
    return f"{token_type}{nbpe if token_type == 'bpe' else ''}_emo{position}"


def _train_sentencepiece(texts: List[str], out_dir: Path, vocab_size: int, model_type: str,
                         symbols: Sequence[str]) -> Path:
    import sentencepiece as spm

    corpus = out_dir / "train_text_for_bpe.txt"
    atomic_write_text(corpus, "".join(t + "\n" for t in texts))
    prefix = out_dir / "bpe"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        input_sentence_size=100000000,
        user_defined_symbols=list(symbols),
        hard_vocab_limit=False,  # a small corpus may not support vocab_size pieces
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def build_tokenizer_for(token_type: str, bpemodel: Optional[Path], nlsyms: Optional[Path]):
    """The ESPnet tokenizer ESPnet's preprocessor will use for this configuration."""
    from espnet_ser.utils.offline import quiet_nltk_downloads

    quiet_nltk_downloads()
    from espnet2.text.build_tokenizer import build_tokenizer

    return build_tokenizer(
        token_type=token_type,
        bpemodel=str(bpemodel) if bpemodel else None,
        non_linguistic_symbols=str(nlsyms) if nlsyms else None,
    )


def prepare_token_dir(
    data_dirs: Dict[str, Path],
    train_set: str,
    out_dir: Path,
    emotions: Sequence[str],
    position: str = "end",
    token_type: str = "bpe",
    nbpe: int = 150,
    bpemode: str = "unigram",
) -> Dict[str, int]:
    """Write ``out_dir/<set>/{text,text_shape}``, the token list and tokenizer model.

    ``data_dirs`` maps set names to Kaldi data directories (with ``text`` and
    ``utt2emo``); the tokenizer is trained on ``train_set`` only. Returns the number of
    utterances per set.
    """
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
    if train_set not in data_dirs:
        raise ValueError(f"train set {train_set!r} is not among {sorted(data_dirs)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    symbols = [emotion_token(e) for e in emotions] if position != "none" else []

    texts: Dict[str, Dict[str, str]] = {}
    for name, d in data_dirs.items():
        validate_data_dir(d, emotions=emotions)
        text = read_kaldi_map(Path(d) / "text")
        utt2emo = read_kaldi_map(Path(d) / "utt2emo")
        out = {}
        for utt, txt in text.items():
            try:
                out[utt] = place_emotion_token(txt, utt2emo[utt], position)
            except ValueError as e:
                raise DataDirError(f"{Path(d) / 'text'}: utterance {utt}: {e}") from e
        texts[name] = out

    nlsyms = None
    if symbols:
        nlsyms = out_dir / "nlsyms.txt"
        atomic_write_text(nlsyms, "".join(s + "\n" for s in symbols))
    bpemodel = None
    if token_type == "bpe":
        bpemodel = _train_sentencepiece(
            list(texts[train_set].values()), out_dir, nbpe, bpemode, symbols
        )
    tokenizer = build_tokenizer_for(token_type, bpemodel, nlsyms if token_type == "char" else None)

    counts: Counter = Counter()
    tokenized: Dict[str, Dict[str, List[str]]] = {}
    for name, mapping in texts.items():
        tokenized[name] = {utt: tokenizer.text2tokens(t) for utt, t in mapping.items()}
        if name == train_set:
            for toks in tokenized[name].values():
                counts.update(toks)
    for sym in symbols:
        for utt, toks in tokenized[train_set].items():
            if texts[train_set][utt].split().count(sym) != toks.count(sym):
                raise RuntimeError(f"the tokenizer split the emotion token {sym} in utterance {utt}")

    vocab = list(SPECIAL_FIRST) + symbols
    vocab += [t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if t not in vocab]
    vocab.append(SPECIAL_LAST)
    atomic_write_text(out_dir / "tokens.txt", "".join(t + "\n" for t in vocab))
    index = set(vocab)

    sizes = {}
    for name, mapping in texts.items():
        set_dir = out_dir / name
        write_kaldi_map(set_dir / "text", mapping)
        shapes = {}
        for utt, toks in tokenized[name].items():
            shapes[utt] = f"{len(toks)},{len(vocab)}"
        write_kaldi_map(set_dir / "text_shape", shapes)
        oov = sum(1 for toks in tokenized[name].values() for t in toks if t not in index)
        total = sum(len(toks) for toks in tokenized[name].values())
        logging.info(f"{name}: {len(mapping)} utterances, {total} tokens, OOV {oov}")
        sizes[name] = len(mapping)

    meta = dict(
        token_type=token_type,
        nbpe=nbpe if token_type == "bpe" else None,
        bpemode=bpemode if token_type == "bpe" else None,
        emo_token_position=position,
        emotions=list(emotions),
        vocab_size=len(vocab),
        bpemodel=str(bpemodel.resolve()) if bpemodel else None,
        token_list=str((out_dir / "tokens.txt").resolve()),
        non_linguistic_symbols=str(nlsyms.resolve()) if nlsyms else None,
        sets=sizes,
    )
    atomic_write_text(out_dir / "token_info.json", json.dumps(meta, indent=2) + "\n")
    logging.info(f"token list: {out_dir / 'tokens.txt'} ({len(vocab)} units)")
    return sizes
