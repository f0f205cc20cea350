"""One class list for every split of a classification dataset.

MMPretrain's ``CustomDataset`` labels each split by its own class folders;
the tools instead bind every split of such a dataset (train, val, test, and
the representation tool's train and test) to one list of class names: the
config's ``metainfo.classes``, else the train split's class folders. Each
split then reads its labels through
:class:`~grpo_rm_mm.datasets.class_folders.BoundCustomDataset`, which refuses
a folder or label outside the list. The list may not have more classes than
the model's head.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

from grpo_rm_mm.datasets.class_folders import ClassListError
from .preflight import split_datasets

#: dataset types whose labels the tools bind
FOLDER_TYPES = ('CustomDataset', 'mmpretrain.CustomDataset',
                'BoundCustomDataset')
SPLITS = ('train', 'val', 'test')


def _image_folder(ds: dict) -> str:
    root = ds.get('data_root') or ''
    prefix = ds.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path') or ''
    return osp.join(root, prefix) if root and not osp.isabs(prefix) \
        else prefix or root


def class_folders(ds: dict, key: str) -> List[str]:
    """The sorted class folders of a class-folder split (as MMPretrain
    numbers them)."""
    folder = _image_folder(ds)
    if not osp.isdir(folder):
        raise ClassListError(
            f'{key}: the class folders are read from {folder!r}, which does '
            'not exist; set metainfo.classes in the config to test without '
            'the train split')
    return sorted(d for d in os.listdir(folder)
                  if osp.isdir(osp.join(folder, d)))


def head_num_classes(cfg) -> Optional[int]:
    """``model.head.num_classes`` of an MMPretrain classifier config."""
    head = (cfg.get('model') or {}).get('head')
    num = head.get('num_classes') if isinstance(head, dict) else None
    return num if isinstance(num, int) else None


def bind_class_list(cfg, splits: Sequence[str] = SPLITS) -> Optional[list]:
    """Give every class-folder / annotation-file split of an MMPretrain
    config the same class list, checked against the head.

    Modifies ``cfg`` in place: the ``CustomDataset`` s become
    ``BoundCustomDataset`` s with ``metainfo.classes``, their config key and
    the head's ``num_classes``.

    Returns:
        list | None: the class names (None when the config names none and
        the train split is an annotation file: labels are then checked
        against the head only).
    """
    if cfg.get('default_scope') != 'mmpretrain':
        return None
    found = [(key, ds) for key, ds in split_datasets(cfg, SPLITS)
             if ds.get('type') in FOLDER_TYPES]
    if not found:
        return None
    named = {key: list(ds['metainfo']['classes']) for key, ds in found
             if (ds.get('metainfo') or {}).get('classes')}
    if len({tuple(v) for v in named.values()}) > 1:
        raise ClassListError(
            'the splits name different classes in metainfo.classes: ' +
            '; '.join(f'{key}: {v}' for key, v in named.items()) +
            '. Every split must use one class list')
    classes, source = None, None
    if named:
        classes, source = next(iter(named.values())), 'metainfo.classes'
    else:
        train = [(key, ds) for key, ds in found
                 if key.startswith('train_dataloader')]
        if train and not train[0][1].get('ann_file') and \
                train[0][1].get('with_label', True):
            key, ds = train[0]
            classes = class_folders(ds, key)
            source = f"the class folders of {key} ({_image_folder(ds)})"
        elif not train and any(not ds.get('ann_file') for _, ds in found):
            raise ClassListError(
                'the config has no train split to read the class folders '
                'from and no metainfo.classes: set metainfo.classes of '
                f'{found[0][0]} so that every split is labelled alike')
    num_classes = head_num_classes(cfg)
    if classes is not None and num_classes is not None and \
            len(classes) > num_classes:
        raise ClassListError(
            f'the class list has {len(classes)} classes {classes} ({source}) '
            f'but model.head.num_classes is {num_classes}: set num_classes '
            'to the number of classes, or remove the extra class folders')
    wanted = [f'{s}_dataloader' for s in splits]
    for key, ds in found:
        if key.split('.')[0] not in wanted:
            continue
        ds['type'] = 'BoundCustomDataset'
        ds['split_key'] = key
        if num_classes is not None:
            ds['num_classes'] = num_classes
        if classes is not None:
            ds['metainfo'] = dict(ds.get('metainfo') or {},
                                  classes=list(classes))
    return classes


def _unlabelled(ds: dict) -> Optional[str]:
    """Why a classification dataset config yields no labels, if it does."""
    if ds.get('with_label') is False:
        return 'with_label=False'
    ds_type = ds.get('type')
    if isinstance(ds_type, str):
        from mmpretrain.registry import DATASETS
        ds_type = DATASETS.get(ds_type)
    split = ds.get('split')
    if split is not None and split in getattr(ds_type, 'UNLABELED_SPLITS',
                                              ()):
        return f'split={split!r} has no labels'
    return None


def check_labelled_splits(cfg, splits: Sequence[str], tool: str) -> None:
    """Refuse a classification split without labels where ``tool`` needs
    them (MMPretrain would fail far away with ``KeyError: 'gt_label'``)."""
    if cfg.get('default_scope') != 'mmpretrain':
        return
    for key, ds in split_datasets(cfg, splits):
        reason = _unlabelled(ds)
        if reason:
            raise ValueError(
                f'{key}: {reason}, but {tool} needs labelled images: use a '
                "labelled split there (e.g. split='test' or 'train')")
