"""egs/iemocap/local/run_paper.sh runs the paper's experiments one after the other to the end.

The baseline (no GST) runs first, then the Figure-3 block run of the pretrained-GST
config, whose GST reads GST-Tacotron's mel (conf/fbank_gst_tacotron.yaml): its own dump
and stage-3 marker, the validation set decoded and scored with the test set, and the
Figure-3 plot of the blocks' cross-fold scores. Tiny configs replace the recipe's tuning
configs in a copy of the recipe; one fold, one epoch, one block.
"""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import soundfile
import yaml

from espnet_ser.data.datadir import read_kaldi_map

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "egs" / "TEMPLATE" / "common.sh"


def _recipe_test_module():
    """tests/egs/test_iemocap_recipe.py: its tiny IEMOCAP tree and recipe copy."""
    spec = importlib.util.spec_from_file_location("iemocap_recipe_fixtures",
                                                  REPO / "tests/egs/test_iemocap_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_configs():
    """(baseline, pretrained-GST) tiny training configs, one epoch each."""
    gst = yaml.safe_load(_recipe_test_module().TINY_GST)
    gst["max_epoch"] = 1
    gst["encoder_conf"]["cond_layers"] = None  # every block; the block runs override it
    base = {k: v for k, v in gst.items() if not k.startswith("style_encoder")}
    base["encoder"] = "conformer"
    base["encoder_conf"] = {k: v for k, v in gst["encoder_conf"].items() if k != "cond_layers"}
    return yaml.safe_dump(base), yaml.safe_dump(gst)


def test_run_stage_needs_every_marker(tmp_path):
    """A stage with one marker per output runs until all of them exist."""
    (tmp_path / "a").touch()
    script = (f"set -euo pipefail; . {COMMON}; stage=3 stop_stage=3 force=false; "
              "run_stage 3 a b && echo run1 || echo skip1; touch b; "
              "run_stage 3 a b && echo run2 || echo skip2; "
              "force=true; run_stage 3 a b && echo run3 || echo skip3")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert [w for w in proc.stdout.split() if w[:-1] in ("run", "skip")] == ["run1", "skip2", "run3"]
    assert "already done (a b exists)" in proc.stdout


def test_paper_runs_baseline_then_a_pretrained_gst_block_run_to_the_end(tmp_path, recipe_tools, monkeypatch):
    fixtures = _recipe_test_module()
    tree = fixtures.make_tree(tmp_path / "IEMOCAP_full_release")
    d = fixtures.iemocap_recipe(recipe_tools, tmp_path)
    base_cfg, gst_cfg = tiny_configs()
    (d / "conf/tuning/train_asr_ser_conformer.yaml").write_text(base_cfg)
    (d / "conf/tuning/train_asr_ser_conformer_ptgst.yaml").write_text(gst_cfg)
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(
        ["local/run_paper.sh", "--experiments", "baseline blocks", "--blocks", "1",
         "--iemocap_root", str(tree), "--folds", "1", "--decode_config", "conf/decode_tiny.yaml",
         "--nbpe", "30", "--nbest_avg", "1", "--nj", "2", "--decode_nj", "1"],
        cwd=d, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "finished: baseline blocks" in proc.stdout

    # each dump has its own marker; the GST run dumped GST-Tacotron's mel apart
    assert (d / "dump/fbank/.done.fold1_train").is_file()
    assert (d / "dump/gst_fbank_tacotron/.done.fold1_train").is_file()
    assert not (d / "dump/gst_fbank").exists()
    taco_conf = REPO / "conf/fbank_gst_tacotron.yaml"
    assert yaml.safe_load((d / "dump/gst_fbank_tacotron/iemocap_all/fbank.yaml").read_text())[
        "normalization"] == "tacotron"

    base = d / "exp/asr_train_asr_ser_conformer_bpe30_emoend_fold1"
    block = d / "exp/asr_train_asr_ser_conformer_ptgst_block1_bpe30_emoend_fold1"
    config = yaml.safe_load((block / "config.yaml").read_text())
    assert config["encoder_conf"]["cond_layers"] == [1]
    data = {x[1]: x[0] for x in config["train_data_path_and_name_and_type"]}
    assert data["style_speech"] == "dump/gst_fbank_tacotron/fold1_train/feats.scp"
    assert (block / "gst_feats_config.yaml").read_text() == taco_conf.read_text()

    # the validation set is decoded and scored too, and reaches RESULTS.md
    for exp in (base, block):
        for dset in ("fold1_valid", "fold1_test"):
            hyp = read_kaldi_map(exp / "decode_decode_tiny" / dset / "text", allow_empty_value=True)
            assert sorted(hyp) == sorted(read_kaldi_map(d / "data" / dset / "text"))
            assert (exp / "decode_decode_tiny" / dset / "score/scores.json").is_file()
    results = (d / "RESULTS.md").read_text()
    assert "fold1_valid" in results and "fold1_test" in results

    # the experiment computes from a wave the GST features its dump holds
    from espnet_ser.asr.inference import Speech2TextEmotion

    monkeypatch.chdir(d)  # the experiment's config names its files relative to the recipe
    s2t = Speech2TextEmotion.from_exp_dir(block, beam_size=1)
    scp = read_kaldi_map(d / "dump/gst_fbank_tacotron/fold1_test/feats.scp")
    wavs = read_kaldi_map(d / "data/fold1_test/wav.scp")
    for utt in sorted(scp)[:2]:
        wave, fs = soundfile.read(wavs[utt], dtype="float32")
        dumped = kaldiio.load_mat(scp[utt])
        # the same computation (torch thread counts may differ: float32 rounding only)
        np.testing.assert_allclose(s2t.style_features(wave, fs), dumped, rtol=0, atol=1e-6)
        assert dumped.min() >= 1e-8 and dumped.max() <= 1.0

    # Figure 3: the block's cross-fold scores, drawn and tabulated
    sweep = d / "exp/asr_train_asr_ser_conformer_ptgst_block_sweep_bpe30_emoend/decode_decode_tiny"
    assert (sweep / "block_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cv = json.loads((d / "exp/asr_train_asr_ser_conformer_ptgst_block1_bpe30_emoend_cv/decode_decode_tiny"
                          "/cv_test/score/scores.json").read_text())
    summary = json.loads((sweep / "block_sweep.json").read_text())
    assert list(summary["blocks"]) == ["1"]
    assert summary["blocks"]["1"]["ua"] == cv["ua"] and summary["blocks"]["1"]["ww"] == cv["ww"]
    assert "|1|2|" in (sweep / "block_sweep.md").read_text()  # 0-based block 1 = the paper's block 2
