from .config import (ConfigKeyError, config_scope, merge_cfg_options,
                     resolve_work_dir)
from .preflight import check_dataset_paths

__all__ = [
    'ConfigKeyError', 'check_dataset_paths', 'config_scope',
    'merge_cfg_options', 'resolve_work_dir'
]
