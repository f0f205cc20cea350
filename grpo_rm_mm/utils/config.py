"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import difflib
import os.path as osp
from typing import Any, Dict, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

SUPPORTED_SCOPES = ('mmseg', 'mmpretrain')


class ConfigKeyError(ValueError):
    """A ``--cfg-options`` key that the config does not have."""


def _find_missing(cfg_dict: Any, key: str) -> Optional[Tuple[str, bool]]:
    """Describe why ``key`` (dotted, list indices allowed) is not in a config.

    Returns:
        tuple | None: None if the key exists; else a message naming the
        missing part, and whether it may be added as a new key (its parent
        is a dict and its name is close to none of the parent's keys).
    """
    node, walked = cfg_dict, []
    for part in key.split('.'):
        where = '.'.join(walked) or 'the top level'
        if isinstance(node, (list, tuple)):
            if not (part.isdigit() and int(part) < len(node)):
                return (f'{where} is a list of {len(node)}; {part!r} is no '
                        'index'), False
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                close = difflib.get_close_matches(part, list(node), n=1)
                if close:
                    return (f"no key {part!r} under {where}; did you mean "
                            f"'{close[0]}'?"), False
                return f'no key {part!r} under {where}', True
            node = node[part]
        else:
            return (f'{where} is a {type(node).__name__}, not a dict or '
                    'list'), False
        walked.append(part)
    return None


def merge_cfg_options(cfg: Config, options: Optional[Dict[str, Any]]) -> None:
    """Merge ``--cfg-options`` into ``cfg``, refusing likely typos.

    MMEngine silently creates any key it is given, so a typo such as
    ``model.decode_head.num_classs=2`` would train with the wrong setting.
    A key that is not in the config is refused when its name is close to
    one that is (with a "did you mean"), or when its parent is no dict; a
    new key close to no existing one (``randomness.deterministic=True``,
    ``default_hooks.visualization.interval=1``) is added, as MMSeg does,
    and the addition is printed. A key written ``+a.b=1`` is always added.

    Args:
        cfg (Config): the config, modified in place.
        options (dict | None): parsed ``--cfg-options``.

    Raises:
        ConfigKeyError: naming the first key that is refused.
    """
    if not options:
        return
    checked = {}
    for key, value in options.items():
        if key.startswith('+'):
            checked[key[1:]] = value
            continue
        missing = _find_missing(cfg._cfg_dict, key)
        if missing:
            problem, addable = missing
            if not addable:
                raise ConfigKeyError(
                    f"--cfg-options key '{key}' is not in the config "
                    f"({problem}). To add a new key on purpose write "
                    f"'+{key}=...'.")
            print_log(
                f"--cfg-options: added the new key '{key}' ({problem} in "
                'the config)',
                logger='current')
        checked[key] = value
    cfg.merge_from_dict(checked)


def config_scope(cfg: Config) -> str:
    """The codebase a config targets (its ``default_scope``)."""
    scope = cfg.get('default_scope', 'mmseg')
    if scope not in SUPPORTED_SCOPES:
        raise ValueError(f'config default_scope={scope!r}: grpo-rm-mm tools '
                         f'run {SUPPORTED_SCOPES} configs')
    return scope


def resolve_work_dir(cfg: Config, config_path: str,
                     work_dir: Optional[str]) -> None:
    """CLI ``--work-dir`` > config ``work_dir`` > ``./work_dirs/<stem>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        stem = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)


def load_config(path: str, launcher: str, options: Optional[Dict[str, Any]],
                work_dir: Optional[str]) -> Config:
    """The tools' common start: read the config, apply ``--launcher``,
    ``--cfg-options`` (checked) and ``--work-dir``, check the scope."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    merge_cfg_options(cfg, options)
    config_scope(cfg)
    resolve_work_dir(cfg, path, work_dir)
    return cfg


def check_checkpoint(path: Optional[str]) -> None:
    """A local checkpoint path must exist (URLs are MMEngine's to fetch)."""
    if path and '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
