"""extend_pretrained: a stock ESPnet model (zoo layout) gains emotion tokens and stays the same model."""

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
import torch
import yaml

from espnet_ser.utils.offline import quiet_nltk_downloads

quiet_nltk_downloads()

from espnet2.tasks.asr import ASRTask  # noqa: E402
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump  # noqa: E402

from espnet_ser.asr.pretrained import (  # noqa: E402
    VOCAB_TENSORS,
    PretrainedError,
    extend_sentencepiece,
    extend_token_list,
    grow_state_dict,
)
from espnet_ser.bin.extend_pretrained import main  # noqa: E402
from espnet_ser.data.datadir import write_data_dir  # noqa: E402
from espnet_ser.features.fbank import FbankExtractor  # noqa: E402
from espnet_ser.tasks.asr_ser import ASRSERTask  # noqa: E402
from espnet_ser.text.emotion_text import prepare_token_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EMO = ["<ang>", "<hap>", "<neu>", "<sad>"]
EXP = "exp/asr_train_asr_raw_en_bpe5000"  # the GigaSpeech conformer's directory
STATS = "exp/asr_stats_raw_en_bpe5000/train/feats_stats.npz"
BPE_DIR = "data/en_token_list/bpe_unigram5000"
SENTS = [
    "THE RED FOX JUMPS OVER THE LAZY DOG",
    "KIDS ARE TALKING BY THE DOOR",
    "DOGS ARE SITTING BY THE DOOR",
    "MY FRIEND PAINTED THREE LAMPS IN THE HOTEL",
    "OUR LAWYER LISTENED NEAR THE CASTLE TOMORROW",
    "A THIN LAMP WAS STANDING IN THE SQUARE",
]
TRAIN_CONF = {
    "frontend": "default",
    "frontend_conf": {"n_fft": 512, "hop_length": 256, "fs": "16k"},
    "specaug": "specaug",
    "specaug_conf": {
        "apply_time_warp": True,
        "time_warp_window": 5,
        "apply_freq_mask": True,
        "freq_mask_width_range": [0, 10],
        "num_freq_mask": 2,
        "apply_time_mask": True,
        "time_mask_width_range": [0, 10],
        "num_time_mask": 2,
    },
    "normalize": "global_mvn",
    "normalize_conf": {"stats_file": STATS},
    "encoder": "conformer",
    "encoder_conf": {
        "output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2,
        "input_layer": "conv2d", "macaron_style": True, "use_cnn_module": True,
        "cnn_module_kernel": 7, "pos_enc_layer_type": "rel_pos",
        "selfattention_layer_type": "rel_selfattn", "activation_type": "swish",
    },
    "decoder": "transformer",
    "decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1},
    "model_conf": {"ctc_weight": 0.3, "lsm_weight": 0.1, "length_normalized_loss": False},
}


chdir = contextlib.chdir


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ESPnet's two relative positional encodings. "legacy": the config has no rel_pos_type
# (ESPnet's default, which maps rel_pos / rel_selfattn to legacy_rel_pos /
# legacy_rel_selfattn), as in the GigaSpeech conformer's config; "latest": rel_pos_type:
# latest, as this toolkit's IEMOCAP configs say.
ENCODINGS = ("legacy", "latest")


def make_zoo(root: Path, rel_pos_type: str = "legacy") -> dict:
    """A GigaSpeech-like model zoo directory holding a small random ESPnet model.

    ``rel_pos_type``: "legacy" leaves the key out of the config (GigaSpeech), "latest"
    writes it.
    """
    train_conf = copy.deepcopy(TRAIN_CONF)
    if rel_pos_type != "legacy":
        train_conf["encoder_conf"]["rel_pos_type"] = rel_pos_type
    bpe_dir = root / BPE_DIR
    bpe_dir.mkdir(parents=True)
    corpus = root / "corpus.txt"
    corpus.write_text("".join(s + "\n" for s in SENTS * 4))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(bpe_dir / "bpe"), vocab_size=45,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(bpe_dir / "bpe.model"))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    tokens = ["<blank>", "<unk>"] + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    tokens.append("<sos/eos>")
    assert len(tokens) not in (2, 32, 64, 80, 257)  # no dimension of the model is the vocab size
    (bpe_dir / "tokens.txt").write_text("".join(t + "\n" for t in tokens))

    rng = np.random.default_rng(0)
    mean, var, count = rng.normal(-4.0, 1.0, 80), rng.uniform(1.0, 4.0, 80), 5000
    (root / STATS).parent.mkdir(parents=True)
    np.savez(root / STATS, count=np.array(count), sum=mean * count,
             sum_square=(var + mean**2) * count)

    conf_file = root / "train.yaml"
    conf_file.write_text(yaml.safe_dump(train_conf))
    with chdir(root):
        args = ASRTask.get_parser().parse_args(
            ["--config", str(conf_file), "--token_list", f"{BPE_DIR}/tokens.txt",
             "--token_type", "bpe", "--bpemodel", f"{BPE_DIR}/bpe.model", "--output_dir", EXP]
        )
        torch.manual_seed(0)
        model = ASRTask.build_model(args)  # reads the token list: config holds it inline
        with torch.no_grad():  # make every output row distinct from the others
            for p in (model.decoder.output_layer.bias, model.ctc.ctc_lo.bias):
                p.normal_(0.0, 0.5)
    (root / EXP).mkdir(parents=True)
    (root / EXP / "config.yaml").write_text(
        yaml_no_alias_safe_dump(vars(args), indent=4, sort_keys=False)
    )
    torch.save(model.state_dict(), root / EXP / "valid.acc.ave_10best.pth")
    return {
        "root": root,
        "config": root / EXP / "config.yaml",
        "model": root / EXP / "valid.acc.ave_10best.pth",
        "tokens": tokens,
        "rel_pos_type": rel_pos_type,
    }


def run(zoo, out, *extra):
    main(["--asr_config", str(zoo["config"]), "--asr_model_file", str(zoo["model"]),
          "--add_tokens", " ".join(EMO), "--output_dir", str(out), *extra])


@pytest.fixture(scope="module", params=ENCODINGS)
def zoo(request, tmp_path_factory):
    return make_zoo(tmp_path_factory.mktemp("zoo"), request.param)


@pytest.fixture(scope="module")
def extended(zoo, tmp_path_factory):
    """The extended model, made from another directory (paths resolve via the config's ancestors)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    before = {p: sha(p) for p in zoo["root"].rglob("*") if p.is_file()}
    with chdir(elsewhere):
        run(zoo, elsewhere / "ext")
    assert {p: sha(p) for p in zoo["root"].rglob("*") if p.is_file()} == before
    return elsewhere / "ext"


@pytest.fixture(scope="module")
def extended_dumped(zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("dumped") / "ext"
    with chdir(zoo["root"]):
        run(zoo, out, "--dumped_feats", "true")
    return out


def stock_model(zoo):
    with chdir(zoo["root"]):
        model, _ = ASRTask.build_model_from_file(zoo["config"], zoo["model"], "cpu")
    return model.eval()


def grown_model(out: Path):
    """The extended model built by ASRSERTask, with its state dict loaded strictly."""
    model, _ = ASRSERTask.build_model_from_file(out / "config.yaml", out / "model.pth", "cpu")
    with (out / "config.yaml").open() as f:
        fresh = ASRSERTask.build_model(argparse.Namespace(**yaml.safe_load(f)))
    fresh.load_state_dict(torch.load(out / "model.pth", weights_only=True), strict=True)
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), k
    return fresh.eval()


def wave(n=20000, seed=3):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.1


def new_index(tokens_old, tokens_new):
    return [tokens_new.index(t) for t in tokens_old]


# --------------------------------------------------------------------------------------


def test_writes_the_extended_model_directory(zoo, extended):
    names = {p.name for p in extended.iterdir() if not p.name.startswith(".")}
    assert names == {"config.yaml", "model.pth", "tokens.txt", "bpe.model", "feats_stats.npz",
                     "feats_config.yaml", "info.json"}
    assert not [p for p in extended.iterdir() if p.name.startswith(".")]  # no temporary left
    old = zoo["tokens"]
    new = (extended / "tokens.txt").read_text().splitlines()
    assert new == old[:-1] + EMO + ["<sos/eos>"]

    conf = yaml.safe_load((extended / "config.yaml").read_text())
    stock = yaml.safe_load(zoo["config"].read_text())
    assert conf["model"] == "asr_ser"
    assert conf["model_conf"] == dict(stock["model_conf"], emotion_tokens=EMO)
    assert conf["token_list"] == str(extended.resolve() / "tokens.txt")
    assert conf["bpemodel"] == str(extended.resolve() / "bpe.model")
    assert conf["normalize_conf"]["stats_file"] == str(extended.resolve() / "feats_stats.npz")
    assert (extended / "feats_stats.npz").read_bytes() == (zoo["root"] / STATS).read_bytes()
    assert conf["frontend"] == "default" and conf["frontend_conf"] == stock["frontend_conf"]
    assert conf["input_size"] is None
    for key in ("encoder", "encoder_conf", "decoder", "decoder_conf", "ctc_conf", "specaug_conf"):
        assert conf[key] == stock[key]
    assert conf["train_data_path_and_name_and_type"] == [] and conf["output_dir"] is None
    # usable as --config of a training run (no key the parser rejects, no stale data paths)
    args = ASRSERTask.get_parser().parse_args(["--config", str(extended / "config.yaml")])
    assert args.model == "asr_ser" and args.train_data_path_and_name_and_type == []

    fb = yaml.safe_load((extended / "feats_config.yaml").read_text())
    # the shipped conf/fbank.yaml describes the same filterbank
    assert fb == yaml.safe_load((REPO / "conf" / "fbank.yaml").read_text())

    info = json.loads((extended / "info.json").read_text())
    assert info["asr_model_file_sha256"] == sha(zoo["model"])
    assert info["old_vocab_size"] == len(old) and info["new_vocab_size"] == len(old) + 4
    assert info["tokens_added"] == {t: len(old) - 1 + i for i, t in enumerate(EMO)}
    assert info["sos_eos_index"] == [len(old) + 3, len(old) + 3]
    assert sorted(info["grown_tensors"]) == sorted(VOCAB_TENSORS)
    assert info["frontend_check"]["equal"] is True
    assert info["pieces_not_in_token_list"] == []
    assert info["verification"]["encoder"]["equal"] is True


def test_grown_state_dict_keeps_old_rows_and_averages_new_ones(zoo, extended):
    old_sd = torch.load(zoo["model"], weights_only=True)
    new_sd = torch.load(extended / "model.pth", weights_only=True)
    assert set(old_sd) == set(new_sd)
    old, new = zoo["tokens"], (extended / "tokens.txt").read_text().splitlines()
    idx = new_index(old, new)
    ordinary = [i for i, t in enumerate(old) if t not in ("<blank>", "<unk>", "<sos/eos>")]
    for k, v in old_sd.items():
        if k in VOCAB_TENSORS:
            assert new_sd[k].shape[0] == len(new) and new_sd[k].shape[1:] == v.shape[1:]
            assert torch.equal(new_sd[k][idx], v), k
            for t in EMO:
                torch.testing.assert_close(new_sd[k][new.index(t)], v[ordinary].mean(0))
        else:
            assert torch.equal(new_sd[k], v), k


def test_grown_model_computes_what_the_stock_model_computes(zoo, extended):
    stock, grown = stock_model(zoo), grown_model(extended)
    old, new = zoo["tokens"], (extended / "tokens.txt").read_text().splitlines()
    idx = new_index(old, new)
    assert grown.sos == grown.eos == len(new) - 1 == idx[stock.sos]
    assert [grown.token_list[i] for i in grown.emotion_ids] == EMO
    x = torch.from_numpy(wave())[None]
    lens = torch.tensor([x.size(1)])
    with torch.no_grad():
        enc_s, elens_s = stock.encode(x, lens)
        enc_g, elens_g = grown.encode(x, lens)
        assert torch.equal(enc_s, enc_g) and torch.equal(elens_s, elens_g)

        # teacher forcing with old tokens only ("THE DOOR" pieces and more)
        sp = spm.SentencePieceProcessor(model_file=str(zoo["root"] / BPE_DIR / "bpe.model"))
        pieces = sp.encode_as_pieces(SENTS[1]) + sp.encode_as_pieces(SENTS[0])
        ys = [old.index(p) for p in pieces]
        ys_s = torch.tensor([[stock.sos] + ys])
        ys_g = torch.tensor([[grown.sos] + [idx[t] for t in ys]])
        ylens = torch.tensor([ys_s.size(1)])
        dec_s = stock.decoder(enc_s, elens_s, ys_s, ylens)[0]
        dec_g = grown.decoder(enc_g, elens_g, ys_g, ylens)[0]
        torch.testing.assert_close(dec_g[..., idx], dec_s, rtol=0, atol=1e-6)
        ctc_s, ctc_g = stock.ctc.ctc_lo(enc_s), grown.ctc.ctc_lo(enc_g)
        torch.testing.assert_close(ctc_g[..., idx], ctc_s, rtol=0, atol=1e-6)

        # the new tokens start below the best old token everywhere
        emo = [new.index(t) for t in EMO]
        for logits in (dec_g, ctc_g):
            assert (logits[..., emo].max(-1).values < logits[..., idx].max(-1).values).all()


def test_grown_model_trains_on_emotion_targets(extended):
    grown = grown_model(extended).train()
    new = (extended / "tokens.txt").read_text().splitlines()
    text = torch.tensor([[5, 6, 7, new.index("<hap>")], [8, 9, new.index("<sad>"), -1]])
    x = torch.from_numpy(np.stack([wave(seed=1), wave(seed=2)]))
    loss, stats, _ = grown(x, torch.tensor([20000, 16000]), text, torch.tensor([4, 3]))
    assert torch.isfinite(loss) and "acc_emo" in stats
    loss.backward()


def test_bpe_model_keeps_old_segmentation_and_adds_whole_emotion_pieces(zoo, extended):
    old = spm.SentencePieceProcessor(model_file=str(zoo["root"] / BPE_DIR / "bpe.model"))
    new = spm.SentencePieceProcessor(model_file=str(extended / "bpe.model"))
    assert new.get_piece_size() == old.get_piece_size() + 4
    texts = SENTS + ["HELLO WORLD", "ZZZ QUIXOTIC JOKE", "lower case é ü", "A  B"]
    for t in texts:
        assert new.encode_as_pieces(t) == old.encode_as_pieces(t), t
        assert new.encode_as_ids(t) == old.encode_as_ids(t), t
    tokens = (extended / "tokens.txt").read_text().splitlines()
    proto = sp_pb2.ModelProto()
    proto.ParseFromString((extended / "bpe.model").read_bytes())
    types = [sp_pb2.ModelProto.SentencePiece.Type.Name(p.type) for p in proto.pieces]
    for tok in EMO:
        tid = new.piece_to_id(tok)
        assert tid != new.unk_id() and types[tid] == "USER_DEFINED"
        assert old.piece_to_id(tok) == old.unk_id()  # unknown before
        pieces = new.encode_as_pieces(f"KIDS ARE HERE {tok}")
        assert pieces.count(tok) == 1 and all(p in tokens for p in pieces)
        assert new.encode_as_ids(f"{tok} THE DOOR").count(tid) == 1
        assert new.decode_pieces(new.encode_as_pieces(f"THE DOOR {tok}")) == f"THE DOOR {tok}"


def test_dumped_feature_model_matches_the_stock_model_on_raw_waves(zoo, extended_dumped):
    conf = yaml.safe_load((extended_dumped / "config.yaml").read_text())
    assert conf["frontend"] is None and conf["frontend_conf"] == {} and conf["input_size"] == 80
    assert not any(k.startswith("frontend.") for k in torch.load(extended_dumped / "model.pth"))
    stock, grown = stock_model(zoo), grown_model(extended_dumped)
    extractor = FbankExtractor.from_yaml(extended_dumped / "feats_config.yaml")
    for n in (20000, 12345):
        w = wave(n, seed=n)
        feats = torch.from_numpy(extractor(w))[None]
        with torch.no_grad():
            enc_s, lens_s = stock.encode(torch.from_numpy(w)[None], torch.tensor([n]))
            enc_g, lens_g = grown.encode(feats, torch.tensor([feats.size(1)]))
        assert torch.equal(lens_s, lens_g)
        assert torch.equal(enc_s, enc_g)


def test_zoo_root_as_current_directory_and_token_list_file(zoo, tmp_path):
    conf = yaml.safe_load(zoo["config"].read_text())
    conf["token_list"] = f"{BPE_DIR}/tokens.txt"  # a path, relative to the zoo root
    conf["no_such_option"] = None  # e.g. an option of an older ESPnet release
    other = zoo["root"] / "exp" / "token_list_as_path"
    other.mkdir(exist_ok=True)
    (other / "config.yaml").write_text(yaml.safe_dump(conf))
    with chdir(zoo["root"]):
        main(["--asr_config", str(other / "config.yaml"), "--asr_model_file", str(zoo["model"]),
              "--add_tokens", "<hap> <sad>", "--output_dir", str(tmp_path / "out"),
              "--verify", "false"])
    tokens = (tmp_path / "out" / "tokens.txt").read_text().splitlines()
    assert tokens == zoo["tokens"][:-1] + ["<hap>", "<sad>", "<sos/eos>"]
    info = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["token_list_source"] == str(zoo["root"] / BPE_DIR / "tokens.txt")
    assert "no_such_option" in info["config_keys_dropped"]
    assert "no_such_option" not in yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    grown_model(tmp_path / "out")


def test_missing_files_are_named(zoo, tmp_path, capsys):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(zoo["config"], lonely / "config.yaml")
    shutil.copy(zoo["model"], lonely / "model.pth")
    base = ["--asr_config", str(lonely / "config.yaml"), "--asr_model_file",
            str(lonely / "model.pth"), "--add_tokens", "<hap>", "--output_dir", str(tmp_path / "o"),
            "--verify", "false"]
    with chdir(tmp_path):
        with pytest.raises(SystemExit) as e:
            main(base)
        assert e.value.code == 1
        err = capsys.readouterr().err
        assert f"bpemodel {BPE_DIR}/bpe.model not found" in err and "--bpemodel" in err
        with pytest.raises(SystemExit):
            main(base + ["--bpemodel", str(zoo["root"] / BPE_DIR / "bpe.model")])
        err = capsys.readouterr().err
        assert f"normalize_conf.stats_file {STATS} not found" in err and "--stats_file" in err
        with pytest.raises(SystemExit):
            main(base + ["--bpemodel", str(tmp_path / "nope.model")])
        assert f"--bpemodel {tmp_path / 'nope.model'}: no such file" in capsys.readouterr().err
        assert not (tmp_path / "o").exists()
        main(base + ["--bpemodel", str(zoo["root"] / BPE_DIR / "bpe.model"),
                     "--stats_file", str(zoo["root"] / STATS)])
    assert json.loads((tmp_path / "o" / "info.json").read_text())["stats_file_source"] == str(
        zoo["root"] / STATS)


def test_existing_tokens_and_overwriting_inputs_are_refused(zoo, extended, tmp_path):
    from espnet_ser.asr.pretrained import extend_pretrained

    with pytest.raises(PretrainedError, match="only 'espnet' models"):  # extended already
        extend_pretrained(extended / "config.yaml", extended / "model.pth", ["<hap>"],
                          tmp_path / "again", verify=False)
    with pytest.raises(PretrainedError, match="--add_tokens: token '<hap>' occurs twice"):
        extend_pretrained(zoo["config"], zoo["model"], ["<hap>", "<hap>"], tmp_path / "again")
    with pytest.raises(PretrainedError, match=r"token_list: already holds ▁ \(index 2\)"):
        extend_pretrained(zoo["config"], zoo["model"], ["<hap>", "▁"], tmp_path / "again")
    assert not (tmp_path / "again").exists()
    before = sha(zoo["config"])
    with pytest.raises(PretrainedError, match="would overwrite the input"):
        extend_pretrained(zoo["config"], zoo["model"], EMO, zoo["config"].parent, verify=False)
    assert sha(zoo["config"]) == before


def test_token_layout_rules():
    new, idx = extend_token_list(["<blank>", "<unk>", "a", "<sos/eos>"], ["<ang>", "<hap>"])
    assert new == ["<blank>", "<unk>", "a", "<ang>", "<hap>", "<sos/eos>"] and idx == [0, 1, 2, 5]
    # no <sos/eos> by name: ESPnet uses the last token, which stays last
    new, idx = extend_token_list(["<blank>", "a", "<eos>"], ["<ang>"])
    assert new == ["<blank>", "a", "<ang>", "<eos>"] and idx == [0, 1, 3]
    # a named <sos/eos> elsewhere keeps its index; the new tokens are appended
    new, idx = extend_token_list(["<blank>", "<sos/eos>", "a"], ["<ang>"])
    assert new == ["<blank>", "<sos/eos>", "a", "<ang>"] and idx == [0, 1, 2]
    with pytest.raises(PretrainedError, match="already holds a"):
        extend_token_list(["<blank>", "a", "<sos/eos>"], ["a"])


def test_unexpected_vocabulary_tensor_is_an_error():
    old = {"decoder.output_layer.bias": torch.zeros(3), "decoder.extra.weight": torch.zeros(3, 2)}
    shapes = {"decoder.output_layer.bias": torch.Size([4]), "decoder.extra.weight": torch.Size([4, 2])}
    with pytest.raises(PretrainedError, match="decoder.extra.weight changes shape"):
        grow_state_dict(old, shapes, [0, 1, 3], [1])
    sd, grown = grow_state_dict({"ctc.ctc_lo.bias": torch.tensor([1.0, 2.0, 9.0])},
                                {"ctc.ctc_lo.bias": torch.Size([4])}, [0, 1, 3], [0, 1])
    assert grown == ["ctc.ctc_lo.bias"] and sd["ctc.ctc_lo.bias"].tolist() == [1.0, 2.0, 1.5, 9.0]


def test_sentencepiece_refuses_existing_pieces(zoo):
    with pytest.raises(PretrainedError, match="already has the piece"):
        extend_sentencepiece(zoo["root"] / BPE_DIR / "bpe.model", ["<hap>", "▁"])


# --------------------------------------------------------------------------------------
# Stage 2 with the extended model's tokenizer


def make_sets(root, sents):
    dirs = {}
    for name, n in (("train", 8), ("valid", 4)):
        fields = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2emo")}
        for i in range(n):
            utt = f"{name}{i % 2}_{i:03d}"
            fields["wav.scp"][utt] = f"/nonexistent/{utt}.wav"
            fields["text"][utt] = sents[i % len(sents)]
            fields["utt2spk"][utt] = f"{name}{i % 2}"
            fields["utt2emo"][utt] = ["ang", "hap", "neu", "sad"][i % 4]
        write_data_dir(root / name, fields, emotions=["ang", "hap", "neu", "sad"])
        dirs[name] = root / name
    return dirs


def test_stage2_with_the_extended_tokenizer(zoo, extended, tmp_path, caplog):
    dirs = make_sets(tmp_path / "data", SENTS[:3] + ["THE DOOR is open 42"])
    out = tmp_path / "tok"
    with caplog.at_level(logging.INFO):
        prepare_token_dir(dirs, "train", out, ["ang", "hap", "neu", "sad"], position="end",
                          bpemodel=extended / "bpe.model", token_list=extended / "tokens.txt")
    assert (out / "bpe.model").read_bytes() == (extended / "bpe.model").read_bytes()
    assert (out / "tokens.txt").read_text() == (extended / "tokens.txt").read_text()
    vocab = (out / "tokens.txt").read_text().splitlines()
    sp = spm.SentencePieceProcessor(model_file=str(out / "bpe.model"))
    texts = dict(l.split(maxsplit=1) for l in (out / "valid" / "text").read_text().splitlines())
    shapes = dict(l.split() for l in (out / "valid" / "text_shape").read_text().splitlines())
    for utt, text in texts.items():
        pieces = sp.encode_as_pieces(text)
        assert pieces.count(text.split()[-1]) == 1
        assert shapes[utt] == f"{len(pieces)},{len(vocab)}"
    meta = json.loads((out / "token_info.json").read_text())
    assert meta["pretrained"] is True and meta["vocab_size"] == len(vocab)
    # the vocabulary is upper case: so are the transcripts ("is open" -> "IS OPEN")
    train_text = (out / "train" / "text").read_text()
    assert "THE DOOR IS OPEN 42 <" in train_text and "is open" not in train_text
    assert meta["oov"]["train"] > 0  # the digits are unknown to the stock model
    assert "not in" in caplog.text and "become <unk>" in caplog.text

    # the stock tokenizer has no emotion pieces
    with pytest.raises(ValueError, match="extend_pretrained first"):
        prepare_token_dir(dirs, "train", tmp_path / "tok2", ["ang", "hap", "neu", "sad"],
                          bpemodel=zoo["root"] / BPE_DIR / "bpe.model",
                          token_list=zoo["root"] / BPE_DIR / "tokens.txt")
    assert not (tmp_path / "tok2").exists()


def test_dumped_feats_refused_when_the_stored_mel_matrix_differs(zoo, tmp_path):
    # e.g. a model trained with another librosa: its state dict holds another mel matrix
    from espnet_ser.asr.pretrained import extend_pretrained

    sd = torch.load(zoo["model"], weights_only=True)
    sd["frontend.logmel.melmat"] = sd["frontend.logmel.melmat"] * 1.01
    torch.save(sd, tmp_path / "model.pth")
    with chdir(zoo["root"]):
        with pytest.raises(PretrainedError, match="dumped features would not match"):
            extend_pretrained(zoo["config"], tmp_path / "model.pth", EMO, tmp_path / "d",
                              dumped_feats=True)
        info = extend_pretrained(zoo["config"], tmp_path / "model.pth", EMO, tmp_path / "r")
    assert info["frontend_check"]["equal"] is False and info["verification"]["encoder"]["equal"]


# --------------------------------------------------------------------------------------
# Stage 4 with --pretrained_dir: the training config on the pretrained architecture

IEMOCAP_CONF = REPO / "egs" / "iemocap" / "conf" / "tuning"
POS_ENC = {"legacy": "LegacyRelPositionalEncoding", "latest": "RelPositionalEncoding"}


def merged_config(pretrained: Path, train_config: Path, out: Path) -> dict:
    from espnet_ser.bin.pretrained_train_config import main as merge_main

    merge_main(["--pretrained_dir", str(pretrained), "--train_config", str(train_config),
                "--output", str(out)])
    return yaml.safe_load(out.read_text())


def stage4_model(config: Path, pretrained: Path, *overrides):
    """The model stage 4 trains from: its command line over ``config``, then init_param.

    The options are those stage 4 passes (tokenizer, input size, normalisation); the
    parameters are loaded by ESPnet's own ``--init_param`` loader, as its trainer does.
    """
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    args = ASRSERTask.get_parser().parse_args(
        ["--config", str(config), "--token_type", "bpe",
         "--token_list", str(pretrained / "tokens.txt"), "--bpemodel", str(pretrained / "bpe.model"),
         "--input_size", "80", "--normalize", "global_mvn",
         "--normalize_conf", f"stats_file={pretrained / 'feats_stats.npz'}", *overrides])
    torch.manual_seed(1)
    model = ASRSERTask.build_model(args)
    for p in args.init_param:
        load_pretrained_model(p, model, ignore_init_mismatch=False)
    return model.eval(), args


def test_stage4_model_starts_from_the_stock_encoder_output(zoo, extended_dumped, tmp_path, capsys):
    """The shipped GST config (rel_pos_type: latest, 12 x 512) on a small pretrained model."""
    enc = zoo["rel_pos_type"]
    conf = merged_config(extended_dumped, IEMOCAP_CONF / "train_asr_ser_conformer_gst.yaml",
                         tmp_path / "train_config.yaml")
    log = capsys.readouterr().err
    ec = conf["encoder_conf"]
    assert conf["encoder"] == "gst_conformer"  # extends the pretrained conformer
    assert ec["rel_pos_type"] == enc and ec["pos_enc_layer_type"] == "rel_pos"
    assert ec["selfattention_layer_type"] == "rel_selfattn"
    assert (ec["output_size"], ec["num_blocks"], ec["cnn_module_kernel"]) == (32, 2, 7)
    assert ec["cond_layers"] is None and ec["style_ffn"] == "shared"  # the toolkit's fields
    assert conf["style_encoder"] == "gst" and conf["optim_conf"] == {"lr": 0.0015}
    assert conf["decoder_conf"]["num_blocks"] == 1 and conf["frontend"] is None
    assert conf["init_param"] == [str(extended_dumped / "model.pth")]
    # every field taken is logged; the replaced values are named
    assert f"INFO: from {extended_dumped / 'config.yaml'}: encoder_conf.rel_pos_type = \"{enc}\"" in log
    assert "WARNING: replaced by the pretrained model's value: encoder_conf.output_size: 512 in" in log
    if enc == "legacy":
        assert "encoder_conf.rel_pos_type: \"latest\" in" in log
        assert "encoder_conf.rel_pos_type = \"legacy\" (ConformerEncoder's default)" in log
    else:
        assert "encoder_conf.rel_pos_type: " not in log
    header = (tmp_path / "train_config.yaml").read_text().split("\nmodel:")[0]
    assert "encoder_conf.output_size = 32" in header and "output_size: 512" in header

    stock = stock_model(zoo)
    model, args = stage4_model(tmp_path / "train_config.yaml", extended_dumped)
    assert type(stock.encoder.embed[-1]).__name__ == POS_ENC[enc]
    assert type(model.encoder.embed[-1]).__name__ == POS_ENC[enc]
    extractor = FbankExtractor.from_yaml(extended_dumped / "feats_config.yaml")
    w = wave(20000, seed=7)
    feats = torch.from_numpy(extractor(w))[None]
    style = torch.randn(1, model.encoder.style_dim)  # the style FFN starts at zero
    with torch.no_grad():
        enc_s, lens_s = stock.encode(torch.from_numpy(w)[None], torch.tensor([w.size]))
        enc_m, lens_m = model.encode(feats, torch.tensor([feats.size(1)]), style=style)
    assert torch.equal(lens_s, lens_m) and torch.equal(enc_s, enc_m)

    # the training config's own encoding would compute something else on a legacy model
    if enc == "legacy":
        other, _ = stage4_model(tmp_path / "train_config.yaml", extended_dumped,
                                "--encoder_conf", "rel_pos_type=latest")
        with torch.no_grad():
            enc_o, _ = other.encode(feats, torch.tensor([feats.size(1)]), style=style)
        assert (enc_o - enc_s).abs().max() > 1e-3


def test_training_config_init_param_follows_the_pretrained_model(extended_dumped, tmp_path):
    conf = merged_config(extended_dumped, IEMOCAP_CONF / "train_asr_ser_conformer_ptgst.yaml",
                         tmp_path / "c.yaml")
    assert conf["init_param"] == [str(extended_dumped / "model.pth"),
                                  "exp/gst_tacotron/gst.pth::style_encoder"]
    # the baseline config (encoder: conformer) keeps ESPnet's class
    conf = merged_config(extended_dumped, IEMOCAP_CONF / "train_asr_ser_conformer.yaml",
                         tmp_path / "b.yaml")
    assert conf["encoder"] == "conformer" and conf.get("style_encoder") is None
    assert conf["model_conf"]["emotion_tokens"] == EMO and conf["model_conf"]["ctc_weight"] == 0.3
    model, _ = stage4_model(tmp_path / "b.yaml", extended_dumped)
    assert [model.token_list[i] for i in model.emotion_ids] == EMO


def test_training_config_that_cannot_start_from_the_pretrained_model_is_refused(
    extended_dumped, tmp_path, capsys
):
    from espnet_ser.bin.pretrained_train_config import main as merge_main

    base = yaml.safe_load((IEMOCAP_CONF / "train_asr_ser_conformer_gst.yaml").read_text())
    for change, message in (
        ({"encoder": "transformer"}, "encoder: transformer cannot start from the pretrained "
                                     "model's encoder: conformer"),
        ({"decoder": "rnn", "decoder_conf": {}}, "decoder: rnn cannot start from"),
        ({"encoder_conf": dict(base["encoder_conf"], no_such_arg=1)},
         "encoder_conf.no_such_arg is not an argument of gst_conformer"),
        ({"ctc_conf": {"no_such_arg": 1}}, "ctc_conf.no_such_arg is not an argument"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(dict(base, **change)))
        with pytest.raises(SystemExit) as e:
            merge_main(["--pretrained_dir", str(extended_dumped), "--train_config", str(bad),
                        "--output", str(tmp_path / "out.yaml")])
        assert e.value.code == 1
        err = capsys.readouterr().err
        assert message in err and str(bad) in err, err
        assert not (tmp_path / "out.yaml").exists()
