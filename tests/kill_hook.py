"""Test support: the training process kills itself (SIGKILL, as ``kill -9``)
when it reaches a given iteration, before running it."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL the training process just before iteration ``at_iter`` (0-based
    count of iterations already run)."""

    priority = 'HIGHEST'

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class StopAfterIterHook(Hook):
    """End training cleanly once ``iters`` iterations ran (at the end of
    that epoch in an epoch loop), as ``EarlyStoppingHook`` does."""

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 >= self.iters:
            runner.train_loop.stop_training = True


@HOOKS.register_module()
class CrashAtIterHook(KillAtIterHook):
    """Raise ``RuntimeError('test crash')`` just before ``at_iter`` (a crash
    that an in-process test can catch)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.at_iter:
            raise RuntimeError('test crash')
