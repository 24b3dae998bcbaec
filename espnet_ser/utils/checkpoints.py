"""Old import path of :mod:`espnet_ser.utils.averaging` and :mod:`espnet_ser.utils.packing`."""
# flake8: noqa: F401
from espnet_ser.utils.averaging import (
    CHECKPOINT_NAME, EPOCH_FILE_RE, MetricNotFoundError, available_metrics,
    average_checkpoint_files, average_nbest_checkpoints, average_state_dicts,
    default_average_name, epoch_checkpoint_path, find_epoch_checkpoints, infer_mode,
    load_reporter, load_state_dict, read_epoch_metrics, select_nbest,
)
from espnet_ser.utils.io import atomic_symlink, atomic_torch_save, atomic_write_text
from espnet_ser.utils.packing import (
    DECODE_CONFIG_NAME, META_CONFIG_KEY, META_MODEL_KEY, find_referenced_files, pack_model,
    unpack_model,
)
