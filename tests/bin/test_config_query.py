"""espnet_ser.bin.config_query: the one YAML reader of the recipe shells."""

import json

import pytest

from espnet_ser.bin.config_query import main


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("n_mels: 80\nstyle_encoder: gst\nuse_amp: false\nempty:\n"
                    "model_conf: {ctc_weight: 0.001, dims: [1, 2]}\nencoder_conf: {layer: weighted}\n")
    return path


def run(capsys, *args):
    main(list(args))
    return capsys.readouterr().out.strip()


def test_top_level_and_nested_values(config, capsys):
    assert run(capsys, "--config", str(config), "--key", "n_mels") == "80"
    assert run(capsys, "--config", str(config), "--key", "model_conf.ctc_weight") == "0.001"
    assert run(capsys, "--config", str(config), "--key", "encoder_conf.layer") == "weighted"
    assert run(capsys, "--config", str(config), "--key", "use_amp") == "false"
    assert json.loads(run(capsys, "--config", str(config), "--key", "model_conf.dims")) == [1, 2]
    assert json.loads(run(capsys, "--config", str(config), "--key", "model_conf")) == {
        "ctc_weight": 0.001, "dims": [1, 2]}


def test_default_for_missing_or_null_keys(config, capsys):
    for key in ("frontend_conf.n_mels", "model_conf.lsm_weight", "empty", "n_mels_x"):
        assert run(capsys, "--config", str(config), "--key", key, "--default", "none") == "none"
    # the default is not used when the key has a value (even a false one)
    assert run(capsys, "--config", str(config), "--key", "use_amp", "--default", "x") == "false"


def test_json_file(tmp_path, capsys):
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"dumped_feats": True, "fs": 16000}))
    assert run(capsys, "--config", str(info), "--key", "dumped_feats") == "true"


def test_missing_key_names_file_and_key(config):
    with pytest.raises(SystemExit) as e:
        main(["--config", str(config), "--key", "frontend_conf.n_mels"])
    assert str(config) in str(e.value.code) and "'frontend_conf.n_mels'" in str(e.value.code)


def test_missing_file_and_non_mapping_are_errors(config, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--config", str(tmp_path / "nope.yaml"), "--key", "n_mels", "--default", "1"])
    assert "nope.yaml" in str(e.value.code) and "'n_mels'" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        main(["--config", str(config), "--key", "n_mels.x", "--default", "1"])
    assert "n_mels is not a mapping" in str(e.value.code)
