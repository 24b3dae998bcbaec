"""PA-IEMOCAP preparation on a small IEMOCAP_full_release tree and fake ocean.csv /
tipi_labels.csv in the release's layout (columns EX AG CO NE OP, the M-part script
dialogues of sessions 1, 2, 3, 5 spelled without zero padding)."""

import random
import shutil
from pathlib import Path

import pytest

from espnet_ser.data import datadir, pa_iemocap
from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir
from espnet_ser.data.pa_iemocap import (
    PaIemocapError, check_tipi, dialogue_key, prepare_pa_iemocap, read_ocean, read_tipi)
from tests.data.test_iemocap import (
    EMOS, NO_WORDS, VAD, consensus_line, dialogs, kept_ids, make_tree, snapshot, write_wav)

OCEAN_HEADER = ["dialogue_id", "gender", "EX", "AG", "CO", "NE", "OP"]  # the release's order
PAPER_ORDER = ["OP", "CO", "EX", "AG", "NE"]  # O C E A N
# Dialogues added to the IEMOCAP tree of tests.data.test_iemocap (session, dialogue, utterances).
EXTRA = [
    (3, "Ses03M_impro05a", [("F000", "neu", "Fine, fine."), ("M000", "ang", "Not fine at all!")]),
    (5, "Ses05M_script01_1b", [("F000", "sad", "I miss him."), ("M000", "exc", "We made it!"),
                               ("F001", "neu", "<sigh> [BREATHING]")]),
]
NO_WORDS_EXTRA = "Ses05F-Ses05M_script01_1b_F001"
# ocean.csv rows of the DESIGN.md example (the release's Ses01F_impro01).
EXAMPLE = {("Ses01F_impro01", "f"): "5.417,5.0,5.333,2.833,5.083",
           ("Ses01F_impro01", "m"): "4.167,1.083,2.917,6.667,2.667"}
# A dialogue of ocean.csv with no kept utterance in the tree.
UNUSED = "Ses02F_impro02"


def pa_spelling(dialogue: str) -> str:
    """How PA-IEMOCAP writes an IEMOCAP dialogue: no zero padding of the script number in
    the M parts of sessions 1, 2, 3 and 5 (written out here, not with the code's rule)."""
    table = {"Ses01M_script01_1": "Ses01M_script1_1", "Ses02M_script01_1": "Ses02M_script1_1",
             "Ses03M_script01_1": "Ses03M_script1_1", "Ses05M_script01_1": "Ses05M_script1_1",
             "Ses05M_script01_1b": "Ses05M_script1_1b"}
    return table.get(dialogue, dialogue)


def tree_dialogues():
    """IEMOCAP spellings of every dialogue of the tree, with their session."""
    out = [(n, d) for n in range(1, 6) for d in dialogs(n)]
    return out + [(n, d) for n, d, _ in EXTRA]


def add_dialogue(root: Path, n: int, dialogue: str, utts) -> None:
    sess = root / f"Session{n}"
    lines, tlines = [], []
    for i, (suffix, label, text) in enumerate(utts):
        utt = f"{dialogue}_{suffix}"
        lines.append(consensus_line(2.0 + 3 * i, utt, label, VAD[label]))
        tlines.append(f"{utt} [{2.0 + 3 * i:08.4f}-{3.5 + 3 * i:08.4f}]: {text}\n")
        write_wav(sess / "sentences" / "wav" / dialogue / f"{utt}.wav")
    (sess / "dialog" / "EmoEvaluation" / f"{dialogue}.txt").write_text("".join(lines))
    (sess / "dialog" / "transcriptions" / f"{dialogue}.txt").write_text("".join(tlines))


def twelfths(rng, n=10):
    """n distinct traits k / 12 on 1-7 (every mean of six TIPI raters is one)."""
    return rng.sample(range(12, 85), n)


def fmt(x12: int) -> str:
    return str(round(x12 / 12, 3))  # as the release writes them: 5.417, 5.0


def ratings(x12: int, salt: int):
    """Six raters' (t_item, t_reversed) whose mean (t_item + 8 - t_reversed) / 2 is x12 / 12."""
    total = x12 - 48  # sum over raters of t_item - t_reversed
    diffs = [total // 6 + (1 if r < total % 6 else 0) for r in range(6)]
    out = []
    for r, d in enumerate(diffs):
        assert -6 <= d <= 6
        if d >= 0:
            low = 1 + (r + salt) % (7 - d)
            out.append((low + d, low))
        else:
            low = 1 + (r + salt) % (7 + d)
            out.append((low, low - d))
    return out


def make_pa(base: Path, with_tipi: bool = True) -> Path:
    """PA-IEMOCAP/ with ocean.csv (and tipi_labels.csv) for every dialogue of the tree."""
    pa = base / "PA-IEMOCAP"
    pa.mkdir(parents=True)
    rng = random.Random(12)
    rows = {}  # (PA dialogue, gender) -> {column: value string}
    x12 = {}
    names = [pa_spelling(d) for _, d in tree_dialogues()] + [UNUSED]
    for d in names:
        values = twelfths(rng)
        for g, vs in (("f", values[:5]), ("m", values[5:])):
            if (d, g) in EXAMPLE:
                vs = [round(float(v) * 12) for v in EXAMPLE[d, g].split(",")]
            x12[d, g] = dict(zip(OCEAN_HEADER[2:], vs))
            rows[d, g] = {c: fmt(v) for c, v in x12[d, g].items()}
    lines = [",".join(OCEAN_HEADER)]
    lines += [",".join([d, g] + [rows[d, g][c] for c in OCEAN_HEADER[2:]]) for d, g in rows]
    (pa / "ocean.csv").write_text("\n".join(lines) + "\n")
    if with_tipi:
        items = {}
        tl = ["dialogue_id,gender,tipi," + ",".join(f"rater{r}" for r in range(1, 7))]
        for (d, g), traits in x12.items():
            for col, (a, b) in pa_iemocap.TIPI_FORMULA.items():
                pairs = ratings(traits[col], salt=a)
                items[a] = [p[0] for p in pairs]
                items[b] = [p[1] for p in pairs]
            tl += [",".join([d, g, str(i)] + [str(v) for v in items[i]]) for i in range(1, 11)]
        (pa / "tipi_labels.csv").write_text("\n".join(tl) + "\n")
    return pa


def make_trees(base: Path, with_tipi: bool = True):
    root = make_tree(base / "corpus")
    for n, d, utts in EXTRA:
        add_dialogue(root, n, d, utts)
    return root, make_pa(base / "pa", with_tipi)


def ocean_rows(pa: Path):
    """``{(dialogue as written, gender): ({column: value}, line)}`` read back by hand."""
    lines = (pa / "ocean.csv").read_text().splitlines()
    header = lines[0].split(",")
    out = {}
    for i, line in enumerate(lines[1:], 2):
        row = dict(zip(header, line.split(",")))
        out[row["dialogue_id"], row["gender"]] = (row, i)
    return out


def ocean_line(pa: Path, dialogue: str, gender: str) -> int:
    return ocean_rows(pa)[dialogue, gender][1]


def edit_line(path: Path, lineno: int, fn) -> str:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n")
    return lines[lineno - 1]


def all_ids():
    """Kaldi ids of every kept (lexical) utterance of the trees."""
    ids = set().union(*(kept_ids(n) for n in range(1, 6)))
    for n, d, utts in EXTRA:
        for suffix, _, _ in utts:
            ids.add(f"Ses0{n}{suffix[0]}-{d}_{suffix}")
    return ids - {NO_WORDS_EXTRA}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return make_trees(tmp_path_factory.mktemp("pa"))


@pytest.fixture(scope="module")
def prepared(trees, tmp_path_factory):
    root, pa = trees
    out = tmp_path_factory.mktemp("prep") / "data"
    return out, prepare_pa_iemocap(root, pa, out)


# ---------------------------------------------------------------- the spelling rule

@pytest.mark.parametrize("iemocap_name, pa_name", [
    ("Ses01M_script01_1", "Ses01M_script1_1"),
    ("Ses02M_script02_2", "Ses02M_script2_2"),
    ("Ses03M_script03_2", "Ses03M_script3_2"),
    ("Ses05M_script01_1b", "Ses05M_script1_1b"),
    ("Ses04M_script01_1", "Ses04M_script01_1"),  # Session 4 is padded in both
    ("Ses01F_script01_1", "Ses01F_script01_1"),
])
def test_dialogue_key_maps_both_spellings(iemocap_name, pa_name):
    assert dialogue_key(iemocap_name) == dialogue_key(pa_name)
    assert dialogue_key(dialogue_key(pa_name)) == dialogue_key(pa_name)


def test_dialogue_key_values():
    assert dialogue_key("Ses01M_script01_1") == "Ses01M_script1_1"
    assert dialogue_key("Ses01M_script1_1") == "Ses01M_script1_1"
    assert dialogue_key("Ses05M_script01_1b") == "Ses05M_script1_1b"
    assert dialogue_key("Ses04M_script01_1") == "Ses04M_script1_1"
    for unchanged in ("Ses03M_impro05a", "Ses03M_impro05b", "Ses03M_impro08a", "Ses01F_impro01",
                      "Ses01F_impro03"):
        assert dialogue_key(unchanged) == unchanged
    assert dialogue_key("Ses03M_impro05a") != dialogue_key("Ses03M_impro05b")
    assert dialogue_key("Ses01M_script01_1") != dialogue_key("Ses01M_script01_2")
    assert dialogue_key("Ses01M_script01_1") != dialogue_key("Ses01M_script01_1b")
    assert dialogue_key("Ses01M_script01_1") != dialogue_key("Ses01F_script01_1")


def test_dialogue_and_gender_of_utterance():
    assert pa_iemocap.dialogue_of("Ses01F_impro01_M013") == "Ses01F_impro01"
    assert pa_iemocap.dialogue_of("Ses05M_script01_1b_F002") == "Ses05M_script01_1b"
    assert pa_iemocap.gender_of("Ses01F_impro01_M013") == "m"
    assert pa_iemocap.gender_of("Ses03M_impro05a_F000") == "f"
    for k, (valid, test, train) in enumerate([("Ses01F_impro01", "Ses01M_script01_1",
                                               "Ses02F_impro01")], 1):
        assert pa_iemocap.fold_part(k, valid) == "valid"
        assert pa_iemocap.fold_part(k, test) == "test"
        assert pa_iemocap.fold_part(k, train) == "train"


# ---------------------------------------------------------------- ocean.csv and TIPI

def test_read_ocean_trait_order_and_strings(tmp_path):
    p = tmp_path / "ocean.csv"
    p.write_text("dialogue_id,gender,EX,AG,CO,NE,OP\n"
                 "Ses01F_impro01,f,5.417,5.0,5.333,2.833,5.083\n"
                 "Ses01F_impro01,m,4.167,1.083,2.917,6.667,2.667\n")
    got = read_ocean(p)
    # O C E A N = OP CO EX AG NE, as written
    assert got == {("Ses01F_impro01", "f"): ("5.083", "5.333", "5.417", "5.0", "2.833"),
                   ("Ses01F_impro01", "m"): ("2.667", "2.917", "4.167", "1.083", "6.667")}
    # columns by name: another column order, an extra column, CRLF, a BOM
    p.write_bytes(b"\xef\xbb\xbfOP,NE,note,gender,dialogue_id,AG,CO,EX\r\n"
                  b"5.083,2.833,x,f,Ses01F_impro01,5.0,5.333,5.417\r\n"
                  b"2.667,6.667,y,m,Ses01F_impro01,1.083,2.917,4.167\r\n")
    assert read_ocean(p) == got


def test_read_ocean_keys_are_spelling_free(trees):
    _, pa = trees
    got = read_ocean(pa / "ocean.csv")
    assert ("Ses01M_script1_1", "m") in got and ("Ses04M_script1_1", "f") in got
    assert got.spelling["Ses04M_script1_1"] == "Ses04M_script01_1"
    assert got.spelling["Ses05M_script1_1b"] == "Ses05M_script1_1b"
    assert len(got) == 2 * len(got.spelling) == 2 * (len(tree_dialogues()) + 1)
    rows = ocean_rows(pa)
    row, line = rows["Ses03M_impro05a", "m"]
    assert got["Ses03M_impro05a", "m"] == tuple(row[c] for c in PAPER_ORDER)
    assert got.lines["Ses03M_impro05a", "m"] == line


def test_tipi_agrees(trees):
    _, pa = trees
    ocean = read_ocean(pa / "ocean.csv")
    assert check_tipi(ocean, pa / "tipi_labels.csv") <= 0.0005
    tipi = read_tipi(pa / "tipi_labels.csv")
    traits = pa_iemocap.tipi_traits(tipi["Ses01F_impro01", "f"])
    assert traits == pytest.approx({"EX": 65 / 12, "AG": 5.0, "CO": 64 / 12, "NE": 34 / 12,
                                    "OP": 61 / 12})


def test_tipi_formula_by_hand(tmp_path):
    # one rater pattern, every rater the same: EX = (t1 + 8 - t6) / 2 = (7 + 8 - 1) / 2 = 7 ...
    t = {1: 7, 2: 3, 3: 5, 4: 2, 5: 6, 6: 1, 7: 4, 8: 4, 9: 6, 10: 2}
    p = tmp_path / "tipi_labels.csv"
    p.write_text("dialogue_id,gender,tipi,rater1,rater2,rater3,rater4,rater5,rater6\n" + "".join(
        f"Ses01F_impro01,f,{i},{','.join([str(t[i])] * 6)}\n" for i in range(1, 11)))
    got = pa_iemocap.tipi_traits(read_tipi(p)["Ses01F_impro01", "f"])
    assert got == {"EX": 7.0, "AG": 4.5, "CO": 4.5, "NE": 2.0, "OP": 6.0}


def _tipi_line(pa, dialogue, gender, item):
    lines = (pa / "tipi_labels.csv").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1)
                if line.startswith(f"{dialogue},{gender},{item},"))


def test_tipi_disagreement_names_every_row(tmp_path):
    root, pa = make_trees(tmp_path)
    # rater 3 of item 1 of Ses02M_script1_1 m: +-1 moves EX by 1/12
    n = _tipi_line(pa, "Ses02M_script1_1", "m", 1)
    edit_line(pa / "tipi_labels.csv", n, lambda l: ",".join(
        v if i != 5 else str(int(v) + (1 if int(v) < 7 else -1)) for i, v in enumerate(l.split(","))))
    # ocean.csv OP of Ses04M_script01_1 f changed by 0.2; its EX by 0.005 (within 0.01)
    line = ocean_line(pa, "Ses04M_script01_1", "f")
    edit_line(pa / "ocean.csv", line, lambda l: ",".join(
        f"{float(v) + 0.2:.3f}" if i == 6 else f"{float(v) + 0.005:.3f}" if i == 2 else v
        for i, v in enumerate(l.split(","))))
    ocean = read_ocean(pa / "ocean.csv")
    with pytest.raises(PaIemocapError) as e:
        check_tipi(ocean, pa / "tipi_labels.csv")
    msg = str(e.value)
    assert msg.startswith("2 disagreement(s)")
    assert f"ocean.csv:{ocean_line(pa, 'Ses02M_script1_1', 'm')}: dialogue Ses02M_script1_1 " \
           "gender m trait EX: ocean.csv" in msg
    assert f"ocean.csv:{line}: dialogue Ses04M_script01_1 gender f trait OP: ocean.csv" in msg
    assert "off by 0.200 > 0.01" in msg
    assert "trait EX" not in msg.split("Ses04M_script01_1")[1]
    # and prepare stops at it, writing nothing
    with pytest.raises(PaIemocapError, match="2 disagreement"):
        prepare_pa_iemocap(root, pa, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_tipi_rows_missing_or_extra(tmp_path):
    _, pa = make_trees(tmp_path)
    lines = (pa / "tipi_labels.csv").read_text().splitlines()
    kept = [l for l in lines if not l.startswith("Ses03M_impro05a,f,")]
    (pa / "tipi_labels.csv").write_text("\n".join(kept + ["Ses09F_impro01,f,1,1,1,1,1,1,1"]) + "\n")
    with pytest.raises(PaIemocapError, match=r"tipi_labels.csv:\d+: dialogue Ses09F_impro01 gender "
                                             r"f has no row for TIPI item\(s\) 2 3 4 5 6 7 8 9 10"):
        check_tipi(read_ocean(pa / "ocean.csv"), pa / "tipi_labels.csv")
    extra = [f"Ses09F_impro01,f,{i},4,4,4,4,4,4" for i in range(1, 11)]
    (pa / "tipi_labels.csv").write_text("\n".join(lines + extra) + "\n")
    with pytest.raises(PaIemocapError, match=rf"tipi_labels.csv:{len(lines) + 1}: dialogue "
                                             r"Ses09F_impro01 gender f has no row in"):
        check_tipi(read_ocean(pa / "ocean.csv"), pa / "tipi_labels.csv")
    (pa / "tipi_labels.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(PaIemocapError, match=rf"ocean.csv:{ocean_line(pa, 'Ses03M_impro05a', 'f')}: "
                                             r"dialogue Ses03M_impro05a gender f has no rows in"):
        check_tipi(read_ocean(pa / "ocean.csv"), pa / "tipi_labels.csv")


@pytest.mark.parametrize("change, message", [
    (lambda l: l.replace(",4,", ",8,", 1) if ",4," in l else l, None),
    (lambda l: ",".join(l.split(",")[:-1] + ["2.5"]), r"rater6 '2.5' is not an integer"),
    (lambda l: ",".join(l.split(",")[:-1] + ["0"]), r"rater6 '0' is outside 1-7"),
    (lambda l: ",".join(l.split(",")[:2] + ["11"] + l.split(",")[3:]), r"tipi item '11' is outside"),
])
def test_tipi_bad_values(tmp_path, change, message):
    p = tmp_path / "tipi_labels.csv"
    p.write_text("dialogue_id,gender,tipi,rater1,rater2,rater3,rater4,rater5,rater6\n" + "".join(
        f"Ses01F_impro01,f,{i},4,4,4,4,4,3\n" for i in range(1, 11)))
    before = edit_line(p, 5, lambda l: l)
    after = edit_line(p, 5, change)
    if message is None:  # item 4 -> 8 duplicates item 8
        assert before != after
        with pytest.raises(PaIemocapError, match=r"tipi_labels.csv:9: second row for dialogue "
                                                 r"Ses01F_impro01 gender f item 8 \(first on line 5\)"):
            read_tipi(p)
    else:
        with pytest.raises(PaIemocapError, match=r"tipi_labels.csv:5: dialogue Ses01F_impro01 f.*"
                                                 + message):
            read_tipi(p)


# ---------------------------------------------------------------- ocean.csv bad input

def _ocean(tmp_path, body):
    p = tmp_path / "ocean.csv"
    p.write_text("dialogue_id,gender,EX,AG,CO,NE,OP\n" + body)
    return p


GOOD = "Ses01F_impro01,f,5.417,5.0,5.333,2.833,5.083\nSes01F_impro01,m,4.167,1.083,2.917,6.667,2.667\n"


@pytest.mark.parametrize("body, message", [
    (GOOD.replace("5.333", "high"), r"ocean.csv:2: dialogue Ses01F_impro01 f: CO 'high' is not a "
                                    r"number"),
    (GOOD.replace("6.667", "7.5"), r"ocean.csv:3: dialogue Ses01F_impro01 m: NE '7.5' is outside "
                                   r"1-7"),
    (GOOD.replace("5.083", "0.9"), r"ocean.csv:2: dialogue Ses01F_impro01 f: OP '0.9' is outside"),
    (GOOD.replace("5.083", "nan"), r"ocean.csv:2: dialogue Ses01F_impro01 f: OP 'nan' is outside"),
    (GOOD.replace("1.083", ""), r"ocean.csv:3: dialogue Ses01F_impro01 m: AG '' is not a number"),
    (GOOD.replace(",m,", ",M,"), r"ocean.csv:3: dialogue Ses01F_impro01: gender 'M' is not f or m"),
    (GOOD.replace(",m,", ",x,"), r"ocean.csv:3: dialogue Ses01F_impro01: gender 'x' is not f or m"),
    (GOOD + GOOD.splitlines(True)[0].replace("5.417", "5.5"),
     r"ocean.csv:4: second row for dialogue Ses01F_impro01 gender f \(first on line 2\)"),
    (GOOD + "Ses01M_script01_1,f,4,4,4,4,4\nSes01M_script1_1,f,4,4,4,4,4\n",
     r"ocean.csv:5: second row for dialogue Ses01M_script1_1 gender f \(first on line 4 as "
     r"Ses01M_script01_1\)"),
    (GOOD + "Ses01M_script01_1,f,4,4,4,4,4\nSes01M_script1_1,m,4,4,4,4,4\n",
     r"ocean.csv:5: dialogue Ses01M_script1_1 is spelled Ses01M_script01_1 on line 4"),
    (GOOD + "Ses02F_impro03,m,4,4,4,4,4\n",
     r"ocean.csv: dialogue Ses02F_impro03 has no f row \(only the m row on line 4\)"),
    (GOOD.splitlines(True)[0], r"ocean.csv: dialogue Ses01F_impro01 has no m row"),
    (GOOD.replace("2.667\n", "2.667,9\n"), r"ocean.csv:3: more fields than the header"),
    (GOOD.replace(",2.667\n", "\n"), r"ocean.csv:3: fewer fields than the header \(no value for OP\)"),
    (GOOD.replace("Ses01F_impro01,m", "impro01,m"), r"ocean.csv:3: dialogue_id 'impro01' is not an "
                                                    r"IEMOCAP dialogue"),
    ("", r"ocean.csv: no rows after the header"),
])
def test_read_ocean_bad_rows(tmp_path, body, message):
    with pytest.raises(PaIemocapError, match=message):
        read_ocean(_ocean(tmp_path, body))


@pytest.mark.parametrize("column", ["EX", "AG", "CO", "NE", "OP", "gender", "dialogue_id"])
def test_read_ocean_missing_column(tmp_path, column):
    header = OCEAN_HEADER
    keep = [i for i, c in enumerate(header) if c != column]
    rows = [header] + [l.split(",") for l in GOOD.splitlines()]
    p = tmp_path / "ocean.csv"
    p.write_text("".join(",".join(r[i] for i in keep) + "\n" for r in rows))
    with pytest.raises(PaIemocapError, match=rf"{p}:1: no column {column} in the header"):
        read_ocean(p)


def test_read_ocean_empty_or_missing_file(tmp_path):
    p = tmp_path / "ocean.csv"
    p.write_text("")
    with pytest.raises(PaIemocapError, match=rf"{p}: empty file"):
        read_ocean(p)
    with pytest.raises(PaIemocapError, match=rf"{tmp_path / 'nope.csv'}: cannot read"):
        read_ocean(tmp_path / "nope.csv")


# ---------------------------------------------------------------- full preparation

SETS = ["pa_iemocap_all"] + [f"fold{k}_{s}" for k in range(1, 6) for s in ("train", "valid", "test")]
FILES = ["spk2utt", "text", "utt2dialog", "utt2dim", "utt2emo", "utt2gender", "utt2personality",
         "utt2spk", "wav.scp"]


def test_counts(prepared):
    _, counts = prepared
    assert counts["four_class"] == 41 + 5
    assert counts["non_lexical_dropped"] == 2
    assert counts["num_utts"] == 40 + 4 == len(all_ids())
    assert counts["dialogues"] == len(tree_dialogues())
    assert counts["ocean_dialogues"] == len(tree_dialogues()) + 1
    assert counts["tipi_max_diff"] <= 0.0005
    assert counts["per_part"] == {"Ses01F": 4, "Ses01M": 4, "Ses02F": 4, "Ses02M": 4,
                                  "Ses03F": 4, "Ses03M": 6, "Ses04F": 4, "Ses04M": 4,
                                  "Ses05F": 4, "Ses05M": 6}
    assert counts["sets"]["fold3_test"]["num_utts"] == 6
    assert counts["sets"]["fold3_valid"]["num_utts"] == 4
    assert counts["sets"]["fold3_train"]["num_utts"] == 34
    assert counts["sets"]["pa_iemocap_all"]["per_emotion"] == {"ang": 11, "hap": 11, "neu": 11,
                                                               "sad": 11}


def test_sets_files_and_validation(prepared):
    out, _ = prepared
    assert sorted(p.name for p in out.iterdir()) == sorted(SETS)
    for name in SETS:
        assert sorted(p.name for p in (out / name).iterdir()) == FILES  # no utt2empty_text
        assert validate_data_dir(out / name, emotions=EMOS, check_audio_exists=True) > 0
    assert set(read_kaldi_map(out / "pa_iemocap_all" / "utt2emo")) == all_ids()


def test_non_lexical_dropped(prepared):
    out, _ = prepared
    for name in SETS:
        ids = set(read_kaldi_map(out / name / "utt2emo"))
        assert NO_WORDS not in ids and NO_WORDS_EXTRA not in ids
        assert all(read_kaldi_map(out / name / "text").values())


def _dialogues(out, name):
    return set(read_kaldi_map(out / name / "utt2dialog").values())


def test_folds(prepared):
    out, _ = prepared
    every = {d for _, d in tree_dialogues()}
    assert _dialogues(out, "fold3_valid") == {"Ses03F_impro01"}
    assert _dialogues(out, "fold3_test") == {"Ses03M_script01_1", "Ses03M_impro05a"}
    assert _dialogues(out, "fold5_test") == {"Ses05M_script01_1", "Ses05M_script01_1b"}
    assert _dialogues(out, "fold1_train") == every - {"Ses01F_impro01", "Ses01M_script01_1"}
    for k in range(1, 6):
        sets = {s: set(read_kaldi_map(out / f"fold{k}_{s}" / "utt2emo"))
                for s in ("train", "valid", "test")}
        dialogue = read_kaldi_map(out / "pa_iemocap_all" / "utt2dialog")
        assert sets["valid"] == {u for u in all_ids() if dialogue[u].startswith(f"Ses0{k}F_")}
        assert sets["test"] == {u for u in all_ids() if dialogue[u].startswith(f"Ses0{k}M_")}
        assert sets["train"] == {u for u in all_ids() if not dialogue[u].startswith(f"Ses0{k}")}
        assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"]
                    or sets["valid"] & sets["test"])
        assert sets["train"] | sets["valid"] | sets["test"] == all_ids()
        # the valid and test speakers are both actors of session k
        assert set(read_kaldi_map(out / f"fold{k}_valid" / "utt2spk").values()) == \
            {f"Ses0{k}F", f"Ses0{k}M"}


def test_dialog_and_gender_files(prepared):
    out, _ = prepared
    d = read_kaldi_map(out / "pa_iemocap_all" / "utt2dialog")
    g = read_kaldi_map(out / "pa_iemocap_all" / "utt2gender")
    assert d["Ses01M-Ses01M_script01_1_M000"] == "Ses01M_script01_1"  # as IEMOCAP spells it
    assert d["Ses05F-Ses05M_script01_1b_F000"] == "Ses05M_script01_1b"
    assert d["Ses03M-Ses03M_impro05a_M000"] == "Ses03M_impro05a"
    assert g["Ses01M-Ses01M_script01_1_M000"] == "m" and g["Ses01F-Ses01M_script01_1_F000"] == "f"
    assert g["Ses02M-Ses02F_impro01_M000"] == "m"
    spk = read_kaldi_map(out / "pa_iemocap_all" / "utt2spk")
    assert all(g[u] == spk[u][-1].lower() for u in g)


def test_personality_speaker_then_listener(prepared, trees):
    out, _ = prepared
    _, pa = trees
    p = read_kaldi_map(out / "pa_iemocap_all" / "utt2personality")
    # DESIGN.md's rows: f = EX 5.417 AG 5.0 CO 5.333 NE 2.833 OP 5.083, m = 4.167 1.083 2.917
    # 6.667 2.667; the male speaker's O C E A N, then the female listener's
    assert p["Ses01M-Ses01F_impro01_M000"] == \
        "2.667 2.917 4.167 1.083 6.667 5.083 5.333 5.417 5.0 2.833"
    assert p["Ses01F-Ses01F_impro01_F000"] == \
        "5.083 5.333 5.417 5.0 2.833 2.667 2.917 4.167 1.083 6.667"
    rows = ocean_rows(pa)
    dialogue = read_kaldi_map(out / "pa_iemocap_all" / "utt2dialog")
    gender = read_kaldi_map(out / "pa_iemocap_all" / "utt2gender")
    for utt, value in p.items():
        d, g = pa_spelling(dialogue[utt]), gender[utt]
        speaker, listener = rows[d, g][0], rows[d, "m" if g == "f" else "f"][0]
        assert value.split() == [speaker[c] for c in PAPER_ORDER] + [listener[c] for c in PAPER_ORDER]
    # a set directory holds the same lines as pa_iemocap_all
    for name in SETS[1:]:
        sub = read_kaldi_map(out / name / "utt2personality")
        assert sub == {u: p[u] for u in sub}


def test_without_tipi_and_unpadded_session4(tmp_path):
    root, pa = make_trees(tmp_path, with_tipi=False)
    # Session 4 written without padding too: the rule maps it all the same
    line = ocean_line(pa, "Ses04M_script01_1", "f")
    edit_line(pa / "ocean.csv", line, lambda l: l.replace("Ses04M_script01_1", "Ses04M_script1_1"))
    edit_line(pa / "ocean.csv", line + 1, lambda l: l.replace("Ses04M_script01_1", "Ses04M_script1_1"))
    counts = prepare_pa_iemocap(root, pa, tmp_path / "data")
    assert counts["tipi_max_diff"] is None and counts["num_utts"] == len(all_ids())
    d = read_kaldi_map(tmp_path / "data" / "fold4_test" / "utt2dialog")
    assert set(d.values()) == {"Ses04M_script01_1"}


# ---------------------------------------------------------------- bad input: nothing written

def _drop_rows(pa, dialogue):
    p = pa / "ocean.csv"
    p.write_text("".join(l for l in p.read_text().splitlines(True)
                         if not l.startswith(dialogue + ",")))


def break_no_rows(root, pa):
    _drop_rows(pa, "Ses04M_script01_1")
    (pa / "tipi_labels.csv").unlink()  # it would name the rows first (test_tipi_rows_...)
    return (rf"{pa / 'ocean.csv'}: no row for 1 dialogue\(s\) of kept utterances: "
            r"Ses04M_script01_1 \(4 utterances\)")


def break_padded_spelling_mismatch(root, pa):
    # a dialogue renamed in ocean.csv to one the tree does not have
    for g in "fm":
        edit_line(pa / "ocean.csv", ocean_line(pa, "Ses03M_impro05a", g),
                  lambda l: l.replace("Ses03M_impro05a", "Ses03M_impro05b"))
    (pa / "tipi_labels.csv").unlink()
    return r"no row for 1 dialogue\(s\) of kept utterances: Ses03M_impro05a \(2 utterances\)"


def break_one_gender(root, pa):
    line = ocean_line(pa, "Ses02M_script1_1", "f")
    p = pa / "ocean.csv"
    lines = p.read_text().splitlines(True)
    del lines[line - 1]
    p.write_text("".join(lines))
    return (rf"{p}: dialogue Ses02M_script1_1 has no f row \(only the m row on line {line}\); "
            "every dialogue needs both speakers")


def break_value(root, pa):
    line = ocean_line(pa, "Ses05F_impro01", "m")
    edit_line(pa / "ocean.csv", line, lambda l: ",".join(l.split(",")[:4] + ["8"] + l.split(",")[5:]))
    return rf"{pa / 'ocean.csv'}:{line}: dialogue Ses05F_impro01 m: CO '8' is outside 1-7"


def break_column(root, pa):
    p = pa / "ocean.csv"
    edit_line(p, 1, lambda l: l.replace(",NE,", ",N,"))
    return rf"{p}:1: no column NE in the header dialogue_id,gender,EX,AG,CO,N,OP"


def break_tipi(root, pa):
    p = pa / "tipi_labels.csv"
    n = _tipi_line(pa, "Ses01F_impro01", "m", 10)
    edit_line(p, n, lambda l: l.replace("Ses01F_impro01,m,10,", "Ses01F_impro01,m,9,"))
    return rf"{p}:{n}: second row for dialogue Ses01F_impro01 gender m item 9"


def break_missing_wav(root, pa):
    wav = root / "Session3" / "sentences" / "wav" / "Ses03M_impro05a" / "Ses03M_impro05a_M000.wav"
    wav.unlink()
    return rf"{wav}: no such file"


BREAKS = [break_no_rows, break_padded_spelling_mismatch, break_one_gender, break_value,
          break_column, break_tipi, break_missing_wav]


@pytest.mark.parametrize("breaker", BREAKS, ids=[b.__name__[6:] for b in BREAKS])
def test_bad_input_fails_and_writes_nothing(tmp_path, breaker):
    root, pa = make_trees(tmp_path)
    work = tmp_path / "work"
    out = work / "data"
    prepare_pa_iemocap(root, pa, out)
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(work)
    msg = breaker(root, pa)
    with pytest.raises(PaIemocapError if breaker is not break_missing_wav else
                       datadir.DataDirError, match=msg):
        prepare_pa_iemocap(root, pa, out)
    assert snapshot(work) == before
    with pytest.raises(datadir.DataDirError, match=msg):
        prepare_pa_iemocap(root, pa, work / "fresh")
    assert sorted(p.name for p in work.iterdir()) == ["data"]


def test_root_errors(trees, tmp_path):
    root, pa = trees
    missing = tmp_path / "nope"
    with pytest.raises(PaIemocapError, match=rf"--pa_iemocap_root {missing}: no such directory"):
        prepare_pa_iemocap(root, missing, tmp_path / "data")
    with pytest.raises(datadir.DataDirError, match=rf"--iemocap_root {missing}: no such directory"):
        prepare_pa_iemocap(missing, pa, tmp_path / "data")
    with pytest.raises(PaIemocapError, match=rf"--pa_iemocap_root {tmp_path}: no ocean.csv"):
        prepare_pa_iemocap(root, tmp_path, tmp_path / "data")
    shutil.copytree(pa, tmp_path / "up" / "PA-IEMOCAP")
    with pytest.raises(PaIemocapError, match=rf"did you mean --pa_iemocap_root "
                                             rf"{tmp_path / 'up' / 'PA-IEMOCAP'}\?"):
        prepare_pa_iemocap(root, tmp_path / "up", tmp_path / "data")
    assert not (tmp_path / "data").exists()
