"""Feature extraction (log-mel filterbanks via ESPnet's DefaultFrontend) and global CMVN."""

from espnet_ser.features.cmvn import CMVNStats, compute_cmvn_stats, load_cmvn_stats
from espnet_ser.features.fbank import (
    FRONTEND_KEYS,
    AudioError,
    FbankExtractor,
    FeatureError,
    extract_part,
    iter_feats,
    load_fbank_config,
    load_utterance,
    merge_parts,
    split_utterances,
)

__all__ = [
    "FRONTEND_KEYS",
    "AudioError",
    "CMVNStats",
    "FbankExtractor",
    "FeatureError",
    "compute_cmvn_stats",
    "extract_part",
    "iter_feats",
    "load_cmvn_stats",
    "load_fbank_config",
    "load_utterance",
    "merge_parts",
    "split_utterances",
]
