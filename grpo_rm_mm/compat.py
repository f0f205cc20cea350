"""Every workaround the OpenMMLab stack needs on a recent torch, in one place.

The stack (MMEngine 0.10.7, MMCV 2.1, MMSegmentation 1.2.2, MMPretrain 1.2.0)
predates torch 2.6+. Each shim below first *detects* its problem and acts only
when the problem is present, so on a healthy install (full MMCV, a matching
torchvision, a torch that still loads pickles) this module changes nothing.
:func:`apply` is idempotent and runs when ``grpo_rm_mm`` is imported, before
``mmseg`` or ``mmpretrain`` is.

Shims (see ``shared/docs/dependencies.md`` for the measured failures):

1. ``torchvision_ops``: a CUDA-built torchvision next to a CPU torch cannot
   load its ``_C.so``; its Python code then fails on ``torchvision::nms``. We
   register the op schemas so ``import torchvision`` works (its compiled ops
   and image decoders stay unavailable; the stack decodes with OpenCV).
2. ``mmcv_ext``: mmcv-lite has no ``mmcv._ext``, yet MMSeg imports ``mmcv.ops``
   at module level. We install a stub ``mmcv._ext`` whose functions raise
   :class:`MissingCompiledOpError` naming the op and how to get full MMCV.
3. ``mmseg_mmcv_version``: MMSeg 1.2.2 asserts ``mmcv < 2.2.0`` on import. With
   MMCV 2.2.x we let the import pass (and warn) instead of aborting.
4. ``checkpoint_load``: torch >= 2.6 loads with ``weights_only=True`` and
   refuses MMEngine checkpoints (NumPy arrays, ``HistoryBuffer``), breaking
   ``--resume``, ``load_from`` and ``tools/test.py``. MMEngine's local-file
   loader is replaced by :func:`load_checkpoint_file`, which stays on the
   ``weights_only`` unpickler and allows just the classes MMEngine writes
   (with ``getattr`` restricted to ``HistoryBuffer`` statistics); anything
   else stays refused, by name.

One more workaround is applied by the tools, per run, since it depends on the
config: :func:`prepare_distributed` lets ``--launcher pytorch`` run on machines
without CUDA (MMEngine calls ``torch.cuda.set_device`` unconditionally).
"""
import importlib
import importlib.machinery
import importlib.util
import io
import os.path as osp
import re
import sys
import types
import warnings
from typing import Callable, Dict, List

import torch

MMCV_FULL_HINT = (
    'Install full MMCV instead of mmcv-lite, e.g. `pip uninstall -y mmcv-lite '
    '&& pip install -U openmim && mim install "mmcv>=2.1.0,<2.2.0"` (prebuilt '
    'for CUDA torch), or build it with `MMCV_WITH_OPS=1 pip install '
    '--no-build-isolation "mmcv==2.1.0"`.')


class MissingCompiledOpError(RuntimeError):
    """A compiled MMCV op was called while only mmcv-lite is installed."""


# ---------------------------------------------------------------- detection
def torchvision_ops_broken() -> bool:
    """True if torchvision is installed but its compiled ops cannot load."""
    if 'torchvision' in sys.modules:
        return False
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return False
    if _has_op('torchvision', 'nms'):
        return False
    folder = list(spec.submodule_search_locations)[0]
    # _C.so on Linux / macOS, _C.pyd on Windows
    libs = [osp.join(folder, '_C' + suffix)
            for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    lib = next((path for path in libs if osp.exists(path)), None)
    if lib is None:
        return True
    try:
        # Loading it is what torchvision does itself on import: harmless.
        torch.ops.load_library(lib)
    except (OSError, RuntimeError):
        return True
    return not _has_op('torchvision', 'nms')


def mmcv_ext_missing() -> bool:
    """True if MMCV is installed without its compiled extension."""
    if importlib.util.find_spec('mmcv') is None:
        return False
    if 'mmcv._ext' in sys.modules:
        return False
    return importlib.util.find_spec('mmcv._ext') is None


def mmseg_rejects_mmcv() -> bool:
    """True if MMSeg's import-time assertion would reject the MMCV found."""
    if 'mmseg' in sys.modules or importlib.util.find_spec('mmseg') is None:
        return False
    if importlib.util.find_spec('mmcv') is None:
        return False
    import mmcv
    return _version_tuple(mmcv.__version__) >= (2, 2, 0)


def checkpoint_load_refused() -> bool:
    """True if ``torch.load`` refuses a typical MMEngine checkpoint."""
    return _probe_checkpoint_load() is not None


# ---------------------------------------------------------------- shims
def _shim_torchvision_ops() -> None:
    lib = torch.library.Library('torchvision', 'DEF')
    for op in ('nms', 'qnms'):
        lib.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) '
                   '-> Tensor')
    _KEEP_ALIVE.append(lib)  # the schemas live as long as the Library object


def _missing_op(name: str) -> Callable:

    def raise_missing(*args, **kwargs):
        raise MissingCompiledOpError(
            f"MMCV op '{name}' needs MMCV's compiled extension (mmcv._ext), "
            f'which mmcv-lite does not have. {MMCV_FULL_HINT}')

    raise_missing.__name__ = name
    return raise_missing


def _shim_mmcv_ext() -> None:
    module = types.ModuleType('mmcv._ext')
    module.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', loader=None)
    module.__file__ = None
    module.GRPO_RM_MM_STUB = True

    def __getattr__(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _missing_op(name)

    module.__getattr__ = __getattr__
    sys.modules['mmcv._ext'] = module


def _shim_mmseg_mmcv_version() -> None:
    import mmcv
    real = mmcv.__version__
    warnings.warn(
        f'MMSegmentation 1.2.2 asserts mmcv<2.2.0 but mmcv=={real} is '
        'installed; importing it anyway. mmcv 2.1.x is the tested version.')
    mmcv.__version__ = '2.1.0'
    try:
        importlib.import_module('mmseg')
    finally:
        mmcv.__version__ = real


def _probe_checkpoint_load():
    """Save and reload the objects MMEngine puts in checkpoints.

    Returns:
        Exception | None: the error ``torch.load`` raised, or None if it loads.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    buf = io.BytesIO()
    torch.save({'hb': HistoryBuffer([1.0], [1]), 'arr': np.zeros((2, 2)),
                'f64': np.float64(1.0), 'i64': np.int64(3)}, buf)
    buf.seek(0)
    try:
        torch.load(buf)
    except Exception as err:  # pickle.UnpicklingError and friends
        return err
    return None


def _statistic_method(owner, name: str):
    """Stands in for ``getattr`` while unpickling MMEngine checkpoints.

    A ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; this resolves exactly those and
    nothing else, so a crafted file cannot reach ``__globals__`` and friends.
    """
    import pickle

    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed')


def mmengine_checkpoint_globals() -> list:
    """What ``torch.load(weights_only=True)`` must accept for MMEngine files:
    ``HistoryBuffer``, NumPy arrays / scalars / dtypes, and a ``getattr``
    restricted to :func:`_statistic_method`."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    dtypes = {type(np.dtype(t)) for t in np.sctypeDict.values()}
    return [HistoryBuffer, (_statistic_method, 'builtins.getattr'),
            multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
            *sorted(dtypes, key=repr)]


def _refused_globals(filename: str, err: Exception) -> List[str]:
    """The globals a refused checkpoint pickles, for the error message.

    torch lists them for zip files only; for a legacy (non-zip) file the
    unpickler stopped at the first one, which its message names.
    """
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except ValueError:  # "Expected input to be a checkpoint returned by ..."
        found = sorted(set(re.findall(r'GLOBAL ([\w.]+)', str(err))))
        return [f'{name} (legacy non-zip file: the first one found)'
                for name in found]


def load_checkpoint_file(filename: str, map_location=None):
    """Load a local checkpoint, MMEngine's own files included, safely.

    Always torch's ``weights_only`` unpickler: first with torch's defaults,
    then, if refused, with the classes MMEngine's Runner pickles
    (:func:`mmengine_checkpoint_globals`) also allowed. Nothing is ever
    loaded with ``weights_only=False``; anything else is refused by name.

    Args:
        filename (str): path of the checkpoint.
        map_location: as in :func:`torch.load`.

    Returns:
        dict: the loaded checkpoint.
    """
    import pickle
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError:
        pass
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        names = _refused_globals(filename, err)
        raise pickle.UnpicklingError(
            f'{filename} is refused: it pickles objects beyond tensors and '
            f'what MMEngine checkpoints hold (globals: {names}; {err}). Load '
            'it yourself with torch.load(weights_only=False) only if you '
            'trust it.') from None


def _shim_checkpoint_load() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_checkpoint_file, force=True)


def cpu_distributed_needed(launcher: str) -> bool:
    """True if a distributed launch would hit MMEngine's CUDA-only init."""
    return launcher == 'pytorch' and not torch.cuda.is_available()


def prepare_distributed(cfg) -> bool:
    """Let ``--launcher pytorch`` run on CPU-only machines (gloo backend).

    MMEngine's PyTorch launcher calls ``torch.cuda.set_device`` even without
    CUDA, and wraps the model with ``device_ids=[local_rank]``, which DDP
    refuses for a CPU module. Where CUDA is missing we start the gloo process
    group ourselves (the Runner then skips its own init) and give a
    ``model_wrapper_cfg`` without device ids (the same wrapper and options
    otherwise). A no-op when CUDA is present or the run is not distributed.

    Args:
        cfg (Config): the run's config (``launcher``, ``env_cfg``).

    Returns:
        bool: whether the workaround acted.
    """
    if not cpu_distributed_needed(cfg.get('launcher', 'none')):
        return False
    import torch.distributed as dist
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = \
        'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # CPU module: DDP refuses device ids
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    return True


def _has_op(namespace: str, name: str) -> bool:
    try:
        torch._C._get_schema(f'{namespace}::{name}', '')
    except RuntimeError:
        return False
    return True


def _version_tuple(version: str) -> tuple:
    parts = []
    for piece in version.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


_KEEP_ALIVE: list = []

#: name -> (problem detector, workaround); applied in this order.
SHIMS: Dict[str, tuple] = {
    'torchvision_ops': (torchvision_ops_broken, _shim_torchvision_ops),
    'mmcv_ext': (mmcv_ext_missing, _shim_mmcv_ext),
    'mmseg_mmcv_version': (mmseg_rejects_mmcv, _shim_mmseg_mmcv_version),
    'checkpoint_load': (checkpoint_load_refused, _shim_checkpoint_load),
}

#: names of the shims that found their problem and acted in this process.
APPLIED: List[str] = []


def apply() -> List[str]:
    """Detect each known problem and apply its workaround where present.

    Returns:
        list[str]: the shims applied so far in this process.
    """
    for name, (detect, shim) in SHIMS.items():
        if name not in APPLIED and detect():
            shim()
            APPLIED.append(name)
    return list(APPLIED)
