"""Tell each split's mask loader how many classes its dataset has.

:class:`~grpo_rm_mm.datasets.transforms.CheckedLoadAnnotations` refuses mask
labels outside the dataset's classes, but a transform does not know its
dataset. The tools therefore fill ``num_classes`` (and ``ignore_index``) into
every ``CheckedLoadAnnotations`` of every split's pipeline from the dataset's
own classes (``metainfo.classes`` in the config, else the dataset type's
``METAINFO``), so the class list stays written once.
"""
from typing import Any, Optional, Sequence

from .preflight import split_datasets

LOADER = 'CheckedLoadAnnotations'
#: MMSeg's ``BaseSegDataset`` default
DEFAULT_IGNORE_INDEX = 255


def dataset_num_classes(ds: dict) -> Optional[int]:
    """Number of classes of a dataset config, or None if it has no list."""
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes is None:
        ds_type = ds.get('type')
        if isinstance(ds_type, str):
            from mmseg.registry import DATASETS
            ds_type = DATASETS.get(ds_type)
        classes = getattr(ds_type, 'METAINFO', {}).get('classes')
    return None if classes is None else len(classes)


def _fill(node: Any, num_classes: int, ignore_index: int) -> None:
    """Set the range on every mask loader in a (nested) pipeline."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _fill(item, num_classes, ignore_index)
    elif isinstance(node, dict):
        if node.get('type') == LOADER:
            node.setdefault('num_classes', num_classes)
            node.setdefault('ignore_index', ignore_index)
        for value in node.values():  # TestTimeAug's transforms, ...
            if isinstance(value, (list, tuple, dict)):
                _fill(value, num_classes, ignore_index)


def bind_mask_label_range(
        cfg, splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Fill ``num_classes`` / ``ignore_index`` into the mask loaders.

    Args:
        cfg (Config): the config, modified in place.
        splits (Sequence[str]): which ``{split}_dataloader`` s to complete.
    """
    for _, ds in split_datasets(cfg, splits):
        num_classes = dataset_num_classes(ds)
        if num_classes is not None and ds.get('pipeline'):
            _fill(ds['pipeline'], num_classes,
                  ds.get('ignore_index', DEFAULT_IGNORE_INDEX))
