from .config import (ConfigKeyError, check_checkpoint, config_scope,
                     load_config, merge_cfg_options, resolve_work_dir)
from .preflight import check_dataset_paths
from .runner import build_runner

__all__ = [
    'ConfigKeyError', 'build_runner', 'check_checkpoint',
    'check_dataset_paths', 'config_scope', 'load_config',
    'merge_cfg_options', 'resolve_work_dir'
]
