"""espnet_ser.utils.jobs: parts, part directories and the merge checks of the inference CLIs."""

import pytest

from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map
from espnet_ser.utils.jobs import merge_outputs, part_dir, run_jobs, split_utterances, write_part

UTTS = ["u3", "u1", "u2"]


def write_jobs(out, parts, names=("a", "b"), failed=None):
    for job, utts in enumerate(parts, 1):
        if not utts:
            continue
        results = {name: {u: f"{name}-{u}" for u in utts} for name in names}
        write_part(part_dir(out, len(parts), job), len(utts), results,
                   {u: "why" for u in (failed or {}).get(job, [])}, None)


def test_split_and_run_jobs(tmp_path):
    parts = split_utterances(UTTS, 2)
    assert parts == [["u1", "u2"], ["u3"]]
    seen = []
    run_jobs(tmp_path, 2, None, parts, lambda utts, d: seen.append((utts, d)))
    assert seen == [(["u1", "u2"], tmp_path / "split2" / "output.1"),
                    (["u3"], tmp_path / "split2" / "output.2")]
    seen.clear()
    run_jobs(tmp_path, 2, 2, parts, lambda utts, d: seen.append(utts))
    assert seen == [["u3"]]
    with pytest.raises(ValueError, match="--job 3 is outside 1..2"):
        run_jobs(tmp_path, 2, 3, parts, lambda utts, d: None)


def test_merge_writes_maps_and_counts(tmp_path):
    parts = split_utterances(UTTS, 4)  # the last part is empty: no directory needed
    write_jobs(tmp_path, parts, failed={2: ["u2"]})
    (tmp_path / "c").write_text("stale\n")
    merge_outputs(tmp_path, 4, parts, ("a", "b"), None, optional=("c",))
    assert read_kaldi_map(tmp_path / "a") == {u: f"a-{u}" for u in sorted(UTTS)}
    assert read_kaldi_map(tmp_path / "failed") == {"u2": "why"}
    assert (tmp_path / "num_utts").read_text() == "3\n"
    assert not (tmp_path / "c").exists()
    with pytest.raises(RuntimeError, match="more than --max_failures 0"):
        merge_outputs(tmp_path, 4, parts, ("a", "b"), 0)


def test_merge_optional_output_when_written(tmp_path):
    parts = split_utterances(UTTS, 2)
    write_jobs(tmp_path, parts, names=("a", "c"))
    merge_outputs(tmp_path, 2, parts, ("a",), None, optional=("c",))
    assert read_kaldi_map(tmp_path / "c") == {u: f"c-{u}" for u in sorted(UTTS)}


def test_merge_errors_name_the_file_and_job(tmp_path):
    parts = split_utterances(UTTS, 2)
    write_jobs(tmp_path, parts)
    job2 = part_dir(tmp_path, 2, 2)
    (job2 / "b").unlink()
    with pytest.raises(FileNotFoundError, match=r"output\.2/b: missing; prediction job 2 of 2"):
        merge_outputs(tmp_path, 2, parts, ("a", "b"), None, job_kind="prediction")
    write_kaldi_map(job2 / "b", {"u1": "x", "u3": "y"})
    with pytest.raises(ValueError, match=r"output\.2/b: holds 2 utterances, job 2 had 1"):
        merge_outputs(tmp_path, 2, parts, ("a", "b"), None)
    write_kaldi_map(job2 / "b", {"u3": "y"})
    write_kaldi_map(job2 / "failed", {"u1": "why"})
    with pytest.raises(ValueError, match=r"output\.2/failed: utterance u1 is not in job 2"):
        merge_outputs(tmp_path, 2, parts, ("a", "b"), None)


def test_merge_with_nothing_done_fails_after_writing(tmp_path):
    parts = split_utterances(UTTS, 1)
    write_jobs(tmp_path, parts, failed={1: UTTS})
    with pytest.raises(RuntimeError, match="no utterance was predicted"):
        merge_outputs(tmp_path, 1, parts, ("a", "b"), None, done="predicted")
    assert len(read_kaldi_map(tmp_path / "failed")) == 3


@pytest.mark.parametrize("nj", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n_utts", [1, 5, 7, 13])
def test_split_covers_every_utterance_once(nj, n_utts):
    utts = [f"u{i:03d}" for i in range(n_utts)][::-1]  # given unsorted
    parts = split_utterances(utts, nj)
    assert len(parts) == nj
    flat = [u for part in parts for u in part]
    assert flat == sorted(utts)  # contiguous, in sorted order, each exactly once
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    assert split_utterances(list(reversed(utts)), nj) == parts  # deterministic


def test_split_rejects_bad_input():
    with pytest.raises(ValueError):
        split_utterances(["a"], 0)
    with pytest.raises(ValueError, match="unique"):
        split_utterances(["a", "a"], 1)
