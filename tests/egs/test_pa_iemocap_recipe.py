"""egs/pa_iemocap on small trees: stage 1 (run.sh -> local/data.sh -> prepare_pa_iemocap), and
stages 2-6 of one fold with a tiny personality-fusion model, with ground-truth and with
(here: hand-made) predicted traits, up to Table 2."""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map
from espnet_ser.data.pa_iemocap import set_names
from tests.data.test_pa_iemocap import all_ids, make_trees

REPO = Path(__file__).resolve().parents[2]


def run(d: Path, *args):
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    return subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True,
                          timeout=300)


def test_stage1(tmp_path, recipe_tools):
    copy_recipe, _ = recipe_tools
    root, pa = make_trees(tmp_path / "corpora")
    (tmp_path / "work").mkdir()
    d = copy_recipe("pa_iemocap", tmp_path / "work")
    proc = run(d, "--iemocap_root", str(root), "--pa_iemocap_root", str(pa), "--stop_stage", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Stage 1: data preparation" in proc.stdout
    assert sorted(p.name for p in (d / "data").iterdir() if p.is_dir()) == sorted(set_names())
    assert set(read_kaldi_map(d / "data" / "pa_iemocap_all" / "utt2personality")) == all_ids()
    log = (d / "exp" / "log" / "data.log").read_text()
    assert "after dropping 2 with no words in the transcript" in log
    # predicted traits must exist before a --personality pred run; a missing root is named
    pred = run(d, "--personality", "pred", "--folds", "2")
    assert pred.returncode == 2 and "data/fold2_valid_pred/utt2personality is missing" in pred.stderr
    assert run(d, "--personality", "oracle").returncode == 2
    shutil.rmtree(d / "data")
    missing = run(d, "--iemocap_root", str(root), "--stop_stage", "1")
    assert missing.returncode == 1 and "failed; see exp/log/data.log" in missing.stdout
    assert "ERROR: --pa_iemocap_root " in (d / "exp" / "log" / "data.log").read_text()
    help_text = run(d, "--help").stdout
    assert "--personality" in help_text and "--pa_iemocap_root" in help_text


def test_one_fold_with_ground_truth_and_predicted_traits(tmp_path, recipe_tools):
    copy_recipe, tiny_ssl_config = recipe_tools
    root, pa = make_trees(tmp_path / "corpora")
    (tmp_path / "work").mkdir()
    d = copy_recipe("pa_iemocap", tmp_path / "work")
    conf = yaml.safe_load(tiny_ssl_config(ctc_weight=0.1, batch_size=4))
    conf.update(personality_fusion="attention", max_epoch=1, personality_fusion_conf=dict(
        speaker="interacted", listener="projected", fusion="sequential", num_heads=8))
    config = "conf/tuning/train_ser_hubert_row8.yaml"
    (d / config).write_text(yaml.safe_dump(conf))
    common = ["--train_config", config, "--folds", "1", "--nj", "1", "--decode_nj", "1"]
    gt = run(d, "--iemocap_root", str(root), "--pa_iemocap_root", str(pa), *common)
    assert gt.returncode == 0, gt.stdout[-4000:] + gt.stderr[-3000:]
    exp = d / "exp" / "ser_train_ser_hubert_row8_fold1"
    names = [x[1] for x in yaml.safe_load((exp / "config.yaml").read_text())[
        "train_data_path_and_name_and_type"]]
    assert "personality" in names
    (decoded,) = exp.glob("decode_*/fold1_test")
    assert set(read_kaldi_map(decoded / "emotion")) == set(
        read_kaldi_map(d / "data" / "fold1_test" / "utt2emo"))
    assert "--personality data/fold1_test/utt2personality" in next(
        (decoded / "log").glob("infer.1.log")).read_text()
    assert (d / "exp" / "ser_train_ser_hubert_row8_cv" / "score" / "scores.json").is_file()
    table = (d / "exp" / "table2" / "table2.txt").read_text()
    row8 = next(ln for ln in table.splitlines() if ln.startswith("| 8 "))
    assert row8.count("not run") == 1  # GT run, Pred not yet

    # predicted traits: the same sets with other utt2personality values
    for s in ("valid", "test"):
        src, dst = d / "data" / f"fold1_{s}", d / "data" / f"fold1_{s}_pred"
        shutil.copytree(src, dst)
        traits = read_kaldi_map(src / "utt2personality")
        write_kaldi_map(dst / "utt2personality", {
            u: " ".join(f"{min(7.0, float(x) + 0.5):.2f}" for x in v.split())
            for u, v in traits.items()})
    pred = run(d, *common, "--personality", "pred", "--stage", "2")
    assert pred.returncode == 0, pred.stdout[-4000:] + pred.stderr[-3000:]
    (decoded,) = (d / "exp" / "ser_train_ser_hubert_row8_fold1_pred").glob(
        "decode_*/fold1_test_pred")
    assert "--personality data/fold1_test_pred/utt2personality" in next(
        (decoded / "log").glob("infer.1.log")).read_text()
    table = (d / "exp" / "table2" / "table2.txt").read_text()
    row8 = next(ln for ln in table.splitlines() if ln.startswith("| 8 "))
    assert "not run" not in row8
