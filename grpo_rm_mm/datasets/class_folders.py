"""MMPretrain's ``CustomDataset`` with its labels bound to one class list.

``CustomDataset`` numbers the class folders *of each split* in sorted order,
so a validation split that lacks one class folder shifts the label of every
later class, and a split with a folder too many gets a label the model does
not have; annotation-file labels are taken as they are. Both give a wrong
accuracy without a word. :class:`BoundCustomDataset` labels a folder by its
name's index in the class list (``metainfo.classes``), which
:func:`grpo_rm_mm.utils.bind_class_list` makes the same for every split of a
config; any other folder or label is an error naming the split, the folder or
the line, and the class list.
"""
from typing import List, Optional

from mmengine.fileio import get_file_backend, list_from_file
from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import find_folders, get_samples
from mmpretrain.registry import DATASETS


class ClassListError(ValueError):
    """A class folder or label that is not in the dataset's class list."""


@DATASETS.register_module()
class BoundCustomDataset(CustomDataset):
    """``CustomDataset`` whose labels go through ``metainfo.classes``.

    - Class folders (no ``ann_file``): a folder is labelled with its name's
      index in the class list; a split may lack some classes, and a folder
      that is not in the list is an error.
    - Annotation file: every label must be an integer in
      ``[0, number of classes)`` (``num_classes`` when there is no list).

    Args:
        split_key (str): the config key of this split's dataset, for the
            messages (e.g. ``'val_dataloader.dataset'``).
        num_classes (int, optional): the classes of the model's head; labels
            must be below it when the class list has no names.
        **kwargs: :class:`mmpretrain.datasets.CustomDataset` arguments.
    """

    def __init__(self, *args, split_key: str = 'dataset',
                 num_classes: Optional[int] = None, **kwargs):
        self.split_key = split_key
        self.num_classes = num_classes
        super().__init__(*args, **kwargs)

    def _class_list(self) -> str:
        classes = list(self.CLASSES or ())
        return (f'the {len(classes)} classes {classes} (the config\'s '
                'metainfo.classes, else the train split\'s class folders)')

    def _find_samples(self):
        if not self.with_label or self.CLASSES is None:
            return super()._find_samples()
        classes = list(self.CLASSES)
        folders, _ = find_folders(self.img_prefix)
        unknown = [f for f in folders if f not in classes]
        if unknown:
            raise ClassListError(
                f'{self.split_key}: class folder(s) {unknown} in '
                f'{self.img_prefix} are not among {self._class_list()}. '
                'Remove them, or list every class in metainfo.classes (and '
                "the model's num_classes)")
        self.folder_to_idx = {f: classes.index(f) for f in folders}
        samples, empty = get_samples(self.img_prefix, self.folder_to_idx,
                                     is_valid_file=self.is_valid_file)
        if not samples:
            raise RuntimeError(
                f'{self.split_key}: found no image in the class folders of '
                f'{self.img_prefix} (extensions: {", ".join(self.extensions)})'
            )
        if empty:
            MMLogger.get_current_instance().warning(
                f'{self.split_key}: no image in the class folder(s) '
                f'{sorted(empty)} of {self.img_prefix}')
        return samples

    def load_data_list(self) -> List[dict]:
        if not (self.ann_file and self.with_label):
            return super().load_data_list()
        limit = len(self.CLASSES) if self.CLASSES else self.num_classes
        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        data_list = []
        for line_no, line in enumerate(list_from_file(self.ann_file), 1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(' ', 1)
            where = f'{self.split_key}: {self.ann_file}:{line_no}'
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise ClassListError(
                    f'{where}: expected "<image path> <integer label>", got '
                    f'{line.strip()!r}')
            label = int(parts[1])
            if label < 0 or (limit is not None and label >= limit):
                known = (self._class_list() if self.CLASSES else
                         f'the {limit} classes of the model\'s head')
                raise ClassListError(
                    f'{where}: label {label} is not a class index of '
                    f'{known}')
            data_list.append(dict(
                img_path=backend.join_path(self.img_prefix, parts[0]),
                gt_label=label))
        return data_list
