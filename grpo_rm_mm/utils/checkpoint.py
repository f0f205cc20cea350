"""Refuse checkpoints that do not fit the model, naming file and keys.

MMEngine loads checkpoints with ``strict=False``: a weight of another shape
(a decode head for another number of classes, another embedding width) is
skipped with a warning and the model keeps its random initialisation, so an
evaluation reports a confident, wrong metric. The check runs at MMEngine's
``after_load_checkpoint`` point, before the weights reach the model, for
``load_from``, ``--resume`` and the checkpoint under test alike.
"""
import re
from typing import Dict, List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import find_latest_checkpoint

from ..models.backbones.checkpoint_io import (  # noqa: F401  (re-exported)
    CheckpointFileError, check_checkpoint_file)

#: keys MMEngine's loader also ignores when they are missing
IGNORED_MISSING = ('num_batches_tracked', )
#: how many keys a message lists before it counts the rest
LISTED = 10


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model they are loaded into."""


def _bare_model(model):
    """The model whose ``state_dict`` keys a checkpoint holds."""
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    return model


def checkpoint_mismatches(
        model_state: Dict, ckpt_state: Dict
) -> Tuple[List[Tuple[str, tuple, tuple]], List[str]]:
    """Compare a checkpoint's state dict with a model's.

    Args:
        model_state (dict): the model's ``state_dict()``.
        ckpt_state (dict): the checkpoint's; a ``module.`` prefix (DDP) is
            stripped, as MMEngine's loader does.

    Returns:
        tuple: ``(key, checkpoint shape, model shape)`` for every weight of
        another shape, and the model keys the checkpoint lacks.
    """
    ckpt_state = {
        re.sub(r'^module\.', '', k): v
        for k, v in ckpt_state.items()
    }
    shapes, missing = [], []
    for key, value in model_state.items():
        if key not in ckpt_state:
            if not key.endswith(IGNORED_MISSING):
                missing.append(key)
            continue
        theirs = getattr(ckpt_state[key], 'shape', None)
        if theirs is not None and tuple(theirs) != tuple(value.shape):
            shapes.append((key, tuple(theirs), tuple(value.shape)))
    return shapes, missing


def _listed(items: List[str]) -> str:
    more = len(items) - LISTED
    return '; '.join(items[:LISTED]) + (f'; ... and {more} more'
                                        if more > 0 else '')


def check_checkpoint_fits(model, checkpoint: Dict, filename: str,
                          complete: bool = False) -> None:
    """Raise :class:`CheckpointMismatchError` if ``checkpoint`` does not fit.

    Args:
        model (nn.Module): the model (wrappers and TTA models are unwrapped).
        checkpoint (dict): the loaded checkpoint (with or without a
            ``state_dict`` entry).
        filename (str): the checkpoint's file, for the message.
        complete (bool): also refuse a checkpoint that lacks some of the
            model's weights (evaluation); training may start from a partial
            one, such as a backbone without its head.
    """
    state = checkpoint.get('state_dict', checkpoint)
    shapes, missing = checkpoint_mismatches(
        _bare_model(model).state_dict(), state)
    problems = []
    if shapes:
        problems.append(
            f'{len(shapes)} weight(s) have another shape in the checkpoint '
            'than in the model: ' + _listed([
                f'{key}: checkpoint {list(theirs)} vs model {list(ours)}'
                for key, theirs, ours in shapes]))
    if complete and missing:
        problems.append(f'{len(missing)} weight(s) of the model are not in '
                        'the checkpoint: ' + _listed(missing))
    if problems:
        raise CheckpointMismatchError(
            f'checkpoint {filename} does not fit the model built from the '
            'config: ' + '. '.join(problems) + '. Was it trained with '
            'another config (num_classes, arch, embed_dims)?')


class CheckpointShapeCheckHook(Hook):
    """Runs :func:`check_checkpoint_fits` on every checkpoint the runner
    loads. Attached by :func:`grpo_rm_mm.utils.build_runner`.

    Args:
        load_from (str, optional): the config's ``load_from`` (the file the
            runner loads; when None it resumes from the work dir's latest
            checkpoint).
        complete (bool): see :func:`check_checkpoint_fits`.
    """

    def __init__(self, load_from: Optional[str] = None,
                 complete: bool = False):
        self.load_from = load_from
        self.complete = complete

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        filename = self.load_from or find_latest_checkpoint(runner.work_dir)
        check_checkpoint_fits(runner.model, checkpoint, filename,
                              self.complete)
