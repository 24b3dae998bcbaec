"""Per-job dumps, merging, subsets and re-running (through extract_feats)."""

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from espnet2.fileio.read_text import load_num_sequence_text
from espnet_ser.bin import extract_feats
from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir, write_data_dir, write_kaldi_map
from espnet_ser.features.audio import load_utterance
from espnet_ser.features.dump import merge_dump
from espnet_ser.features.extractor import FeatureError
from espnet_ser.features.fbank import FbankExtractor
from espnet_ser.utils.jobs import split_utterances  # the split of the dump jobs

LENGTHS = [4000, 8000, 3000, 16000, 5000, 7000, 2000]  # 7 utterances: uneven parts


def run(*args):
    extract_feats.main([str(a) for a in args])


def extract(data, out, conf, nj, job=None, *extra):
    args = ["--config", conf, "--data_dir", data, "--out_dir", out, "--nj", nj]
    if job is not None:
        args += ["--job", job]
    run(*args, *extra)


def merge(data, out, nj, *extra):
    run("--merge", "--data_dir", data, "--out_dir", out, "--nj", nj, *extra)


def with_wav_entry(data: Path, utt: str, value: str) -> Path:
    """Replace one wav.scp value (make_data validates, and refuses commands)."""
    wav = read_kaldi_map(data / "wav.scp")
    wav[utt] = value
    write_kaldi_map(data / "wav.scp", wav)
    return data


def snapshot(directory: Path):
    """Contents and mtimes of every file under a directory."""
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------- jobs and merge


def test_jobs_then_merge(tmp_path, make_data, fbank_conf):
    data = make_data(LENGTHS)
    out = tmp_path / "dump" / "fbank" / "train"
    nj = 3
    for job in (1, 2, 3):
        extract(data, out, fbank_conf, nj, job)
    wav_scp = read_kaldi_map(data / "wav.scp")
    parts = split_utterances(list(wav_scp), nj)

    # Each part: kaldiio-readable ark/scp with exactly its utterances, absolute paths.
    for job, utts in enumerate(parts, 1):
        scp = out / f"split{nj}" / f"feats.{job}.scp"
        assert (out / f"split{nj}" / f"feats.{job}.ark").is_file()
        lines = scp.read_text().splitlines()
        assert [line.split()[0] for line in lines] == utts
        assert all(Path(line.split()[1].rsplit(":", 1)[0]).is_absolute() for line in lines)
        assert list(kaldiio.load_scp(str(scp)).keys()) == utts
    assert not list(out.rglob("*.tmp"))

    merge(data, out, nj)
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert list(feats.keys()) == sorted(wav_scp)
    extractor = FbankExtractor.from_yaml(fbank_conf)
    for lineno, (utt, path) in enumerate(wav_scp.items(), 1):
        mat = feats[utt]
        wave = load_utterance(utt, path, f"wav.scp:{lineno}", 16000)
        assert mat.dtype == np.float32
        assert mat.shape == (len(wave) // 256 + 1, 80)
        np.testing.assert_array_equal(mat, extractor(wave))

    # feats_shape in the format ESPnet's samplers read (csv_int).
    shapes = load_num_sequence_text(str(out / "feats_shape"), loader_type="csv_int")
    assert list(shapes) == sorted(wav_scp)
    for utt in wav_scp:
        assert shapes[utt] == list(feats[utt].shape)

    # The data directory files are copied (including the optional utt2dim).
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2emo", "utt2dim"):
        assert (out / name).read_text() == (data / name).read_text()
    assert (out / "fbank.yaml").is_file()

    # Readable from another working directory (absolute paths).
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "corpus")
        assert kaldiio.load_scp(str(out / "feats.scp"))[sorted(wav_scp)[0]].shape[1] == 80
    finally:
        os.chdir(cwd)


def test_without_job_extracts_everything_and_merges(tmp_path, make_data, fbank_conf):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 4)
    assert sorted(kaldiio.load_scp(str(out / "feats.scp"))) == sorted(read_kaldi_map(data / "wav.scp"))
    assert len(list((out / "split4").glob("feats.*.ark"))) == 4


def test_more_jobs_than_utterances(tmp_path, make_data, fbank_conf):
    data = make_data([4000, 5000])
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 5)
    assert len(read_kaldi_map(out / "feats.scp")) == 2
    assert (out / "split5" / "feats.5.scp").read_text() == ""


def test_merge_names_the_missing_part(tmp_path, make_data, fbank_conf, capsys):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    for job in (1, 3):
        extract(data, out, fbank_conf, 3, job)
    with pytest.raises(FeatureError, match=r"part 2 of 3 is missing: no .*split3/feats\.2\.scp"):
        merge_dump(data, out, 3)
    with pytest.raises(SystemExit) as exc:
        merge(data, out, 3)
    assert exc.value.code == 1
    assert "part 2 of 3 is missing" in capsys.readouterr().err
    assert not (out / "feats.scp").exists()


def test_merge_names_an_utterance_missing_from_a_part(tmp_path, make_data, fbank_conf):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    for job in (1, 2):
        extract(data, out, fbank_conf, 2, job)
    scp = out / "split2" / "feats.2.scp"
    lines = scp.read_text().splitlines(keepends=True)
    dropped = lines[1].split()[0]
    scp.write_text(lines[0] + "".join(lines[2:]))
    with pytest.raises(FeatureError, match=rf"part 2 of 2: utterance {dropped} is missing"):
        merge_dump(data, out, 2)


def test_rerunning_keeps_finished_results(tmp_path, make_data, fbank_conf, capsys):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    for job in (1, 2):
        extract(data, out, fbank_conf, 2, job)
    merge(data, out, 2)
    before = snapshot(out)

    capsys.readouterr()
    merge(data, out, 2)
    for job in (1, 2):
        extract(data, out, fbank_conf, 2, job)
    merge(data, out, 2)
    assert snapshot(out) == before  # nothing rewritten
    log = capsys.readouterr().err
    assert "nothing to do" in log and "kept" in log


def test_a_different_config_does_not_overwrite_silently(tmp_path, make_data, fbank_conf):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 2)
    before = snapshot(out)
    with pytest.raises(SystemExit) as exc:
        extract(data, out, fbank_conf, 2, 1, "--n_mels", 40)
    assert exc.value.code == 1
    assert snapshot(out) == before

    # With --overwrite the part is recomputed and the merge notices the change.
    extract(data, out, fbank_conf, 2, 1, "--n_mels", 40, "--overwrite", "true")
    extract(data, out, fbank_conf, 2, 2, "--n_mels", 40, "--overwrite", "true")
    merge(data, out, 2)
    shapes = load_num_sequence_text(str(out / "feats_shape"))
    assert {dims[1] for dims in shapes.values()} == {40}
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert all(feats[u].shape == tuple(shapes[u]) for u in shapes)


def test_merge_redone_when_the_data_dir_changes(tmp_path, make_data, fbank_conf):
    out = tmp_path / "dump"
    extract(make_data(LENGTHS, name="a"), out, fbank_conf, 2)
    data_b = make_data(LENGTHS[:4], name="b")
    extract(data_b, out, fbank_conf, 2)
    assert sorted(read_kaldi_map(out / "feats.scp")) == sorted(read_kaldi_map(data_b / "wav.scp"))
    assert (out / "text").read_text() == (data_b / "text").read_text()


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda d: str(d / "missing.wav"), "no such file"),
        ("rate", "sample rate 8000 Hz"),
        ("empty", "audio is empty"),
        ("stereo", "audio has 2 channels"),
        ("truncated", "audio is truncated"),
        ("garbage", "cannot read audio"),
        ("zero_bytes", "cannot read audio"),
    ],
)
def test_bad_audio_fails_naming_utterance_and_line(
    tmp_path, make_data, fbank_conf, wav_writer, capsys, make_bad, message
):
    bad = tmp_path / "bad.wav"
    if make_bad == "rate":
        wav_writer(bad, 4000, fs=8000)
    elif make_bad == "empty":
        wav_writer(bad, 0)
    elif make_bad == "stereo":
        wav_writer(bad, 4000, channels=2)
    elif make_bad == "truncated":
        wav_writer(bad, 8000)
        bad.write_bytes(bad.read_bytes()[: 44 + 2 * 3000])
    elif make_bad == "garbage":
        bad.write_bytes(b"\x13\x37 not audio" * 40)
    elif make_bad == "zero_bytes":
        bad.write_bytes(b"")
    entry = make_bad(tmp_path) if callable(make_bad) else str(bad)
    data = make_data([4000, 5000, 6000], extra={"spk0_utt02": entry})
    # wav.scp order: spk0_utt00, spk0_utt02, spk1_utt01 -> the bad one is line 2.
    out = tmp_path / "dump"
    with pytest.raises(SystemExit) as exc:
        extract(data, out, fbank_conf, 1, 1)
    assert exc.value.code == 1
    assert f"{data / 'wav.scp'}:2: utterance spk0_utt02: {message}" in capsys.readouterr().err
    assert not list(out.rglob("*.tmp")) and not (out / "split1" / "feats.1.scp").exists()


def test_failed_rerun_leaves_previous_part_intact(tmp_path, make_data, fbank_conf, wav_writer):
    data = make_data(LENGTHS)
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 1)
    before = snapshot(out)
    wav_writer(Path(read_kaldi_map(data / "wav.scp")["spk1_utt05"]), 4000, fs=22050)
    with pytest.raises(SystemExit):
        extract(data, out, fbank_conf, 1, 1, "--overwrite", "true")
    assert snapshot(out) == before


def test_channel_option_selects_a_channel(tmp_path, make_data, fbank_conf, wav_writer):
    stereo = tmp_path / "stereo.wav"
    samples = wav_writer(stereo, 6000, channels=2)
    data = make_data([4000], extra={"spk0_utt00": str(stereo)})
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 1, None, "--channel", 1)
    mat = kaldiio.load_scp(str(out / "feats.scp"))["spk0_utt00"]
    np.testing.assert_array_equal(mat, FbankExtractor.from_yaml(fbank_conf)(samples[:, 1]))


def test_pipe_entries_in_wav_scp(tmp_path, make_data, fbank_conf, wav_writer):
    path = tmp_path / "p.wav"
    samples = wav_writer(path, 5000, seed=9)
    data = with_wav_entry(make_data([4000, 4000]), "spk1_utt01", f"cat {path} |")
    out = tmp_path / "dump"
    extract(data, out, fbank_conf, 2, None, "--allow_commands", "true")
    mat = kaldiio.load_scp(str(out / "feats.scp"))["spk1_utt01"]
    np.testing.assert_array_equal(mat, FbankExtractor.from_yaml(fbank_conf)(samples))


def test_argument_errors(tmp_path, make_data, fbank_conf):
    data = make_data([4000])
    out = tmp_path / "dump"
    with pytest.raises(SystemExit) as exc:
        extract(data, out, fbank_conf, 2, 3)
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        run("--data_dir", data, "--out_dir", out)  # no --config
    assert exc.value.code == 2


def test_segments_file_is_refused(tmp_path, make_data, fbank_conf, capsys):
    data = make_data([4000])
    (data / "segments").write_text("spk0_utt00 rec 0.0 0.2\n")
    with pytest.raises(SystemExit):
        extract(data, tmp_path / "dump", fbank_conf, 1)
    assert "segments" in capsys.readouterr().err


def test_subset_of_a_dumped_superset(tmp_path, make_data, fbank_conf):
    data = make_data(LENGTHS)
    full = tmp_path / "dump" / "all"
    extract_feats.main(["--config", str(fbank_conf), "--data_dir", str(data), "--out_dir", str(full)])
    utts = sorted(read_kaldi_map(data / "wav.scp"))
    keep = utts[1:3]
    sub = tmp_path / "data_sub"
    write_data_dir(sub, {name: {u: read_kaldi_map(data / name)[u] for u in keep}
                         for name in ("wav.scp", "text", "utt2spk", "utt2emo")})
    out = tmp_path / "dump" / "sub"
    extract_feats.main(["--subset_of", str(full), "--data_dir", str(sub), "--out_dir", str(out)])
    got = kaldiio.load_scp(str(out / "feats.scp"))
    every = kaldiio.load_scp(str(full / "feats.scp"))
    assert list(got) == keep
    for u in keep:  # the same ark entries, not a new extraction
        np.testing.assert_array_equal(got[u], every[u])
    assert read_kaldi_map(out / "feats_shape") == {u: read_kaldi_map(full / "feats_shape")[u] for u in keep}
    assert (out / "text").read_text() == (sub / "text").read_text()
    assert not (out / "split1").exists()

    # an utterance the superset does not have is named
    m = read_kaldi_map(data / "wav.scp")
    (sub / "wav.scp").write_text("".join(f"{u} {m[u]}\n" for u in keep) + "zz_new /x.wav\n")
    with pytest.raises(SystemExit):
        extract_feats.main(["--subset_of", str(full), "--data_dir", str(sub), "--out_dir", str(tmp_path / "dump" / "bad")])
    assert not (tmp_path / "dump" / "bad" / "feats.scp").exists()


# ---------------------------------------------------------------- reliability


def test_commands_in_wav_scp_are_never_run_unless_allowed(tmp_path, make_data, fbank_conf, capsys):
    marker = tmp_path / "marker"
    data = with_wav_entry(make_data([4000, 5000]), "spk1_utt01", f"touch {marker} |")
    out = tmp_path / "dump"
    for args in ((1, 1), (1, None)):
        with pytest.raises(SystemExit) as exc:
            extract(data, out, fbank_conf, *args)
        assert exc.value.code == 1
        err = capsys.readouterr().err
        assert f"{data / 'wav.scp'}:2: utterance spk1_utt01: the wav.scp value is a shell command" in err
        assert "--allow_commands true" in err
    # not even with --on_error reject: a refused command is not a faulty file
    with pytest.raises(SystemExit):
        extract(data, out, fbank_conf, 1, None, "--on_error", "reject")
    assert not marker.exists()
    assert not (out / "feats.scp").exists()


def _bad_audio_corpus(tmp_path, make_data, wav_writer):
    """7 utterances; three have faulty audio: truncated, garbage, 0 bytes."""
    bad = {}
    trunc = tmp_path / "bad" / "trunc.wav"
    wav_writer(trunc, 8000)
    trunc.write_bytes(trunc.read_bytes()[: 44 + 2 * 2000])
    bad["spk0_utt02"] = (str(trunc), "truncated")
    garbage = tmp_path / "bad" / "garbage.wav"
    garbage.write_bytes(b"\x00garbage\xff" * 30)
    bad["spk1_utt03"] = (str(garbage), "unreadable")
    empty = tmp_path / "bad" / "empty.wav"
    empty.write_bytes(b"")
    bad["spk1_utt05"] = (str(empty), "unreadable")
    data = make_data(LENGTHS, extra={u: v[0] for u, v in bad.items()})
    return data, {u: v[1] for u, v in bad.items()}


def test_reject_list_keeps_the_good_utterances(tmp_path, make_data, fbank_conf, wav_writer, capsys):
    data, bad = _bad_audio_corpus(tmp_path, make_data, wav_writer)
    out = tmp_path / "dump"
    # by default the first faulty utterance stops the job
    with pytest.raises(SystemExit):
        extract(data, out, fbank_conf, 2, 1)
    assert "utterance spk0_utt02: audio is truncated" in capsys.readouterr().err

    for job in (1, 2):
        extract(data, out, fbank_conf, 2, job, "--on_error", "reject")
    # a merge that was not told to accept rejects refuses
    with pytest.raises(FeatureError, match=r"part 1 of 2 rejected 1 utterance\(s\) \(first: spk0_utt02"):
        merge_dump(data, out, 2)
    capsys.readouterr()
    merge(data, out, 2, "--on_error", "reject")
    log = capsys.readouterr().err
    assert f"3 utterance(s) of {data} rejected" in log and str(out / "reject_list") in log

    rejected = read_kaldi_map(out / "reject_list")
    assert sorted(rejected) == sorted(bad)
    for utt, reason in bad.items():
        assert rejected[utt].startswith(f"{reason}: ")
        assert f"utterance {utt}" in rejected[utt] and "wav.scp:" in rejected[utt]
    good = sorted(set(read_kaldi_map(data / "wav.scp")) - set(bad))
    assert list(kaldiio.load_scp(str(out / "feats.scp"))) == good
    assert list(read_kaldi_map(out / "feats_shape")) == good
    for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim"):
        assert list(read_kaldi_map(out / name)) == good, name
    spk2utt = read_kaldi_map(out / "spk2utt")
    assert sorted(u for v in spk2utt.values() for u in v.split()) == good
    validate_data_dir(out)

    # a re-run keeps everything, and a subset dump (a fold) leaves the rejects out too
    before = snapshot(out)
    extract(data, out, fbank_conf, 2, None, "--on_error", "reject")
    assert snapshot(out) == before
    sub = tmp_path / "data_sub"
    keep = sorted(read_kaldi_map(data / "wav.scp"))[:4]
    write_data_dir(sub, {n: {u: read_kaldi_map(data / n)[u] for u in keep}
                         for n in ("wav.scp", "text", "utt2spk", "utt2emo")})
    with pytest.raises(SystemExit):
        run("--subset_of", out, "--data_dir", sub, "--out_dir", tmp_path / "fold")
    run("--subset_of", out, "--data_dir", sub, "--out_dir", tmp_path / "fold", "--on_error", "reject")
    assert list(read_kaldi_map(tmp_path / "fold" / "feats.scp")) == [u for u in keep if u not in bad]
    assert sorted(read_kaldi_map(tmp_path / "fold" / "reject_list")) == sorted(u for u in keep if u in bad)
    validate_data_dir(tmp_path / "fold")


def test_resample_option(tmp_path, make_data, fbank_conf, wav_writer, capsys):
    from scipy.signal import resample_poly

    path = tmp_path / "r8k.wav"
    wave8k = wav_writer(path, 6000, fs=8000, seed=4)
    data = make_data([4000, 5000, 6000], extra={"spk0_utt02": str(path)})
    out = tmp_path / "dump"
    with pytest.raises(SystemExit):
        extract(data, out, fbank_conf, 1)
    assert "utterance spk0_utt02: sample rate 8000 Hz but the feature config expects 16000 Hz" in capsys.readouterr().err
    extract(data, out, fbank_conf, 1, None, "--resample", "true")
    assert "resampled 1 utterance(s) to 16000 Hz" in capsys.readouterr().err
    mat = kaldiio.load_scp(str(out / "feats.scp"))["spk0_utt02"]
    expected = resample_poly(wave8k.astype(np.float64), 2, 1).astype(np.float32)
    np.testing.assert_array_equal(mat, FbankExtractor.from_yaml(fbank_conf)(expected))
    assert mat.shape[0] == 12000 // 256 + 1
