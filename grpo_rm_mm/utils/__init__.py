from .config import (ConfigKeyError, check_checkpoint, config_scope,
                     load_config, merge_cfg_options, resolve_work_dir)
from .logs import find_scalar_log, read_scalar_log
from .preflight import check_dataset_paths
from .runner import build_runner

__all__ = [
    'ConfigKeyError', 'build_runner', 'check_checkpoint',
    'check_dataset_paths', 'config_scope', 'find_scalar_log', 'load_config',
    'merge_cfg_options', 'read_scalar_log', 'resolve_work_dir'
]
