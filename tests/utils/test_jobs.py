"""espnet_ser.utils.jobs: parts, part directories and the merge checks of the inference CLIs."""

import pytest

from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map
from espnet_ser.utils.jobs import merge_parts, part_dir, run_jobs, split_parts, write_part

UTTS = ["u3", "u1", "u2"]


def write_jobs(out, parts, names=("a", "b"), failed=None):
    for job, utts in enumerate(parts, 1):
        if not utts:
            continue
        results = {name: {u: f"{name}-{u}" for u in utts} for name in names}
        write_part(part_dir(out, len(parts), job), len(utts), results,
                   {u: "why" for u in (failed or {}).get(job, [])}, None)


def test_split_and_run_jobs(tmp_path):
    parts = split_parts(UTTS, 2)
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
    parts = split_parts(UTTS, 4)  # the last part is empty: no directory needed
    write_jobs(tmp_path, parts, failed={2: ["u2"]})
    (tmp_path / "c").write_text("stale\n")
    merge_parts(tmp_path, 4, parts, ("a", "b"), None, optional=("c",))
    assert read_kaldi_map(tmp_path / "a") == {u: f"a-{u}" for u in sorted(UTTS)}
    assert read_kaldi_map(tmp_path / "failed") == {"u2": "why"}
    assert (tmp_path / "num_utts").read_text() == "3\n"
    assert not (tmp_path / "c").exists()
    with pytest.raises(RuntimeError, match="more than --max_failures 0"):
        merge_parts(tmp_path, 4, parts, ("a", "b"), 0)


def test_merge_optional_output_when_written(tmp_path):
    parts = split_parts(UTTS, 2)
    write_jobs(tmp_path, parts, names=("a", "c"))
    merge_parts(tmp_path, 2, parts, ("a",), None, optional=("c",))
    assert read_kaldi_map(tmp_path / "c") == {u: f"c-{u}" for u in sorted(UTTS)}


def test_merge_errors_name_the_file_and_job(tmp_path):
    parts = split_parts(UTTS, 2)
    write_jobs(tmp_path, parts)
    job2 = part_dir(tmp_path, 2, 2)
    (job2 / "b").unlink()
    with pytest.raises(FileNotFoundError, match=r"output\.2/b: missing; prediction job 2 of 2"):
        merge_parts(tmp_path, 2, parts, ("a", "b"), None, job_kind="prediction")
    write_kaldi_map(job2 / "b", {"u1": "x", "u3": "y"})
    with pytest.raises(ValueError, match=r"output\.2/b: holds 2 utterances, job 2 had 1"):
        merge_parts(tmp_path, 2, parts, ("a", "b"), None)
    write_kaldi_map(job2 / "b", {"u3": "y"})
    write_kaldi_map(job2 / "failed", {"u1": "why"})
    with pytest.raises(ValueError, match=r"output\.2/failed: utterance u1 is not in job 2"):
        merge_parts(tmp_path, 2, parts, ("a", "b"), None)


def test_merge_with_nothing_done_fails_after_writing(tmp_path):
    parts = split_parts(UTTS, 1)
    write_jobs(tmp_path, parts, failed={1: UTTS})
    with pytest.raises(RuntimeError, match="no utterance was predicted"):
        merge_parts(tmp_path, 1, parts, ("a", "b"), None, done="predicted")
    assert len(read_kaldi_map(tmp_path / "failed")) == 3
