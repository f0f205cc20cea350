"""Shared fixtures: the repository root, a tiny synthetic VOC, tool runner."""
import os
import os.path as osp
import subprocess
import sys

import pytest

import grpo_rm_mm  # noqa: F401  (shims + registration before mmseg/mmpretrain)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: ``assert_close`` tolerance for float32 results of two *different*
#: modules, code paths or kernels that compute the same values: a few ulps.
#: BLAS builds pick kernels by shape, stride and ``requires_grad``, so such
#: results agree bit for bit on some CPUs only. (The tiny DINOv2's float32
#: features differ from a float64 run by <= 3.4e-6 at |x| <= 4.7, ~7 ulps.)
#: Bitwise equality is kept for the same computation repeated (resume, DDP
#: ranks) and for data copied without arithmetic.
KERNEL_TOL = dict(rtol=1e-5, atol=1e-5)


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


def load_tool(name: str):
    """``tools/<name>.py`` as a module (its ``main`` / ``build_cfg`` run
    in-process, faster than a subprocess)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'{name}_tool', osp.join(REPO_ROOT, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(name: str, *args):
    """``tools/<name>.py``'s ``main`` in this process (saves an interpreter
    start); the tools set the default scope, which is put back after."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return load_tool(name).main([str(a) for a in args])


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


def assert_same(a, b, what):
    """Nested tensors / containers / values equal, bitwise."""
    import torch
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), what
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for key in a:
            assert_same(a[key], b[key], f'{what}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{what}[{i}]')
    else:
        assert a == b, what


def assert_same_training_state(path_a, path_b):
    """Two checkpoints of the same computation (a resumed and an
    uninterrupted run): weights, optimiser state and old model bitwise."""
    import torch
    a = torch.load(path_a, weights_only=False)
    b = torch.load(path_b, weights_only=False)
    for key in ('state_dict', 'optimizer', 'grpo_old_model'):
        assert_same(a[key], b[key], key)
