"""Check a config's dataset paths before the runner builds anything.

MMSeg's datasets assert on missing folders without a message, and an empty
split file fails deep inside MMEngine; these checks name the config key and
the path instead.
"""
import os.path as osp
from typing import Iterator, Sequence, Tuple

# dataset types whose ann_file may not be left empty
NEEDS_ANN_FILE = ('PascalVOCDataset', )


def _is_remote(path: str) -> bool:
    return '://' in path


def _iter_datasets(ds: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """The dataset config and every dataset wrapped by it."""
    if not isinstance(ds, dict):
        return
    yield key, ds
    if isinstance(ds.get('dataset'), dict):
        yield from _iter_datasets(ds['dataset'], key + '.dataset')
    for i, inner in enumerate(ds.get('datasets') or []):
        yield from _iter_datasets(inner, f'{key}.datasets.{i}')


def split_datasets(cfg, splits: Sequence[str]) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of every dataset, wrapped ones included,
    of the ``{split}_dataloader`` s of ``cfg``."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader and isinstance(loader.get('dataset'), dict):
            yield from _iter_datasets(loader['dataset'],
                                      f'{split}_dataloader.dataset')


def _is_blank(path: str) -> bool:
    """True if a file holds nothing but whitespace (read in chunks, so a
    large annotation file costs one read of its first bytes)."""
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 16), b''):
            if chunk.strip():
                return False
    return True


def _join(root: str, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def check_dataset_paths(cfg, splits: Sequence[str] = ('train', 'val')) -> None:
    """Raise ``FileNotFoundError`` naming the key of a missing dataset path
    (``ValueError`` for an empty annotation file).

    Args:
        cfg (Config): the config.
        splits (Sequence[str]): which ``{split}_dataloader`` s to check.
    """
    for key, ds in split_datasets(cfg, splits):
        _check_one(ds, key)


def _check_one(ds: dict, key: str) -> None:
    root = ds.get('data_root') or ''
    if root and not _is_remote(root) and not osp.isdir(root):
        raise FileNotFoundError(
            f"{key}.data_root: dataset folder '{root}' does not exist "
            f'(set it in the config or with --cfg-options {key}.data_root=...)'
        )
    ann_file = ds.get('ann_file') or ''
    if not ann_file and ds.get('type') in NEEDS_ANN_FILE:
        raise FileNotFoundError(
            f"{key}.ann_file is empty: {ds['type']} needs the split list, "
            "e.g. 'ImageSets/Segmentation/train.txt'")
    if ann_file and not _is_remote(ann_file):
        full = _join(root, ann_file)
        if not osp.isfile(full):
            raise FileNotFoundError(
                f"{key}.ann_file: annotation file '{full}' does not exist")
        if _is_blank(full):
            # MMEngine would fail far away: "need at least one array to
            # concatenate"
            raise ValueError(
                f"{key}.ann_file: annotation file '{full}' is empty: it "
                'lists no samples')
    prefixes = ds.get('data_prefix') or {}
    if isinstance(prefixes, str):
        prefixes = dict(data_prefix=prefixes)
    for name, sub in prefixes.items():
        if sub and isinstance(sub, str) and not _is_remote(sub):
            full = _join(root, sub)
            if not osp.exists(full):
                raise FileNotFoundError(
                    f"{key}.data_prefix.{name}: folder '{full}' does not "
                    'exist')
