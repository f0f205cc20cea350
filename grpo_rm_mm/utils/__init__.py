from .checkpoint import (CheckpointMismatchError, CheckpointShapeCheckHook,
                         check_checkpoint_fits)
from .config import (ConfigKeyError, check_checkpoint, config_scope,
                     load_config, merge_cfg_options, resolve_work_dir)
from .logs import find_scalar_log, read_scalar_log
from .mask_labels import bind_mask_label_range, dataset_num_classes
from .preflight import check_dataset_paths
from .runner import build_runner, close_process_group, closing_process_group

__all__ = [
    'CheckpointMismatchError', 'CheckpointShapeCheckHook', 'ConfigKeyError',
    'bind_mask_label_range', 'build_runner', 'check_checkpoint',
    'check_checkpoint_fits', 'check_dataset_paths', 'close_process_group',
    'closing_process_group', 'config_scope', 'dataset_num_classes',
    'find_scalar_log', 'load_config', 'merge_cfg_options', 'read_scalar_log',
    'resolve_work_dir'
]
