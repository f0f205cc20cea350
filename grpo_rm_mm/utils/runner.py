"""Runner construction and teardown shared by ``tools/train.py`` and
``tools/test.py``."""
import contextlib
from typing import Iterator

import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..compat import prepare_distributed
from ..engine.hooks import (ImageSizeCheckHook, RandomStateHook,
                            seed_train_samples)
from .checkpoint import CheckpointShapeCheckHook
from .class_list import bind_class_list
from .mask_labels import bind_mask_label_range


def build_runner(cfg: Config, complete_checkpoint: bool = False) -> Runner:
    """Prepare distributed running (CPU workaround), then build the runner
    as MMSeg's tools do (``runner_type`` picks a registered one).

    Every checkpoint the runner loads (``load_from``, ``--resume``, the
    checkpoint under test) is checked against the model first: a weight of
    another shape is an error, and with ``complete_checkpoint`` (evaluation)
    so is a weight the checkpoint lacks. Mask loaders learn their dataset's
    classes (:func:`bind_mask_label_range`), the splits of a classification
    dataset one class list (:func:`bind_class_list`), and a classification
    batch of images of different sizes is an error
    (:class:`ImageSizeCheckHook`). Training is resumable
    exactly: each sample is augmented from its place in the data stream and
    checkpoints carry every random state (:class:`RandomStateHook`).
    """
    prepare_distributed(cfg)
    bind_mask_label_range(cfg)
    bind_class_list(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.register_hook(
        CheckpointShapeCheckHook(
            load_from=cfg.get('load_from'),
            complete=complete_checkpoint),
        priority='VERY_HIGH')
    seed_train_samples(runner)
    runner.register_hook(RandomStateHook())
    if cfg.get('default_scope') == 'mmpretrain':
        runner.register_hook(ImageSizeCheckHook())
    return runner


def close_process_group(barrier: bool = True) -> None:
    """Destroy the default process group, if any, after a barrier.

    Without it gloo's worker threads may release tensors while the
    interpreter finalizes, and the C++ runtime aborts the process
    ("terminate called without an active exception"). The barrier keeps a
    rank from tearing down while another still communicates; it is skipped
    after an error, when the other ranks may never reach it.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if barrier:
            dist.barrier()
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def closing_process_group() -> Iterator[None]:
    """``with closing_process_group(): ...`` ends a (possibly distributed)
    run with :func:`close_process_group`, also when it fails."""
    try:
        yield
    except BaseException:
        close_process_group(barrier=False)
        raise
    close_process_group()
