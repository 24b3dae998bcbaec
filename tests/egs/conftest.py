"""Shared pieces of the recipe smoke tests: a recipe copied to a temporary tree, tiny configs."""

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# a wav2vec 2.0-shaped encoder small enough for a few CPU seconds a recipe
TINY_SSL_MODEL = dict(model_type="wav2vec2", hidden_size=16, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=32, conv_dim=[8, 8],
                      conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=8,
                      num_conv_pos_embedding_groups=2, feat_extract_norm="layer")


def copy_recipe(name: str, root: Path) -> Path:
    """egs/<name> copied under root (without data, dumps, experiments), beside a link to TEMPLATE."""
    (root / "egs").mkdir(exist_ok=True)
    shutil.copytree(REPO / "egs" / name, root / "egs" / name,
                    ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads", "RESULTS.md"))
    if not (root / "egs" / "TEMPLATE").exists():
        (root / "egs" / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    return root / "egs" / name


def tiny_ssl_config(freeze="feature_encoder", ctc_weight=0.0, pooling="mean", batch_size=16) -> str:
    """A SERTask training config over TINY_SSL_MODEL (weighted layers, 2 epochs, best by UA)."""
    return yaml.safe_dump(dict(
        encoder="ssl",
        encoder_conf=dict(model_config=TINY_SSL_MODEL, layer="weighted", freeze=freeze),
        normalize=None, pooling=pooling, classifier="linear", model_conf=dict(ctc_weight=ctc_weight),
        batch_type="sorted", batch_size=batch_size, max_epoch=2, optim="adamw",
        optim_conf=dict(lr=0.001), best_model_criterion=[["valid", "ua", "max"]],
        keep_nbest_models=1, num_workers=0,
    ))


@pytest.fixture(scope="session")
def recipe_tools():
    """``copy_recipe`` and ``tiny_ssl_config`` for the recipe tests."""
    return copy_recipe, tiny_ssl_config
