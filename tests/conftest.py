"""Shared fixtures: the repository root, a tiny synthetic VOC, tool runner."""
import os
import os.path as osp
import subprocess
import sys

import pytest

import grpo_rm_mm  # noqa: F401  (shims + registration before mmseg/mmpretrain)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def synthetic_voc(tmp_path_factory) -> str:
    """A small synthetic Pascal VOC 2012 folder; returns its data_root."""
    from grpo_rm_mm.datasets import make_synthetic_voc
    root = tmp_path_factory.mktemp('VOCdevkit')
    return make_synthetic_voc(str(root), num_train=8, num_val=4, size=128,
                              seed=1)


def run_tool(*args: str, cwd: str = REPO_ROOT, timeout: int = 300,
             env: dict = None) -> subprocess.CompletedProcess:
    """Run ``python <args>`` in the repository, capturing its output."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_ulps(actual, expected, ulps: int = 4) -> None:
    """Two *different* modules or kernels agree within a few ulps.

    Bitwise equality is kept for the same computation repeated (resume, DDP
    ranks); another module or kernel may round differently (issue 9).
    """
    import torch
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    eps = torch.finfo(actual.dtype).eps * ulps
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=eps,
                               atol=eps * max(scale, 1e-30))
