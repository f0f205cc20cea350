"""Every random state a resumed run needs, saved and restored by a hook."""
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import BatchSampler

from grpo_rm_mm.datasets.seeded import (SeededSampler, find_seeded_sampler,
                                        seeded_loader_cfg)

CKPT_KEY = 'random_states'


def capture_random_states() -> dict:
    """The global generators of this process: Python's, NumPy's, torch's
    CPU one and, where CUDA has been used, every GPU's. Plain Python types
    and tensors, which a ``weights_only`` load accepts."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states = dict(python=random.getstate(),
                  numpy=(kind, key.tolist(), pos, has_gauss, gauss),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    """Put back what :func:`capture_random_states` captured."""
    python = states['python']
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, key, pos, has_gauss, gauss = states['numpy']
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos,
                         has_gauss, gauss))
    torch.set_rng_state(states['torch'])
    cuda = states.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            print_log(f'RandomStateHook: the checkpoint holds the CUDA random '
                      f'states of {len(cuda)} GPUs, this machine has '
                      f'{torch.cuda.device_count()}: they are not restored',
                      logger='current', level=logging.WARNING)


def seed_train_samples(runner) -> None:
    """Make the runner's training data loader draw each sample's random
    augmentation from its place in the data stream
    (:mod:`grpo_rm_mm.datasets.seeded`). Acts on a loader config only, before
    the training loop builds it."""
    loader = getattr(runner, '_train_dataloader', None)
    if isinstance(loader, dict) and 'dataset' in loader:
        runner._train_dataloader = seeded_loader_cfg(loader)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Makes ``--resume`` continue a run exactly, random draws included.

    MMEngine's checkpoints keep the weights, optimizer, schedulers and the
    run's seed, but not how far the random generators have advanced, so a
    resumed run draws other dropout masks and augmentations than the
    uninterrupted run. This hook, attached to training runs by
    :func:`grpo_rm_mm.utils.build_runner`, keeps the *training* generators
    (Python's, NumPy's, torch's, CUDA's: what the model and the batch
    augmentations draw from in the main process) apart from everything
    else:

    - their state is captured when training starts and after every
      iteration, and put back before every iteration, so that loading data
      (each sample is augmented from its place in the data stream,
      :mod:`grpo_rm_mm.datasets.seeded`), validation or a new epoch's data
      loader draw nothing from them;
    - every checkpoint carries that state (``random_states``) and the data
      stream's seeds and epoch (its
      :class:`~grpo_rm_mm.datasets.seeded.SeededSampler`); ``--resume``
      restores both, so the resumed run draws exactly the numbers the
      uninterrupted run drew, whatever it did before its first iteration
      (model initialisation, skipping data);
    - in an epoch-based loop resumed from a checkpoint saved inside an
      epoch, that epoch's already trained batches are left out (MMEngine
      would train the whole epoch again).

    With ``randomness.diff_rank_seed=True`` on several ranks only rank 0's
    generators are saved; the others restart from them (a warning says so).
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        #: the training generators' state between iterations
        self._states: Optional[dict] = None
        self._resumed = False

    # ------------------------------------------------------------ training
    def before_train(self, runner) -> None:
        if not self._resumed:  # else the checkpoint's states are kept
            self._states = capture_random_states()

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self._states is not None:
            restore_random_states(self._states)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._states = capture_random_states()

    # ------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = dict(self._states or capture_random_states())
        sampler = self._sampler(runner)
        if sampler is not None:
            states['data'] = dict(
                seed=sampler.seed, epoch=sampler.epoch,
                sampler_seed=getattr(sampler.sampler, 'seed', None))
        checkpoint[CKPT_KEY] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # load_from: weights only
            return
        states = checkpoint.get(CKPT_KEY)
        if states is None:
            print_log('RandomStateHook: the checkpoint has no random states '
                      '(written by an older grpo-rm-mm or another tool); the '
                      'resumed run draws other random numbers than an '
                      'uninterrupted run would', logger='current',
                      level=logging.WARNING)
            return
        if get_world_size() > 1 and runner._randomness_cfg.get(
                'diff_rank_seed', False):
            print_log('RandomStateHook: diff_rank_seed=True: every rank '
                      "resumes from rank 0's random states",
                      logger='current', level=logging.WARNING)
        self._states, self._resumed = states, True
        self._restore_data_stream(runner, states.get('data'),
                                  checkpoint['meta'])

    # ------------------------------------------------------------ data
    @staticmethod
    def _sampler(runner) -> Optional[SeededSampler]:
        loop = runner.train_loop
        return find_seeded_sampler(getattr(loop, 'dataloader', None))

    def _restore_data_stream(self, runner, data: Optional[dict],
                             meta: dict) -> None:
        sampler = self._sampler(runner)
        if sampler is None or data is None:
            return
        changed = data['seed'] != sampler.seed or data['sampler_seed'] != \
            getattr(sampler.sampler, 'seed', None)
        sampler.seed = data['seed']
        if data['sampler_seed'] is not None:
            sampler.sampler.seed = data['sampler_seed']
        loop = runner.train_loop
        if changed and hasattr(loop, 'dataloader_iterator'):
            # an iteration loop started its iterator when it was built,
            # before the seeds were known: start it again
            loop.dataloader_iterator = type(loop.dataloader_iterator)(
                loop.dataloader)
        if isinstance(loop, EpochBasedTrainLoop):
            self._skip_trained_batches(runner, sampler, meta)

    @staticmethod
    def _skip_trained_batches(runner, sampler: SeededSampler,
                              meta: dict) -> None:
        loader = runner.train_loop.dataloader
        done = meta['iter'] - meta['epoch'] * len(loader)
        if done <= 0:
            return
        if type(loader.batch_sampler) is not BatchSampler:
            print_log(f'RandomStateHook: resuming inside epoch '
                      f"{meta['epoch'] + 1} with a "
                      f'{type(loader.batch_sampler).__name__}: its batches '
                      'cannot be skipped, the epoch is trained again from '
                      'its start', logger='current', level=logging.WARNING)
            return
        sampler.skip_next(done * loader.batch_sampler.batch_size)
        print_log(f"RandomStateHook: resuming inside epoch {meta['epoch'] + 1}"
                  f': its first {done} batches were trained before the '
                  'checkpoint and are skipped', logger='current')
