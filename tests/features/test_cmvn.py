"""Global CMVN statistics: exact sums, ESPnet GlobalMVN compatibility, CLI behaviour."""

import kaldiio
import numpy as np
import pytest
import torch

from espnet2.layers.global_mvn import GlobalMVN
from espnet_ser.bin import compute_cmvn, extract_feats
from espnet_ser.features.cmvn import CMVNStats, compute_cmvn_stats, load_cmvn_stats
from espnet_ser.features.extractor import FeatureError


def write_scp(tmp_path, matrices, name="feats"):
    ark, scp = tmp_path / f"{name}.ark", tmp_path / f"{name}.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        for key, mat in matrices.items():
            w(key, mat)
    return scp


def random_matrices(seed=0, dim=5, lengths=(3, 17, 1, 40)):
    rng = np.random.default_rng(seed)
    return {
        f"utt{i}": (rng.standard_normal((n, dim)) * (i + 1) + 10 * i).astype(np.float32)
        for i, n in enumerate(lengths)
    }


def test_stats_equal_numpy(tmp_path):
    mats = random_matrices()
    scp = write_scp(tmp_path, mats)
    out = tmp_path / "stats.npz"
    compute_cmvn.main(["--feats_scp", str(scp), "--out", str(out)])

    allf = np.concatenate([m.astype(np.float64) for m in mats.values()])
    with np.load(out) as stats:
        assert sorted(stats.files) == ["count", "sum", "sum_square"]
        assert stats["count"].shape == () and int(stats["count"]) == allf.shape[0] == 61
        assert stats["sum"].dtype == np.float64 and stats["sum"].shape == (5,)
        np.testing.assert_allclose(stats["sum"], allf.sum(0), rtol=1e-12)
        np.testing.assert_allclose(stats["sum_square"], (allf**2).sum(0), rtol=1e-12)
    assert not list(tmp_path.glob("*.tmp"))

    mean, std = load_cmvn_stats(out).mean_std()
    np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, allf.std(0), rtol=1e-8)


def test_global_mvn_normalises_the_training_features(tmp_path, make_data, fbank_conf):
    data = make_data([4000, 9000, 3000, 12000, 6500])
    dump = tmp_path / "dump"
    extract_feats.main(["--config", str(fbank_conf), "--data_dir", str(data),
                        "--out_dir", str(dump), "--nj", "2"])
    stats_file = dump / "feats_stats.npz"
    compute_cmvn.main(["--feats_scp", str(dump / "feats.scp"), "--out", str(stats_file)])

    mvn = GlobalMVN(stats_file=str(stats_file))
    normalised = []
    for _, mat in kaldiio.load_scp_sequential(str(dump / "feats.scp")):
        x = torch.from_numpy(mat.astype(np.float64))[None]
        y, _ = mvn(x, torch.tensor([mat.shape[0]]))
        normalised.append(y[0].numpy())
    frames = np.concatenate(normalised)
    assert frames.shape[1] == 80
    np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(frames.std(0), 1.0, atol=1e-6)

    # And the inverse gives the features back.
    mat = next(iter(kaldiio.load_scp_sequential(str(dump / "feats.scp"))))[1]
    x = torch.from_numpy(mat.astype(np.float64))[None]
    y, _ = mvn(x.clone(), torch.tensor([mat.shape[0]]))
    back, _ = mvn.inverse(y, torch.tensor([mat.shape[0]]))
    np.testing.assert_allclose(back[0].numpy(), mat, rtol=1e-6, atol=1e-6)


def test_accumulation_is_float64():
    stats = CMVNStats()
    big = np.full((1000, 2), 1.0e4, dtype=np.float32)
    small = np.full((1000, 2), 1.0e-3, dtype=np.float32)
    for _ in range(50):
        stats.add(big)
    stats.add(small)
    expected = 50 * 1000 * 1.0e4 + 1000 * np.float64(np.float32(1.0e-3))
    np.testing.assert_array_equal(stats.sum, [expected, expected])


def test_bad_matrices_are_named(tmp_path):
    mats = random_matrices()
    mats["utt9"] = np.zeros((4, 7), dtype=np.float32)
    with pytest.raises(FeatureError, match=r"utterance utt9: feature dim 7 differs from the earlier 5"):
        compute_cmvn_stats(write_scp(tmp_path, mats, "dims"))
    nan = {"a": np.zeros((3, 2), np.float32), "b": np.array([[0.0, np.nan]], np.float32)}
    with pytest.raises(FeatureError, match=r"utterance b: features contain NaN"):
        compute_cmvn_stats(write_scp(tmp_path, nan, "nan"))


def test_failure_keeps_an_existing_stats_file(tmp_path, capsys):
    good = write_scp(tmp_path, random_matrices())
    out = tmp_path / "stats.npz"
    compute_cmvn.main(["--feats_scp", str(good), "--out", str(out)])
    before = out.read_bytes()

    broken = tmp_path / "broken.scp"
    broken.write_text(good.read_text() + f"uttX {tmp_path / 'gone.ark'}:42\n")
    with pytest.raises(SystemExit) as exc:
        compute_cmvn.main(["--feats_scp", str(broken), "--out", str(out)])
    assert exc.value.code == 1
    assert "broken.scp:5: utterance uttX: cannot read" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_empty_scp_is_an_error(tmp_path):
    scp = tmp_path / "empty.scp"
    scp.write_text("")
    with pytest.raises(FeatureError, match="no utterances"):
        compute_cmvn_stats(scp)
