"""Feature dumps: the extractor interface, its extractors, audio reading, CMVN statistics."""

import importlib

_EXPORTS = {".audio": ("AudioError", "load_utterance", "read_audio", "read_utterance"),
            ".cmvn": ("CMVNStats", "compute_cmvn_stats", "load_cmvn_stats"),
            ".dump": ("dump_config", "extract_part", "iter_feats", "merge_dump", "merge_parts",
                      "subset_dump"),
            ".extractor": ("Extractor", "FeatureError"),
            ".fbank": ("FRONTEND_KEYS", "FbankExtractor", "GSTFbankExtractor", "load_fbank_config"),
            "..utils.jobs": ("split_utterances",)}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    """The exports, imported on first use (reading audio needs neither torch nor ESPnet)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
