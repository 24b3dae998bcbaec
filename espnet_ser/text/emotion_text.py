"""Stage 2: transcripts with an emotion token (end, front or none) and the token list,
built with ESPnet's own tokenizers (each emotion token one unit); a pretrained tokenizer
(``bpemodel`` + ``token_list``) is copied and used as is.
"""

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_ser.data.datadir import DataDirError, emotion_of_token, emotion_token, validate_data_dir
from espnet_ser.utils.io import atomic_copy, atomic_write_text, read_kaldi_map, write_kaldi_map

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
    spm.SentencePieceTrainer.train(  # hard_vocab_limit: a small corpus may have fewer pieces
        input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, input_sentence_size=100000000,
        user_defined_symbols=list(symbols), hard_vocab_limit=False, minloglevel=2)
    return prefix.with_suffix(".model")


def check_pretrained_tokenizer(bpemodel: Path, token_list: Path, symbols: Sequence[str]
                               ) -> List[str]:
    """``token_list``'s tokens, checked to hold each emotion token as one piece of the
    sentencepiece model (else ValueError naming the file at fault)."""
    import sentencepiece as spm

    hint = "run espnet_ser.bin.extend_pretrained first"
    for path, what in ((bpemodel, "sentencepiece model"), (token_list, "token list")):
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such {what}")
    with open(token_list, encoding="utf-8") as f:
        vocab = [line.rstrip() for line in f]
    if not vocab or any(t == "" or any(c.isspace() for c in t) for t in vocab):
        raise ValueError(f"{token_list}: empty, or a line holds no token or white space")
    dup = sorted(t for t, n in Counter(vocab).items() if n > 1)
    if dup:
        raise ValueError(f"{token_list}: token(s) listed twice: {' '.join(dup)}")
    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(str(bpemodel))
    except Exception as e:
        raise ValueError(f"{bpemodel}: not a sentencepiece model ({e})") from e
    missing = [s for s in symbols if s not in vocab]
    if missing:
        raise ValueError(f"{token_list}: emotion token(s) {' '.join(missing)} missing; {hint}")
    for sym in symbols:
        tid = sp.PieceToId(sym)
        known = tid != sp.unk_id() and sp.IdToPiece(tid) == sym
        if not known or sp.EncodeAsIds(f"a {sym} b").count(tid) != 1:
            raise ValueError(
                f"{bpemodel}: the emotion token {sym} is not one piece of the model "
                f"('a {sym} b' -> {sp.EncodeAsPieces(f'a {sym} b')}); {hint}")
    return vocab


def vocabulary_is_upper_case(tokens: Sequence[str]) -> bool:
    """True if most cased units of a token list are upper case (e.g. GigaSpeech's BPE)."""
    cased = [t for t in tokens if t.lower() != t.upper() and emotion_of_token(t) is None
             and not (t.startswith("<") and t.endswith(">"))]
    return sum(t == t.upper() for t in cased) > len(cased) / 2


def build_tokenizer_for(token_type: str, bpemodel: Optional[Path], nlsyms: Optional[Path]):
    """The ESPnet tokenizer ESPnet's preprocessor will use for this configuration."""
    from espnet_ser.utils.offline import quiet_nltk_downloads

    quiet_nltk_downloads()
    from espnet2.text.build_tokenizer import build_tokenizer

    return build_tokenizer(token_type=token_type, bpemodel=str(bpemodel) if bpemodel else None,
                           non_linguistic_symbols=str(nlsyms) if nlsyms else None)


def prepare_token_dir(data_dirs: Dict[str, Path], train_set: str, out_dir: Path,
                      emotions: Sequence[str], position: str = "end", token_type: str = "bpe",
                      nbpe: int = 150, bpemode: str = "unigram",
                      bpemodel: Optional[Path] = None,
                      token_list: Optional[Path] = None) -> Dict[str, int]:
    """Write ``out_dir/<set>/{text,text_shape,emotion_id}`` for each ``{set: data dir}``, the
    token list and model (trained on ``train_set`` or pretrained); return utterances per set."""
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
    pretrained = bpemodel is not None or token_list is not None
    if pretrained:
        if bpemodel is None or token_list is None:
            raise ValueError("a pretrained tokenizer needs both bpemodel and token_list")
        if token_type != "bpe":
            raise ValueError(f"a pretrained sentencepiece tokenizer needs token_type bpe, "
                             f"got {token_type}")
        bpemodel, token_list = Path(bpemodel), Path(token_list)
    if train_set not in data_dirs:
        raise ValueError(f"train set {train_set!r} is not among {sorted(data_dirs)}")
    out_dir = Path(out_dir)
    symbols = [emotion_token(e) for e in emotions] if position != "none" else []
    given_vocab = check_pretrained_tokenizer(bpemodel, token_list, symbols) if pretrained else None
    out_dir.mkdir(parents=True, exist_ok=True)

    upper = pretrained and vocabulary_is_upper_case(given_vocab)
    if upper:
        logging.info(f"{token_list}: an upper-case vocabulary (e.g. GigaSpeech); transcripts "
                     f"are upper-cased to match it (emotion tokens stay as they are)")
    texts: Dict[str, Dict[str, str]] = {}
    emotion_ids: Dict[str, Dict[str, str]] = {}
    for name, d in data_dirs.items():
        validate_data_dir(d, emotions=emotions)
        text = read_kaldi_map(Path(d) / "text")
        utt2emo = read_kaldi_map(Path(d) / "utt2emo")
        out = {}
        for utt, txt in text.items():
            try:
                out[utt] = place_emotion_token(txt.upper() if upper else txt, utt2emo[utt],
                                               position)
            except ValueError as e:
                raise DataDirError(f"{Path(d) / 'text'}: utterance {utt}: {e}") from e
        texts[name] = out
        emotion_ids[name] = {utt: str(list(emotions).index(utt2emo[utt])) for utt in text}

    nlsyms = None
    if symbols:
        nlsyms = out_dir / "nlsyms.txt"
        atomic_write_text(nlsyms, "".join(s + "\n" for s in symbols))
    source = {}
    if pretrained:
        source = dict(source_bpemodel=str(bpemodel.resolve()),
                      source_token_list=str(token_list.resolve()))
        atomic_copy(bpemodel, out_dir / "bpe.model", keep_mode=True)
        atomic_copy(token_list, out_dir / "tokens.txt", keep_mode=True)
        bpemodel = out_dir / "bpe.model"
    elif token_type == "bpe":
        bpemodel = _train_sentencepiece(
            list(texts[train_set].values()), out_dir, nbpe, bpemode, symbols)
    tokenizer = build_tokenizer_for(token_type, bpemodel, nlsyms if token_type == "char" else None)

    tokenized: Dict[str, Dict[str, List[str]]] = {
        name: {utt: tokenizer.text2tokens(t) for utt, t in mapping.items()}
        for name, mapping in texts.items()}
    counts = Counter(t for toks in tokenized[train_set].values() for t in toks)
    for sym in symbols:
        for utt, toks in tokenized[train_set].items():
            if texts[train_set][utt].split().count(sym) != toks.count(sym):
                raise RuntimeError(f"the tokenizer split the emotion token {sym} in utterance {utt}")

    if pretrained:
        vocab = given_vocab
    else:
        vocab = list(SPECIAL_FIRST) + symbols
        vocab += [t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
                  if t not in vocab]
        vocab.append(SPECIAL_LAST)
        atomic_write_text(out_dir / "tokens.txt", "".join(t + "\n" for t in vocab))
    index = set(vocab)
    unk = SPECIAL_FIRST[1]

    sizes, oov_counts = {}, {}
    for name, mapping in texts.items():
        set_dir = out_dir / name
        write_kaldi_map(set_dir / "text", mapping)
        write_kaldi_map(set_dir / "text_shape",
                        {utt: f"{len(toks)},{len(vocab)}" for utt, toks in tokenized[name].items()})
        # reference emotion as an index into ``emotions``: the oracle style's input
        write_kaldi_map(set_dir / "emotion_id", emotion_ids[name])
        oov = Counter(t for toks in tokenized[name].values() for t in toks
                      if t not in index or t == unk)
        total = sum(len(toks) for toks in tokenized[name].values())
        n_oov = sum(oov.values())
        logging.info(f"{name}: {len(mapping)} utterances, {total} tokens, OOV {n_oov}")
        if n_oov and pretrained:
            common = ", ".join(f"{t!r} x{c}" for t, c in oov.most_common(10))
            logging.warning(
                f"{name}: {n_oov} of {total} tokens ({100 * n_oov / max(total, 1):.2f}%) are "
                f"not in {token_list} and become {unk} ({common}); normalise the "
                "transcripts as the pretrained model's were (e.g. letter case)")
        sizes[name] = len(mapping)
        oov_counts[name] = n_oov

    if pretrained:  # describe the given model
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(bpemodel.read_bytes())
        nbpe = len(proto.pieces)
        bpemode = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(
            proto.trainer_spec.model_type).lower()
    bpe = token_type == "bpe"
    meta = dict(token_type=token_type, pretrained=pretrained, nbpe=nbpe if bpe else None,
                bpemode=bpemode if bpe else None, emo_token_position=position,
                emotions=list(emotions), vocab_size=len(vocab),
                bpemodel=str(bpemodel.resolve()) if bpemodel else None,
                token_list=str((out_dir / "tokens.txt").resolve()),
                non_linguistic_symbols=str(nlsyms.resolve()) if nlsyms else None,
                sets=sizes, oov=oov_counts, **source)
    atomic_write_text(out_dir / "token_info.json", json.dumps(meta, indent=2) + "\n")
    logging.info(f"token list: {out_dir / 'tokens.txt'} ({len(vocab)} units)")
    return sizes
