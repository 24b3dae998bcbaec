"""Tests of the synthetic corpus mini_emo (espnet_ser.data.mini_emo, bin/prepare_mini_emo)."""

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ser.bin import prepare_mini_emo as cli
from espnet_ser.data import espeak, mini_emo
from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir
from espnet_ser.data.mini_emo import EMOTIONS, SPEAKERS, CorpusConfig, plan_corpus

TINY = dict(num_train_utts=24, num_valid_utts=12, num_test_utts=24, num_train_spk=3,
            num_valid_spk=3, num_test_spk=3)
TINY_ARGS = [f"--{k}={v}" for k, v in TINY.items()]


# ------------------------------------------------------------------ design (no audio)


def test_vocabulary_and_sentences():
    vocab = set(mini_emo.vocabulary())
    assert len(vocab) >= 200
    sents = mini_emo.generate_sentences(500, seed=1)
    assert sents == mini_emo.generate_sentences(500, seed=1)
    assert sents != mini_emo.generate_sentences(500, seed=2)
    assert len(set(sents)) == 500
    lengths = {len(s.split()) for s in sents}
    assert min(lengths) >= 4 and max(lengths) <= 10 and len(lengths) >= 4
    for s in sents:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", s), s
        assert set(s.split()) <= vocab, s


def test_speakers_are_valid_distinct_and_reproducible():
    assert len(SPEAKERS) >= 16
    assert len({s.spk_id for s in SPEAKERS}) == len(SPEAKERS)
    assert len({s.voice for s in SPEAKERS}) == len(SPEAKERS)
    accents = {s.voice.split("+")[0] for s in SPEAKERS}
    assert len(accents) >= 6
    assert {s.gender for s in SPEAKERS} == {"m", "f"}
    for s in SPEAKERS:
        espeak.check_voice(s.voice)
        assert espeak.is_deterministic_variant(s.voice.split("+")[1])
    # speaker ids sort in table order, so utterance ids group by speaker
    assert [s.spk_id for s in SPEAKERS] == sorted(s.spk_id for s in SPEAKERS)


def test_default_plan():
    plans = plan_corpus(CorpusConfig())
    by_split = defaultdict(list)
    for p in plans:
        by_split[p.split].append(p)
    assert {k: len(v) for k, v in by_split.items()} == {"train": 2400, "valid": 300, "test": 480}
    spks = {k: {p.spk_index for p in v} for k, v in by_split.items()}
    assert [len(spks[k]) for k in ("train", "valid", "test")] == [12, 2, 4]
    assert not (spks["train"] & spks["valid"]) and not (spks["train"] & spks["test"])
    assert not (spks["valid"] & spks["test"])
    assert len({p.utt_id for p in plans}) == len(plans)
    for k in ("train", "test"):
        counts = {e: sum(p.emotion == e for p in by_split[k]) for e in EMOTIONS}
        assert set(counts.values()) == {len(by_split[k]) // 4}
    train_text = {p.text for p in by_split["train"]}
    for k in ("valid", "test"):
        unseen = [p for p in by_split[k] if not p.seen]
        assert 0.4 < len(unseen) / len(by_split[k]) < 0.6
        assert all(p.text not in train_text for p in unseen)
        assert all(p.text in train_text for p in by_split[k] if p.seen)


def test_same_sentence_in_every_emotion_and_ids():
    plans = plan_corpus(CorpusConfig(**TINY))
    groups = defaultdict(set)
    for p in plans:
        spk = SPEAKERS[p.spk_index].spk_id
        assert p.utt_id == f"{spk}_{p.emotion}_{p.sent_index:05d}"
        groups[(p.spk_index, p.sent_index)].add((p.text, p.emotion))
    for members in groups.values():
        assert len({t for t, _ in members}) == 1
    assert max(len(m) for m in groups.values()) == len(EMOTIONS)


def test_uneven_counts_are_honoured():
    cfg = CorpusConfig(num_train_utts=23, num_valid_utts=5, num_test_utts=7, num_train_spk=2,
                       num_valid_spk=1, num_test_spk=2)
    plans = plan_corpus(cfg)
    assert [sum(p.split == s for p in plans) for s in ("train", "valid", "test")] == [23, 5, 7]


@pytest.mark.parametrize("bad", [dict(num_train_spk=15, num_valid_spk=4, num_test_spk=4),
                                 dict(num_test_spk=0), dict(unseen_fraction=1.5),
                                 dict(num_train_utts=0)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        plan_corpus(CorpusConfig(**bad))


def test_utterance_params_follow_profiles():
    cfg = CorpusConfig()
    plans = [p for p in plan_corpus(cfg) if p.split == "train"]
    rates = defaultdict(list)
    for p in plans:
        q = mini_emo.utterance_params(cfg.seed, p)
        assert q == mini_emo.utterance_params(cfg.seed, p)
        rates[p.emotion].append(q["rate"] / SPEAKERS[p.spk_index].rate)
        if p.emotion == "sad":
            assert q["lowpass_hz"] > 0 and q["tremolo_depth"] > 0
        if p.emotion == "neu":
            assert q["lowpass_hz"] == q["shelf_db"] == q["presence_db"] == q["clip_drive"] == 0
            assert q["tremolo_depth"] == 0 and q["breath_db"] < -100
    assert np.mean(rates["sad"]) < np.mean(rates["neu"]) < np.mean(rates["ang"])


# ------------------------------------------------------------------ tiny corpora


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini_emo")
    cli.main(["--out_dir", str(root / "a/data"), "--wav_dir", str(root / "a/wav"),
              "--seed", "5", "--nj", "2"] + TINY_ARGS)
    cli.main(["--out_dir", str(root / "b/data"), "--wav_dir", str(root / "b/wav"),
              "--seed", "5", "--nj", "1"] + TINY_ARGS)
    cli.main(["--out_dir", str(root / "c/data"), "--wav_dir", str(root / "c/wav"),
              "--seed", "6", "--nj", "2"] + TINY_ARGS)
    return root


def _files(root: Path):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_data_dirs_validate_and_are_speaker_disjoint(corpora):
    data = corpora / "a/data"
    spk = {}
    for s, n in (("train", 24), ("valid", 12), ("test", 24)):
        assert validate_data_dir(data / s, emotions=EMOTIONS, check_audio_exists=True) == n
        spk[s] = set(read_kaldi_map(data / s / "utt2spk").values())
        assert len(spk[s]) == 3
        for utt, path in read_kaldi_map(data / s / "wav.scp").items():
            assert Path(path).is_absolute()
            assert utt.startswith(read_kaldi_map(data / s / "utt2spk")[utt] + "_")
    assert not (spk["train"] & spk["valid"] or spk["train"] & spk["test"]
                or spk["valid"] & spk["test"])
    assert (data / "train" / "spk2utt").is_file()


def test_unseen_sentences(corpora):
    data = corpora / "a/data"
    train_text = set(read_kaldi_map(data / "train/text").values())
    for s in ("valid", "test"):
        text = read_kaldi_map(data / s / "text")
        listed = (data / s / "unseen_sentences").read_text().split()
        assert listed == sorted(listed) and listed
        assert {u for u, t in text.items() if t not in train_text} == set(listed)
        assert any(t in train_text for t in text.values())  # seen sentences too
    # text alone does not give the emotion: a test sentence appears with several emotions
    emo = read_kaldi_map(data / "test/utt2emo")
    by_text = defaultdict(set)
    for u, t in read_kaldi_map(data / "test/text").items():
        by_text[t].add(emo[u])
    assert max(len(v) for v in by_text.values()) == 4


def test_audio_format(corpora):
    wavs = read_kaldi_map(corpora / "a/data/test/wav.scp")
    audio_seconds = []  # length of the synthesised audio (samples / rate), not run time
    for path in wavs.values():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        x, _ = sf.read(path, dtype="int16")
        assert np.abs(x.astype(np.int32)).max() < 32767 * 0.95  # peak limited, no clipping
        assert np.sqrt(np.mean((x / 32768.0) ** 2)) > 0.01
        audio_seconds.append(len(x) / 16000)
    assert 1.0 < np.mean(audio_seconds) < 4.0  # sentences of 4-10 words


def test_corpus_json(corpora):
    summary = json.loads((corpora / "a/data/corpus.json").read_text())
    assert summary["sets"]["train"]["num_utts"] == 24
    assert sum(summary["sets"]["test"]["per_emotion"].values()) == 24
    assert len(summary["speakers"]) == 9
    assert {s["split"] for s in summary["speakers"]} == {"train", "valid", "test"}
    assert summary["sets"]["test"]["hours"] > 0


def test_deterministic_with_seed_whatever_nj(corpora):
    a, b = _files(corpora / "a/wav"), _files(corpora / "b/wav")
    assert a.keys() == b.keys() and len(a) == 60
    assert a == b
    for s in ("train", "valid", "test"):
        for name in ("text", "utt2spk", "spk2utt", "utt2emo", "unseen_sentences"):
            if (corpora / "a/data" / s / name).exists():
                assert ((corpora / "a/data" / s / name).read_bytes()
                        == (corpora / "b/data" / s / name).read_bytes())
        scp_a = (corpora / "a/data" / s / "wav.scp").read_text()
        scp_b = (corpora / "b/data" / s / "wav.scp").read_text()
        assert scp_a.replace(str(corpora / "a"), "") == scp_b.replace(str(corpora / "b"), "")


def test_other_seed_differs(corpora):
    ta = read_kaldi_map(corpora / "a/data/train/text")
    tc = read_kaldi_map(corpora / "c/data/train/text")
    assert ta.keys() == tc.keys() and ta != tc
    a, c = _files(corpora / "a/wav"), _files(corpora / "c/wav")
    assert a.keys() == c.keys()
    assert sum(a[k] != c[k] for k in a) == len(a)


def test_rerun_is_a_no_op_and_other_args_do_not_destroy(corpora, caplog):
    data, wav = corpora / "a/data", corpora / "a/wav"
    before = {p: p.stat().st_mtime_ns for p in list(data.rglob("*")) + list(wav.rglob("*"))}
    cli.main(["--out_dir", str(data), "--wav_dir", str(wav), "--seed", "5", "--nj", "2"]
             + TINY_ARGS)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    with pytest.raises(SystemExit) as err:
        cli.main(["--out_dir", str(data), "--wav_dir", str(wav), "--seed", "9"] + TINY_ARGS)
    assert "other arguments" in str(err.value) and "--overwrite" in str(err.value)
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_existing_foreign_data_dir_is_not_replaced(tmp_path):
    (tmp_path / "data/train").mkdir(parents=True)
    keep = tmp_path / "data/train/text"
    keep.write_text("u1 hello\n")
    with pytest.raises(SystemExit) as err:
        cli.main(["--out_dir", str(tmp_path / "data"), "--wav_dir", str(tmp_path / "wav")]
                 + TINY_ARGS)
    assert "train" in str(err.value)
    assert keep.read_text() == "u1 hello\n"


def test_voice_quality_effects_shape_the_spectrum():
    cfg = CorpusConfig(**TINY)
    plans = [p for p in plan_corpus(cfg) if p.split == "train" and p.sent_index == 0
             and p.spk_index == 0]
    assert sorted(p.emotion for p in plans) == list(EMOTIONS)

    def hf_ratio(x):
        spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / 16000)
        return spec[freqs > 3000].sum() / spec.sum()

    ratio = {p.emotion: hf_ratio(mini_emo.synthesize_utterance(cfg.seed, p)) for p in plans}
    assert ratio["sad"] < 0.5 * ratio["neu"]
    assert ratio["ang"] > 1.5 * ratio["neu"]
    assert ratio["hap"] > ratio["neu"]
