"""mini_emo: a small synthetic emotional speech corpus made with eSpeak NG (see
egs/mini_emo/README.md): each speaker says each sentence in every emotion. One seed gives
byte-identical files whatever ``nj`` (seeded draws, fixed chunks in fresh processes).
"""

import hashlib
import json
import logging
import math
import multiprocessing
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet_ser.utils.io import atomic_path, atomic_write_text

EMOTIONS: Tuple[str, ...] = ("ang", "hap", "neu", "sad")
SAMPLE_RATE = 16000
MAX_PEAK = 10 ** (-1.0 / 20)  # -1 dBFS
CHUNK_SIZE = 100  # utterances per worker task; part of the corpus definition
CORPUS_VERSION = 1


def _words(text: str) -> Tuple[str, ...]:  # comma-separated; an entry may hold several words
    return tuple(w.strip() for w in text.split(","))


def _verbs(text: str) -> Tuple[Tuple[str, str], ...]:  # ``base/past`` pairs
    return tuple(tuple(pair.split("/")) for pair in text.split())


# -------------------- Vocabulary and sentences (their order is part of the corpus)
POSSESSIVES = _words("the, my, your, his, her, our, their, that")
PEOPLE = _words(
    "teacher, doctor, neighbour, brother, sister, mother, father, farmer, driver, nurse, "
    "pilot, baker, waiter, captain, student, manager, painter, singer, cousin, uncle, aunt, "
    "gardener, lawyer, soldier, writer, dancer, sailor, friend, officer, engineer, cook, "
    "guard, clerk, tailor, judge, actor, coach, porter, grandmother, plumber")
ANIMALS = _words("dog, cat, horse, bird, rabbit, goat, fox, duck, mouse, pony, sheep, cow")
OBJECTS = _words(
    "letter, book, key, box, coat, bottle, ticket, phone, basket, lamp, chair, table, map, "
    "bag, cup, picture, window, door, bicycle, car, parcel, umbrella, camera, ladder, "
    "blanket, hammer, candle, apple, bread, cake, plate, kettle, radio, clock, shirt, jacket, "
    "wallet, pencil, bucket, rope, newspaper, suitcase, envelope, mirror, carpet")
PLACES = _words(
    "kitchen, garden, station, market, office, library, river, bridge, harbour, village, "
    "church, school, hospital, bakery, museum, forest, beach, hotel, theatre, hall, park, "
    "farm, airport, castle, square, valley, cottage, factory, stadium, garage, post office, "
    "bus stop")
TIMES = _words(
    "yesterday, today, tonight, this morning, last night, on monday, on tuesday, on friday, "
    "on sunday, every evening, after lunch, before dinner, at noon, last week, next week, "
    "tomorrow, in the spring, at dawn, this afternoon, in october, at midnight, after school")
ADJECTIVES = _words(
    "red, blue, green, old, new, small, large, heavy, yellow, wooden, empty, clean, warm, "
    "cold, brown, white, black, tall, short, round, quiet, long, narrow, bright, dark, plain, "
    "soft, thin, little, grey")
VERBS_T = _verbs(  # transitive, taking an object
    "find/found bring/brought paint/painted open/opened carry/carried sell/sold wash/washed "
    "fix/fixed drop/dropped move/moved buy/bought borrow/borrowed clean/cleaned close/closed "
    "wrap/wrapped hide/hid keep/kept take/took leave/left pack/packed check/checked "
    "mend/mended send/sent show/showed lift/lifted return/returned fetch/fetched "
    "count/counted measure/measured polish/polished")
VERBS_I = _verbs(  # intransitive
    "arrive/arrived wait/waited stay/stayed sleep/slept work/worked walk/walked stop/stopped "
    "rest/rested listen/listened sit/sat stand/stood run/ran swim/swam read/read eat/ate "
    "play/played")
ADVERBS = _words("slowly, quickly, quietly, early, late, again, alone, together, carefully, "
                 "outside, upstairs, downstairs")
NUMBERS = _words("two, three, four, five, six, seven, eight, nine, ten, twelve")
UNCOUNTABLE = ("bread",)
MIN_WORDS, MAX_WORDS = 4, 10


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def vocabulary() -> List[str]:  # all words the sentence generator can use, sorted
    groups = (POSSESSIVES, PEOPLE, ANIMALS, OBJECTS, PLACES, TIMES, ADJECTIVES, ADVERBS, NUMBERS)
    words = {w for group in groups for item in group for w in item.split()}
    words.update(w for pair in VERBS_T + VERBS_I for w in pair)
    words.update(plural(o) for o in OBJECTS if o not in UNCOUNTABLE)
    words.update("a and at by in near to from will did we i there is was under behind with"
                 .split())
    return sorted(words)


# The sentence templates; each {slot} is drawn in turn, left to right (see _sentence).
TEMPLATES = (
    "{person} {vt} the {adj} {obj}", "{person} {vt} the {obj} {time}",
    "{subject} {vi} near the {place} {time}", "{person} {vt} {poss} {obj} in the {place}",
    "the {adj} {obj} {is} in the {place}", "{person} will {vt0} the {obj} {time}",
    "did {person} {vt0} the {adj} {obj}", "{time} {person} {vt} a {adj} {obj}",
    "{person} and {person} {vi} {adv}", "{we} {vt} the {obj} {prep} the {place}",
    "{person} {vt} {num} {objs} to the {place}", "there {is} a {adj} {obj} by the {place}",
    "{subject} {vi} {adv}", "{person} {vt} the {obj}",
    "{time} {person} and {person} {vi} near the {place}",
)
_COUNTABLE = tuple(o for o in OBJECTS if o not in UNCOUNTABLE)


def _sentence(rng: random.Random) -> str:
    c = rng.choice

    def person():
        return f"{c(POSSESSIVES)} {c(PEOPLE)}"
    template = TEMPLATES[rng.randrange(len(TEMPLATES))]
    vt, vi = c(VERBS_T), c(VERBS_I)
    slots = {
        "person": person, "vt": lambda: vt[1], "vt0": lambda: vt[0], "vi": lambda: vi[1],
        "subject": lambda: person() if rng.random() < 0.8 else f"the {c(ANIMALS)}",
        "adj": lambda: c(ADJECTIVES), "obj": lambda: c(OBJECTS), "time": lambda: c(TIMES),
        "place": lambda: c(PLACES), "poss": lambda: c(POSSESSIVES), "adv": lambda: c(ADVERBS),
        "is": lambda: c(("is", "was")), "we": lambda: c(("we", "i")),
        "prep": lambda: c(("near", "behind", "under")), "num": lambda: c(NUMBERS),
        "objs": lambda: plural(c(_COUNTABLE)),
    }
    return re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)](), template)


def generate_sentences(n: int, seed: int) -> List[str]:
    """``n`` distinct sentences of 4-10 words, deterministic given ``seed``."""
    rng = random.Random(f"mini_emo-sentences-{seed}")
    out: Dict[str, None] = {}  # an ordered set
    for _ in range(50 * n + 1000):
        if len(out) == n:
            break
        s = _sentence(rng)
        if MIN_WORDS <= len(s.split()) <= MAX_WORDS:
            out[s] = None
    if len(out) < n:
        raise RuntimeError(f"could not generate {n} distinct sentences")
    return list(out)


# -------------------- Speakers and emotion profiles
@dataclass(frozen=True)
class Speaker:
    spk_id: str
    voice: str  # eSpeak NG <language>+<variant> (no breathy variant: not reproducible)
    gender: str  # m / f (of the voice variant)
    pitch: float  # espeak pitch 0-100
    pitch_range: float  # espeak pitch range 0-100
    rate: float  # words per minute
    volume: float  # espeak volume 0-200
    level_db: float  # target RMS level, dBFS
    tilt_db: float  # channel high-shelf gain above 1.5 kHz, dB


# id, voice, gender, pitch, range, rate, volume, level_db, tilt_db. Ordered so that any
# block of consecutive speakers mixes accents and genders; default split: train
# spk01-spk12, valid spk13-spk14, test spk15-spk18.
_SPEAKER_TABLE = """
spk01 en-us+m3               m 46 50 172 100 -21.0  0.0
spk02 en+f4                  f 54 58 160  95 -23.0  1.5
spk03 en-gb-scotland+m1      m 40 44 185 105 -21.5 -2.0
spk04 en-us+linda            f 48 62 150 100 -24.5  0.5
spk05 en-029+m5              m 58 56 192 110 -20.0 -1.0
spk06 en-gb-x-rp+f1          f 44 40 168  90 -22.0  2.0
spk07 en-us-nyc+m7           m 52 60 178 100 -24.0 -2.5
spk08 en-gb-x-gbclan+belinda f 60 46 155 105 -21.0  0.5
spk09 en-gb-x-gbcwmd+m2      m 36 54 165  95 -26.0  1.0
spk10 en-029+Annie           f 42 52 188 110 -21.5 -1.0
spk11 en+john                m 55 38 158 100 -23.0  2.5
spk12 en-us+steph            f 50 64 176  90 -20.0 -0.5
spk13 en-gb-x-rp+m6          m 47 58 182 105 -22.0  1.0
spk14 en-gb-scotland+aunty   f 56 45 152  95 -24.5 -1.5
spk15 en-us+m4               m 53 48 163 100 -21.5  2.0
spk16 en-gb-x-gbcwmd+Andrea  f 38 57 190 105 -23.0 -0.5
spk17 en-us-nyc+quincy       m 43 62 170  95 -21.0 -2.0
spk18 en-gb-x-gbclan+anika   f 45 42 157 100 -24.0  1.0
spk19 en-us+m8               m 57 52 180 110 -22.0  0.5
spk20 en-gb-x-rp+grandma     f 51 49 162  90 -21.5 -1.0
"""
SPEAKERS: Tuple[Speaker, ...] = tuple(
    Speaker(*row[:3], *(json.loads(v) for v in row[3:]))  # 46 stays int, -21.0 float
    for row in map(str.split, _SPEAKER_TABLE.strip().splitlines()))


@dataclass(frozen=True)
class EmotionProfile:
    rate_factor: float
    pitch: float  # pitch, pitch_range, volume: espeak units relative to the speaker
    pitch_range: float
    volume: float
    word_gap: int  # extra pause between words, 10 ms
    level_db: float  # below: the voice-quality effect (0 disables a component)
    presence_db: float = 0.0  # band boost 2-4 kHz
    shelf_db: float = 0.0  # high shelf above 1.5 kHz
    clip_drive: float = 0.0  # tanh soft clipping drive
    lowpass_hz: float = 0.0  # 4th-order low-pass cut-off
    tremolo_hz: float = 0.0
    tremolo_depth: float = 0.0
    breath_db: float = -200.0  # breath noise level re speech RMS


PROFILES: Dict[str, EmotionProfile] = {
    "neu": EmotionProfile(1.00, 0, 0, 0, 0, 0.0),
    "hap": EmotionProfile(1.07, 6, 14, 5, 0, 0.5, presence_db=7.0),
    "ang": EmotionProfile(1.10, 3, 8, 20, 0, 1.5, shelf_db=9.0, clip_drive=2.5),
    "sad": EmotionProfile(0.86, -6, -14, -20, 1, -1.5, lowpass_hz=2600.0, tremolo_hz=5.5,
                          tremolo_depth=0.15, breath_db=-24.0),
}

# standard deviations of the per-utterance jitter
JITTER = dict(rate=0.06, pitch=4.0, pitch_range=8.0, volume=8.0, level_db=2.0, gain_db=2.0,
              cutoff=0.15, tremolo_hz=1.0, tremolo_depth=0.05, clip_drive=0.6)


# -------------------- Corpus plan
@dataclass
class UttPlan:
    utt_id: str
    split: str
    spk_index: int  # index into SPEAKERS
    emotion: str
    sent_index: int
    text: str
    seen: bool = True  # sentence also spoken in train


@dataclass
class CorpusConfig:
    seed: int = 777
    num_train_utts: int = 2400
    num_valid_utts: int = 300
    num_test_utts: int = 480
    num_train_spk: int = 12
    num_valid_spk: int = 2
    num_test_spk: int = 4
    unseen_fraction: float = 0.5
    train_sentence_reuse: int = 2  # each train sentence spoken by about this many speakers

    def check(self) -> None:
        n_spk = self.num_train_spk + self.num_valid_spk + self.num_test_spk
        if n_spk > len(SPEAKERS):
            raise ValueError(f"{n_spk} speakers asked for, mini_emo defines {len(SPEAKERS)}")
        for name in ("train", "valid", "test"):
            n_utt, n_s = getattr(self, f"num_{name}_utts"), getattr(self, f"num_{name}_spk")
            if n_utt < 0 or n_s < 0:
                raise ValueError(f"num_{name}_utts and num_{name}_spk must be >= 0")
            if n_utt > 0 and n_s == 0:
                raise ValueError(f"{n_utt} {name} utterances asked for with no {name} speakers")
        if self.num_train_utts == 0 or self.num_train_spk == 0:
            raise ValueError("the train set needs speakers and utterances")
        if not 0.0 <= self.unseen_fraction <= 1.0:
            raise ValueError(f"unseen_fraction must be in [0, 1], got {self.unseen_fraction}")
        if self.train_sentence_reuse < 1:
            raise ValueError("train_sentence_reuse must be >= 1")


def split_speakers(cfg: CorpusConfig) -> Dict[str, List[int]]:
    """Speaker indices per split: train first in table order, then valid, then test."""
    out, start = {}, 0
    for name in ("train", "valid", "test"):
        n = getattr(cfg, f"num_{name}_spk")
        out[name], start = list(range(start, start + n)), start + n
    return out


def _per_speaker(total: int, n_spk: int) -> List[int]:
    return [total // n_spk + (1 if i < total % n_spk else 0) for i in range(n_spk)]


def _emotions_for(n_utts: int, spk_index: int) -> List[List[str]]:
    """Emotions of each sentence of a speaker: all four, the last sentence maybe fewer."""
    full, rest = divmod(n_utts, len(EMOTIONS))
    out = [list(EMOTIONS) for _ in range(full)]
    if rest:
        rot = spk_index % len(EMOTIONS)
        out.append(sorted((EMOTIONS[rot:] + EMOTIONS[:rot])[:rest]))
    return out


def plan_corpus(cfg: CorpusConfig) -> List[UttPlan]:
    """Every utterance of the corpus (deterministic given the config)."""
    cfg.check()
    spk_of = split_speakers(cfg)
    sent_plan = {}  # split -> [(spk_index, [emotion lists])]
    slots = {}
    for split in ("train", "valid", "test"):
        n_utts = getattr(cfg, f"num_{split}_utts")
        spks = spk_of[split] if n_utts > 0 else []
        counts = _per_speaker(n_utts, len(spks)) if spks else []
        sent_plan[split] = [(s, _emotions_for(c, s)) for s, c in zip(spks, counts)]
        slots[split] = [len(e) for _, e in sent_plan[split]]

    pool_train = max(math.ceil(sum(slots["train"]) / cfg.train_sentence_reuse), max(slots["train"]))
    n_unseen, pool_heldout = {}, {}
    for split in ("valid", "test"):
        # cumulative rounding: the split as a whole gets its share of unseen sentences
        cum, prev, nu = 0, 0, []
        for k in slots[split]:
            cum += k
            target = min(cum, int(math.floor(cum * cfg.unseen_fraction + 0.5)))
            nu.append(min(k, target - prev))
            prev += nu[-1]
        n_unseen[split] = nu
        pool_heldout[split] = max([math.ceil(sum(nu) / cfg.train_sentence_reuse)] + nu)
    sentences = generate_sentences(pool_train + pool_heldout["valid"] + pool_heldout["test"], cfg.seed)
    train_pool = sentences[:pool_train]
    heldout = {"valid": sentences[pool_train:pool_train + pool_heldout["valid"]],
               "test": sentences[pool_train + pool_heldout["valid"]:]}

    plans: List[UttPlan] = []
    # train: consecutive slots cycle through the pool, so a speaker never repeats a sentence
    k = 0
    for spk, emo_lists in sent_plan["train"]:
        for j, emos in enumerate(emo_lists):
            text = train_pool[k % pool_train]
            k += 1
            plans += [_utt("train", spk, emo, j, text, seen=True) for emo in emos]
    used_train = list(dict.fromkeys(p.text for p in plans))  # in order of first use
    used_set = set(used_train)
    for split in ("valid", "test"):
        rng = random.Random(f"mini_emo-{split}-{cfg.seed}")
        seen_pool = list(used_train)
        rng.shuffle(seen_pool)
        ks = ku = 0
        for (spk, emo_lists), n_u in zip(sent_plan[split], n_unseen[split]):
            # interleave unseen and seen sentences within the speaker
            kinds = [True] * n_u + [False] * (len(emo_lists) - n_u)
            rng.shuffle(kinds)
            for j, (emos, unseen) in enumerate(zip(emo_lists, kinds)):
                if unseen:
                    text = heldout[split][ku % len(heldout[split])]
                    ku += 1
                else:
                    text = seen_pool[ks % len(seen_pool)]
                    ks += 1
                for emo in emos:
                    plans.append(_utt(split, spk, emo, j, text, seen=text in used_set))
    return plans


def _utt(split: str, spk: int, emo: str, j: int, text: str, seen: bool) -> UttPlan:
    sid = SPEAKERS[spk].spk_id
    return UttPlan(f"{sid}_{emo}_{j:05d}", split, spk, emo, j, text, seen)


# -------------------- Synthesis of one utterance
def utterance_params(seed: int, plan: UttPlan) -> Dict[str, float]:
    """espeak and effect parameters of one utterance (speaker + emotion + jitter)."""
    ss = np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, plan.spk_index, plan.sent_index, EMOTIONS.index(plan.emotion)])
    rng = np.random.default_rng(ss)
    spk, prof, jit = SPEAKERS[plan.spk_index], PROFILES[plan.emotion], JITTER
    n = rng.standard_normal(10)
    return {
        "rate": float(np.clip(spk.rate * prof.rate_factor * math.exp(jit["rate"] * n[0]), 80, 450)),
        "pitch": float(np.clip(spk.pitch + prof.pitch + jit["pitch"] * n[1], 0, 100)),
        "pitch_range": float(np.clip(spk.pitch_range + prof.pitch_range
                                     + jit["pitch_range"] * n[2], 0, 100)),
        "volume": float(np.clip(spk.volume + prof.volume + jit["volume"] * n[3], 10, 200)),
        "word_gap": int(prof.word_gap + rng.integers(0, 2)),
        "level_db": float(spk.level_db + prof.level_db + jit["level_db"] * n[4]),
        "tilt_db": spk.tilt_db,
        "presence_db": prof.presence_db + (jit["gain_db"] * n[5] if prof.presence_db else 0.0),
        "shelf_db": prof.shelf_db + (jit["gain_db"] * n[6] if prof.shelf_db else 0.0),
        "clip_drive": (max(0.5, prof.clip_drive + jit["clip_drive"] * n[7]) if prof.clip_drive
                       else 0.0),
        "lowpass_hz": (prof.lowpass_hz * math.exp(jit["cutoff"] * n[8]) if prof.lowpass_hz
                       else 0.0),
        "tremolo_hz": (max(2.0, prof.tremolo_hz + jit["tremolo_hz"] * n[9]) if prof.tremolo_hz
                       else 0.0),
        "tremolo_depth": (float(np.clip(prof.tremolo_depth
                                        + jit["tremolo_depth"] * rng.standard_normal(), 0.05, 0.5))
                          if prof.tremolo_depth else 0.0),
        "breath_db": prof.breath_db,
        "espeak_seed": int(ss.generate_state(1)[0]),
        "fx_seed": int(ss.generate_state(2)[1]),
    }


def _trim(x: np.ndarray, sr: int, margin: float = 0.1, thresh_db: float = -45.0) -> np.ndarray:
    """Keep ``margin`` seconds of silence before the first and after the last loud sample."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (thresh_db / 20))
    m = int(margin * sr)
    return x[max(0, loud[0] - m): min(len(x), loud[-1] + 1 + m)]


def _add_band(x: np.ndarray, sr: int, gain_db: float, lo: float, hi: Optional[float]):
    """x + (g - 1) * band(x): a zero-phase shelf (hi=None) or band boost/cut."""
    from scipy.signal import butter, sosfiltfilt

    if abs(gain_db) < 1e-6:
        return x
    band, btype = (lo, "highpass") if hi is None else ([lo, hi], "bandpass")
    sos = butter(2, band, btype=btype, fs=sr, output="sos")
    return x + (10 ** (gain_db / 20) - 1.0) * sosfiltfilt(sos, x)


def apply_voice_quality(x: np.ndarray, sr: int, p: Dict[str, float]) -> np.ndarray:
    """Channel tilt and the emotion's voice-quality effect (float64 in, float64 out)."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(p["fx_seed"])
    y = np.asarray(x, dtype=np.float64)
    y = _add_band(y, sr, p["tilt_db"], 1500.0, None)
    y = _add_band(y, sr, p["presence_db"], 2000.0, 4000.0)  # no-ops at 0 dB
    y = _add_band(y, sr, p["shelf_db"], 1500.0, None)
    if p["clip_drive"] > 0:
        peak = np.max(np.abs(y)) or 1.0
        d = p["clip_drive"]
        y = np.tanh(d * y / peak) / math.tanh(d) * peak
    if p["lowpass_hz"]:
        sos = butter(4, min(p["lowpass_hz"], 0.45 * sr), btype="lowpass", fs=sr, output="sos")
        y = sosfiltfilt(sos, y)
    if p["breath_db"] > -100:
        # aspiration: high-passed noise following the speech envelope
        env_sos = butter(2, 30.0, btype="lowpass", fs=sr, output="sos")
        env = np.maximum(sosfiltfilt(env_sos, np.abs(y)), 0.0)
        noise = env * sosfiltfilt(butter(2, 1500.0, btype="highpass", fs=sr, output="sos"),
                                  rng.standard_normal(len(y)))
        rms_y = math.sqrt(float(np.mean(y ** 2))) or 1.0
        rms_n = math.sqrt(float(np.mean(noise ** 2))) or 1.0
        y = y + noise * (rms_y / rms_n) * 10 ** (p["breath_db"] / 20)
    if p["tremolo_depth"] > 0 and p["tremolo_hz"] > 0:
        t = np.arange(len(y)) / sr
        phase = rng.uniform(0, 2 * math.pi)
        y = y * (1.0 + p["tremolo_depth"] * np.sin(2 * math.pi * p["tremolo_hz"] * t + phase))
    return y


def synthesize_utterance(seed: int, plan: UttPlan) -> np.ndarray:
    """16 kHz int16 samples of one utterance."""
    from scipy.signal import resample_poly

    from espnet_ser.data.espeak import get_engine

    p = utterance_params(seed, plan)
    audio, sr = get_engine().synthesize(
        plan.text, SPEAKERS[plan.spk_index].voice, rate=int(round(p["rate"])),
        pitch=int(round(p["pitch"])), pitch_range=int(round(p["pitch_range"])),
        volume=int(round(p["volume"])), word_gap=p["word_gap"], seed=p["espeak_seed"])
    x = _trim(audio.astype(np.float64), sr)
    x = apply_voice_quality(x, sr, p)
    x = resample_poly(x, SAMPLE_RATE, sr)  # reduces the ratio by the gcd; a copy at 16 kHz
    rms = math.sqrt(float(np.mean(x ** 2)))
    if not np.isfinite(rms) or rms <= 0:
        raise RuntimeError(f"utterance {plan.utt_id}: synthesis gave silence or NaN")
    x = x * (10 ** (p["level_db"] / 20) / rms)
    peak = float(np.max(np.abs(x)))
    if peak > MAX_PEAK:  # never clip: lower the level instead
        x = x * (MAX_PEAK / peak)
    return np.clip(np.round(x * 32767.0), -32767, 32767).astype(np.int16)


# -------------------- Writing the corpus
def wav_path(wav_dir: Path, plan: UttPlan) -> Path:
    return wav_dir / plan.split / SPEAKERS[plan.spk_index].spk_id / f"{plan.utt_id}.wav"


def _synth_chunk(task) -> List[Tuple[str, int]]:
    """Worker: synthesise a chunk of utterances in order, in a fresh process."""
    seed, wav_dir, plans = task
    import soundfile as sf

    out = []
    for plan in plans:
        samples = synthesize_utterance(seed, plan)
        with atomic_path(wav_path(Path(wav_dir), plan), suffix=".wav") as tmp:
            sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        out.append((plan.utt_id, int(len(samples))))
    return out


def _chunks(plans: Sequence[UttPlan]) -> List[List[UttPlan]]:
    """Fixed chunks (per split and speaker, at most CHUNK_SIZE each): independent of nj."""
    groups: Dict[Tuple[str, int], List[UttPlan]] = {}
    for p in plans:
        groups.setdefault((p.split, p.spk_index), []).append(p)
    return [groups[key][i:i + CHUNK_SIZE] for key in sorted(groups)
            for i in range(0, len(groups[key]), CHUNK_SIZE)]


def synthesize_all(plans: Sequence[UttPlan], seed: int, wav_dir: Path, nj: int = 1,
                   log_every: float = 0.1) -> Dict[str, int]:
    """Synthesise every planned utterance; return {utt_id: number of samples}."""
    total = len(plans)
    tasks = [(seed, str(wav_dir), c) for c in _chunks(plans)]
    if "forkserver" in multiprocessing.get_all_start_methods():
        # children fork from a server that has imported the heavy modules but never
        # touched libespeak-ng, so each chunk still starts from a fresh engine
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "scipy.signal", "soundfile", __name__,
                                    "espnet_ser.data.espeak"])
    else:
        ctx = multiprocessing.get_context("spawn")
    nsamples: Dict[str, int] = {}
    next_log, start = log_every, time.time()
    # maxtasksperchild=1: every chunk starts from a freshly initialised libespeak-ng
    with ctx.Pool(processes=max(1, min(nj, len(tasks))), maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(_synth_chunk, tasks):
            nsamples.update(result)
            done = len(nsamples)
            if done / total >= next_log or done == total:
                logging.info("synthesised %d / %d utterances (%.0f%%, %.1f s)", done, total,
                             100.0 * done / total, time.time() - start)
                while next_log <= done / total:
                    next_log += log_every
    return nsamples


def prepare_mini_emo(cfg: CorpusConfig, out_dir, wav_dir, nj: int = 1,
                     overwrite: bool = False) -> Dict:
    """Synthesise the corpus into ``out_dir/{train,valid,test}`` (all or nothing) and
    corpus.json; a no-op when ``out_dir/.mini_emo.done`` records the same configuration."""
    from espnet_ser.data.datadir import validate_data_dir
    from espnet_ser.data.prepare import write_sets

    cfg.check()
    out_dir, wav_dir = Path(out_dir).absolute(), Path(wav_dir).absolute()
    marker = out_dir / ".mini_emo.done"
    args = {"corpus_version": CORPUS_VERSION, "config": asdict(cfg), "wav_dir": str(wav_dir)}
    digest = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()
    sets = [s for s in ("train", "valid", "test") if getattr(cfg, f"num_{s}_utts") > 0]
    if marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except ValueError:
            old = {}
        if old.get("digest") == digest:
            try:
                for s in sets:
                    validate_data_dir(out_dir / s, emotions=EMOTIONS, check_audio_exists=True)
                summary = json.loads((out_dir / "corpus.json").read_text())
                logging.info("%s: mini_emo already prepared with these arguments; skipping",
                             out_dir)
                return summary
            except Exception as e:  # incomplete or damaged: rebuild
                logging.warning("%s: previous outputs are incomplete (%s); rebuilding",
                                out_dir, e)
        elif not overwrite:
            raise FileExistsError(
                f"{marker}: {out_dir} holds a mini_emo corpus made with other arguments "
                f"({old.get('args')}); pass --overwrite true to replace it or choose another "
                "--out_dir")
        marker.unlink()
    elif not overwrite:
        existing = [str(out_dir / s) for s in ("train", "valid", "test") if (out_dir / s).exists()]
        if existing:
            raise FileExistsError(
                f"{existing[0]} exists but {marker} does not: not a finished mini_emo "
                "corpus; pass --overwrite true to replace it or choose another --out_dir")

    plans = plan_corpus(cfg)
    logging.info("mini_emo: %d utterances (%s), %d speakers, writing wavs to %s", len(plans),
                 ", ".join(f"{s} {sum(p.split == s for p in plans)}" for s in sets),
                 len({p.spk_index for p in plans}), wav_dir)
    wav_dir.mkdir(parents=True, exist_ok=True)
    nsamples = synthesize_all(plans, cfg.seed, wav_dir, nj=nj)

    spk_split = {p.spk_index: p.split for p in plans}  # the speakers with utterances
    summary = {"corpus": "mini_emo", "corpus_version": CORPUS_VERSION, "seed": cfg.seed,
               "sample_rate": SAMPLE_RATE, "emotions": list(EMOTIONS), "config": asdict(cfg),
               "speakers": [dict(asdict(SPEAKERS[i]), split=s) for i, s in sorted(spk_split.items())],
               "sets": {}}
    fields = {}
    for s in sets:
        ps = [p for p in plans if p.split == s]
        fields[s] = {"wav.scp": {p.utt_id: str(wav_path(wav_dir, p)) for p in ps},
                     "text": {p.utt_id: p.text for p in ps},
                     "utt2spk": {p.utt_id: SPEAKERS[p.spk_index].spk_id for p in ps},
                     "utt2emo": {p.utt_id: p.emotion for p in ps}}
        unseen = [p.utt_id for p in ps if not p.seen]
        if s != "train":  # one id a line
            fields[s]["unseen_sentences"] = dict.fromkeys(unseen, "")
        secs = sum(nsamples[p.utt_id] for p in ps) / SAMPLE_RATE
        summary["sets"][s] = {
            "num_utts": len(ps), "num_speakers": len({p.spk_index for p in ps}),
            "speakers": sorted({SPEAKERS[p.spk_index].spk_id for p in ps}),
            "per_emotion": {e: sum(p.emotion == e for p in ps) for e in EMOTIONS},
            "num_sentences": len({p.text for p in ps}), "num_unseen_sentence_utts": len(unseen),
            "hours": round(secs / 3600.0, 4), "mean_duration_sec": round(secs / max(1, len(ps)), 3)}
        logging.info("%s: %.2f h, mean %.2f s, %d not in train", out_dir / s, secs / 3600.0,
                     secs / max(1, len(ps)), len(unseen))
    write_sets(out_dir, fields, EMOTIONS, "mini_emo")
    atomic_write_text(out_dir / "corpus.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    atomic_write_text(marker, json.dumps({"digest": digest, "args": args}, sort_keys=True) + "\n")
    return summary
