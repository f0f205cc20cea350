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

Shims 1 and 2 also act for scripts that import MMSeg or MMPretrain *before*
``grpo_rm_mm`` (MMSeg's own tools, a user's script): see
:func:`import_hook_spec`.
3. ``mmseg_mmcv_version``: MMSeg 1.2.2 asserts ``mmcv < 2.2.0`` on import. With
   MMCV 2.2.x we let the import pass (and warn) instead of aborting.
4. ``checkpoint_load``: torch >= 2.6 loads with ``weights_only=True`` and
   refuses MMEngine checkpoints (NumPy arrays, ``HistoryBuffer``), breaking
   ``--resume``, ``load_from`` and ``tools/test.py``. MMEngine's local-file
   loader is replaced by :func:`load_checkpoint_file`, which stays on the
   ``weights_only`` unpickler and allows just the classes MMEngine writes
   (with ``getattr`` restricted to ``HistoryBuffer`` statistics); anything
   else stays refused, by name.

5. ``atomic_checkpoint_writes``: MMEngine writes checkpoints (through its
   local file backend) and the ``last_checkpoint`` pointer (with a plain
   ``open(..., 'w')`` in ``CheckpointHook``) in place, so a ``kill -9``
   during a save leaves a half-written ``iter_N.pth`` under a valid name.
   Both now write to a temporary name in the same folder and rename it into
   place (:class:`ReplaceOnClose`): a file under its final name is complete.

6. ``mmseg_inferencer_names``: MMSeg's ``MMSegInferencer`` finds the image
   and mask loaders of a test pipeline by their exact type name, so it
   refuses pipelines whose loaders are subclasses (this project's checked
   loaders): ``ValueError: LoadImageFromFile is not found in the test
   pipeline``. Its lookup then also accepts registered subclasses.

7. ``config_long_strings``: ``Config.pretty_text`` (the config MMEngine's
   ``Runner`` logs and dumps at every start, and the tools print) formats
   with yapf, whose line-splitting search takes seconds when a string
   literal cannot fit in a line (mmcv#2466, yapf#39): 0.08 s for the demo
   config with ``data/...`` paths, 1.9 s with an 89-character data root,
   twice per run. yapf now sees short stand-ins for such strings, which are
   put back afterwards; configs without them are formatted as before.

One more workaround is applied by the tools, per run, since it depends on the
config: :func:`prepare_distributed` lets ``--launcher pytorch`` and
``--launcher slurm`` run on machines without CUDA (MMEngine calls
``torch.cuda.set_device`` unconditionally).
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import os.path as osp
import re
import sys
import types
import uuid
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


def mmseg_inferencer_needs_exact_names() -> bool:
    """True if ``MMSegInferencer`` misses a loader that subclasses
    ``LoadImageFromFile`` (it compares type names)."""
    if importlib.util.find_spec('mmseg') is None:
        return False
    from mmcv.transforms import LoadImageFromFile
    from mmseg.apis import MMSegInferencer
    probe = type('SubclassProbe', (LoadImageFromFile, ), {})
    return MMSegInferencer._get_transform_idx(
        None, [dict(type=probe)], 'LoadImageFromFile') == -1


def checkpoint_load_refused() -> bool:
    """True if ``torch.load`` refuses a typical MMEngine checkpoint."""
    return _probe_checkpoint_load() is not None


def _written_in_place(path: str, write: Callable[[str], None]) -> bool:
    """True if ``write(path)`` overwrites the existing file's inode (in
    place) instead of renaming a new file over it."""
    with open(path, 'w') as f:
        f.write('old')
    inode = os.stat(path).st_ino
    write(path)
    return os.stat(path).st_ino == inode


def _pointer_write(work_dir: str) -> Callable[[str], None]:
    """Makes ``CheckpointHook`` write its ``last_checkpoint`` pointer into
    ``work_dir``, with a runner stub that saves nothing."""
    from mmengine.fileio import get_file_backend
    from mmengine.hooks import CheckpointHook
    hook = CheckpointHook(interval=1, by_epoch=False)
    hook.out_dir, hook.filename_tmpl = work_dir, 'probe_{}.pth'
    hook.file_backend = get_file_backend(work_dir)
    runner = types.SimpleNamespace(
        work_dir=work_dir,
        message_hub=types.SimpleNamespace(update_info=lambda *args: None),
        save_checkpoint=lambda *args, **kwargs: None)
    return lambda path: hook._save_checkpoint_with_step(runner, 1, {})


def checkpoint_writes_in_place() -> bool:
    """True if MMEngine writes a checkpoint file or the ``last_checkpoint``
    pointer in place (found by writing both into a temporary folder)."""
    import tempfile

    from mmengine.fileio import LocalBackend
    try:
        with tempfile.TemporaryDirectory() as folder:
            if _written_in_place(
                    osp.join(folder, 'iter_1.pth'),
                    lambda path: LocalBackend().put(b'new', path)):
                return True
            return _written_in_place(
                osp.join(folder, 'last_checkpoint'), _pointer_write(folder))
    except (OSError, AttributeError, TypeError):
        # no writable temp folder, or another CheckpointHook layout: the
        # problem cannot be shown, so nothing is patched
        return False


def config_formatter_searches_long_strings() -> bool:
    """True if MMEngine formats configs with yapf's ``FormatCode`` (whose
    search is slow on strings longer than a line)."""
    try:
        from mmengine.config import config as config_module
        from yapf.yapflib.yapf_api import FormatCode
    except ImportError:
        return False
    return getattr(config_module, 'FormatCode', None) is FormatCode


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


def _mmcv_ext_stub() -> types.ModuleType:
    """The stand-in ``mmcv._ext``: every op raises
    :class:`MissingCompiledOpError` when called."""
    module = types.ModuleType('mmcv._ext')
    module.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', loader=None)
    module.__file__ = None
    module.GRPO_RM_MM_STUB = True

    def __getattr__(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _missing_op(name)

    module.__getattr__ = __getattr__
    return module


def _shim_mmcv_ext() -> None:
    sys.modules['mmcv._ext'] = _mmcv_ext_stub()


class _MMCVExtStubLoader(importlib.abc.Loader):
    """Gives the import system :func:`_mmcv_ext_stub` (start-up hook)."""

    def create_module(self, spec):
        return _mmcv_ext_stub()

    def exec_module(self, module) -> None:
        pass


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


def _transform_index_by_class(self, pipeline_cfg, name: str) -> int:
    """``MMSegInferencer._get_transform_idx`` that also finds registered
    subclasses of the transform ``name`` (the first match)."""
    from mmseg.registry import TRANSFORMS
    wanted = TRANSFORMS.get(name)
    for i, transform in enumerate(pipeline_cfg):
        kind = transform['type']
        if kind == name:
            return i
        if isinstance(kind, str):
            kind = TRANSFORMS.get(kind)
        if (wanted is not None and isinstance(kind, type)
                and issubclass(kind, wanted)):
            return i
    return -1


def _shim_mmseg_inferencer_names() -> None:
    from mmseg.apis import MMSegInferencer
    MMSegInferencer._get_transform_idx = _transform_index_by_class


#: yapf's column limit in MMEngine's style (pep8)
_CONFIG_COLUMN_LIMIT = 79


def _string_spans(text: str) -> List[tuple]:
    """(start, end) offsets of the one-line string literals in ``text``."""
    import tokenize
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and tok.start[0] == tok.end[0]:
                row = starts[tok.start[0] - 1]
                spans.append((row + tok.start[1], row + tok.end[1]))
    except (tokenize.TokenError, SyntaxError):
        return []   # yapf will report the syntax error itself
    return spans


def format_code_with_long_strings(format_code: Callable) -> Callable:
    """Wraps yapf's ``FormatCode``: when a line is longer than the column
    limit, the one-line string literals longer than a stand-in go to yapf
    as short stand-ins (laid out as short strings) and come back verbatim;
    other texts go to yapf unchanged."""

    def formatted(text: str, *args, **kwargs):
        if all(len(line) <= _CONFIG_COLUMN_LIMIT
               for line in text.splitlines()):
            return format_code(text, *args, **kwargs)
        marker = f'grpo_rm_mm_{uuid.uuid4().hex[:8]}_'
        pieces, originals, last = [], {}, 0
        for start, end in _string_spans(text):
            if end - start <= len(marker) + 8:
                continue
            stand_in = f"'{marker}{len(originals)}'"
            originals[stand_in] = text[start:end]
            pieces += [text[last:start], stand_in]
            last = end
        if not originals:
            return format_code(text, *args, **kwargs)
        out, changed = format_code(''.join(pieces) + text[last:], *args,
                                   **kwargs)
        for stand_in, original in originals.items():
            out = out.replace(stand_in, original)
        return out, changed

    formatted.__wrapped__ = format_code
    return formatted


def _shim_config_long_strings() -> None:
    from mmengine.config import config as config_module
    config_module.FormatCode = format_code_with_long_strings(
        config_module.FormatCode)


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


class ReplaceOnClose:
    """A file opened for writing under a temporary name in the target's
    folder, renamed over the target when closed.

    Until then the target keeps its old content (or does not exist), so a
    process killed mid-write never leaves a partial file under the final
    name; at worst a ``<name>.<pid>.<random>.tmp`` file is left behind.
    The data is flushed to disk before the rename. Leaving a ``with``
    block with an exception discards the temporary file.

    Args:
        path (str | PathLike): the file to write (a symlink is written
            through, as ``open`` would).
        mode (str): a writing mode, ``'w'`` or ``'wb'``.
        **kwargs: further arguments of :func:`open` (``encoding``...).
    """

    def __init__(self, path, mode: str = 'w', **kwargs):
        self.path = osp.realpath(os.fspath(path))
        self.tmp = (f'{self.path}.{os.getpid()}.'
                    f'{uuid.uuid4().hex[:8]}.tmp')
        # 'x': a new file, permissions from the umask like open(..., 'w')
        self._file = open(self.tmp, mode.replace('w', 'x'), **kwargs)

    def __getattr__(self, name):
        if name == '_file':  # open() failed in __init__
            raise AttributeError(name)
        return getattr(self._file, name)

    def __enter__(self) -> 'ReplaceOnClose':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self._file.close()
        if osp.exists(self.tmp):
            os.remove(self.tmp)


def _open_replacing(file, mode: str = 'r', *args, **kwargs):
    """``open`` for ``CheckpointHook``'s module: writes replace on close."""
    if mode in ('w', 'wb') and not args and isinstance(
            file, (str, os.PathLike)):
        return ReplaceOnClose(file, mode, **kwargs)
    return open(file, mode, *args, **kwargs)


def _put_replacing(self, obj, filepath) -> None:
    os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
    with ReplaceOnClose(filepath, 'wb') as f:
        f.write(obj)


def _put_text_replacing(self, obj, filepath, encoding: str = 'utf-8'):
    os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
    with ReplaceOnClose(filepath, 'w', encoding=encoding) as f:
        f.write(obj)


def _shim_atomic_checkpoint_writes() -> None:
    from mmengine.fileio import LocalBackend
    from mmengine.hooks import checkpoint_hook
    LocalBackend.put = _put_replacing
    LocalBackend.put_text = _put_text_replacing
    # the hook writes last_checkpoint with the builtin open: give its module
    # one that replaces on close (only write modes change)
    checkpoint_hook.open = _open_replacing


def cpu_distributed_needed(launcher: str) -> bool:
    """True if a distributed launch would hit MMEngine's CUDA-only init."""
    return launcher in ('pytorch', 'slurm') and not torch.cuda.is_available()


def _slurm_to_env_vars(port=None) -> None:
    """Set torch's ``env://`` variables from SLURM's, as MMEngine's slurm
    launcher does before it selects a CUDA device (which we skip).

    Args:
        port (int, optional): ``env_cfg.dist_cfg.port``; else MASTER_PORT,
            else 29500.
    """
    import subprocess
    env = os.environ
    if 'MASTER_ADDR' not in env:
        env['MASTER_ADDR'] = subprocess.getoutput(
            f"scontrol show hostname {env['SLURM_NODELIST']} | head -n1")
    env['MASTER_PORT'] = str(port or env.get('MASTER_PORT', 29500))
    env['WORLD_SIZE'] = env['SLURM_NTASKS']
    env['RANK'] = env['SLURM_PROCID']
    env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')


def prepare_distributed(cfg) -> bool:
    """Let ``--launcher pytorch|slurm`` run on CPU-only machines (gloo).

    MMEngine's PyTorch and SLURM launchers call ``torch.cuda.set_device``
    even without CUDA, and wrap the model with ``device_ids=[local_rank]``,
    which DDP refuses for a CPU module. Where CUDA is missing we start the
    gloo process group ourselves (for SLURM from its variables, as MMEngine
    does; the Runner then skips its own init) and give a
    ``model_wrapper_cfg`` without device ids (the same wrapper and options
    otherwise). A no-op when CUDA is present or the run is not distributed.

    Args:
        cfg (Config): the run's config (``launcher``, ``env_cfg``).

    Returns:
        bool: whether the workaround acted.
    """
    launcher = cfg.get('launcher', 'none')
    if not cpu_distributed_needed(launcher):
        return False
    import torch.distributed as dist
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # CPU module: DDP refuses device ids
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not dist.is_initialized():
        if launcher == 'slurm':
            _slurm_to_env_vars(dist_cfg.get('port'))
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
    'mmseg_inferencer_names': (mmseg_inferencer_needs_exact_names,
                               _shim_mmseg_inferencer_names),
    'checkpoint_load': (checkpoint_load_refused, _shim_checkpoint_load),
    'atomic_checkpoint_writes': (checkpoint_writes_in_place,
                                 _shim_atomic_checkpoint_writes),
    'config_long_strings': (config_formatter_searches_long_strings,
                            _shim_config_long_strings),
}

#: names of the shims that found their problem and acted in this process.
APPLIED: List[str] = []


def _apply_one(name: str) -> None:
    detect, shim = SHIMS[name]
    if name not in APPLIED and detect():
        shim()
        APPLIED.append(name)


def apply() -> List[str]:
    """Detect each known problem and apply its workaround where present.

    Returns:
        list[str]: the shims applied so far in this process.
    """
    for name in SHIMS:
        _apply_one(name)
    return list(APPLIED)


#: what the start-up import hook watches (see :func:`import_hook_spec`)
IMPORT_HOOK_MODULES = ('torchvision', 'mmcv._ext')


def import_hook_spec(fullname: str, path=None):
    """The ``torchvision_ops`` and ``mmcv_ext`` shims for scripts that
    import MMSeg / MMPretrain before ``grpo_rm_mm``.

    The package installs a start-up hook (``_grpo_rm_mm_import_hook``, run
    from a ``.pth`` file in site-packages) that asks this function about
    the imports of :data:`IMPORT_HOOK_MODULES` only; it loads this module
    on its own (nothing of the package is imported). Before ``torchvision``
    is imported, its broken ops are fixed as :func:`apply` would; when
    ``mmcv._ext`` is imported and no real one exists, the import gets the
    stand-in. Acting only where the problem is present, like
    :func:`apply`; ``GRPO_RM_MM_NO_IMPORT_HOOK=1`` turns the hook off.

    Returns:
        ModuleSpec | None: the stand-in's spec, or None to let the import
        go on as usual.
    """
    if fullname == 'torchvision':
        _apply_one('torchvision_ops')
    elif fullname == 'mmcv._ext' and mmcv_ext_missing():
        if 'mmcv_ext' not in APPLIED:
            APPLIED.append('mmcv_ext')
        return importlib.util.spec_from_loader(fullname,
                                               _MMCVExtStubLoader())
    return None
