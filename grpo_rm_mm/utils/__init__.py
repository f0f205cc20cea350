from .checkpoint import (CheckpointFileError, CheckpointMismatchError,
                         CheckpointShapeCheckHook, check_checkpoint_file,
                         check_checkpoint_fits)
from .class_list import bind_class_list, check_labelled_splits
from .config import (ConfigKeyError, check_checkpoint, config_scope,
                     load_config, merge_cfg_options, resolve_work_dir)
from .logs import (find_scalar_log, find_scalar_logs, read_run_logs,
                   read_scalar_log)
from .mask_labels import bind_mask_label_range, dataset_num_classes
from .preflight import check_dataset_paths
from .runner import build_runner, close_process_group, closing_process_group
from .work_dir import WorkDirInUseError, prepare_work_dir

__all__ = [
    'CheckpointFileError', 'CheckpointMismatchError',
    'CheckpointShapeCheckHook', 'ConfigKeyError', 'WorkDirInUseError',
    'bind_class_list', 'bind_mask_label_range', 'build_runner',
    'check_checkpoint', 'check_checkpoint_file', 'check_checkpoint_fits',
    'check_dataset_paths', 'check_labelled_splits', 'close_process_group',
    'closing_process_group', 'config_scope', 'dataset_num_classes',
    'find_scalar_log', 'find_scalar_logs', 'load_config',
    'merge_cfg_options', 'prepare_work_dir', 'read_run_logs',
    'read_scalar_log', 'resolve_work_dir'
]
