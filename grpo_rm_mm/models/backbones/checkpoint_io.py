"""Read a checkpoint file whatever its container: torch or safetensors.

Backbone weights come as ``torch.save`` files (Meta's ``.pth``, timm's
``.pth``, transformers' ``pytorch_model.bin``, MMEngine checkpoints) or as
``.safetensors`` (timm's and transformers' hub files). :func:`load_checkpoint_
file` tells them apart by their first bytes, reads safetensors with the
``safetensors`` package (so the torch version does not matter) and everything
else with ``torch.load`` under the project's safe rules
(:func:`grpo_rm_mm.compat.load_checkpoint_file`: the ``weights_only``
unpickler, MMEngine's own classes allowed). A missing, empty, truncated or
text file (a Git LFS pointer, an HTML error page) is an error naming it.

Key names are not this module's business: see ``dinov2_checkpoint.py``.
"""
import json
import os
import os.path as osp
import pickle
import zipfile
from typing import List, Optional

from ... import compat

SAFETENSORS_SUFFIX = '.safetensors'
#: what a folder is searched for, in this order (transformers' file names)
FOLDER_FILES = ('model.safetensors', 'model.safetensors.index.json',
                'pytorch_model.bin', 'pytorch_model.bin.index.json')
#: a safetensors header larger than this is not a header (the format's
#: reference implementation refuses 100 MB too)
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: how torch.save files begin: a zip archive (the default since PyTorch 1.6)
#: or the legacy format's pickled magic number
ZIP_MAGIC = b'PK\x03\x04'
LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


class CheckpointFileError(ValueError):
    """A checkpoint file exists but cannot be read as one."""


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Load a checkpoint file of any container format into a dict.

    Args:
        path (str): a ``.pth`` / ``.bin`` / ``.pt`` file written by
            ``torch.save``, a ``.safetensors`` file, a transformers
            ``*.index.json`` of shards, or a folder holding one of
            :data:`FOLDER_FILES` (a transformers model folder).
        map_location: where tensors go, as in :func:`torch.load`; for
            safetensors a device (``'cpu'``, ``'cuda:0'``, ``torch.device``),
            anything else loads to the CPU.

    Returns:
        dict: what the file holds (a safetensors file: name -> tensor).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: empty, truncated, damaged or text files.
        pickle.UnpicklingError: a pickle holding objects beyond tensors and
            MMEngine's checkpoint contents (see :mod:`grpo_rm_mm.compat`).
    """
    path = osp.expanduser(os.fspath(path))
    if osp.isdir(path):
        path = _file_in_folder(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if path.endswith('.index.json'):
        return _load_shards(path, map_location)
    if check_checkpoint_file(path) == 'safetensors':
        return _load_safetensors(path, map_location)
    try:
        return compat.load_checkpoint_file(path, map_location=map_location)
    except pickle.UnpicklingError as err:
        if 'refused' in str(err):  # objects beyond what we allow: say so
            raise
        raise CheckpointFileError(
            f'checkpoint {path} is not a torch checkpoint or is damaged: '
            f'{err}') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointFileError(
            f'checkpoint {path} cannot be read: it is truncated or damaged '
            f'({type(err).__name__}: {err}). Download or copy it again.'
        ) from None


def check_checkpoint_file(path: Optional[str]) -> Optional[str]:
    """Refuse a local file that cannot be a complete checkpoint, naming it,
    from its first bytes and (a zip file) its directory, without reading
    the weights.

    ``torch.load`` answers a text file with ``KeyError: 101`` and a file
    cut short with ``OSError: [Errno 22]`` or a zip error; the tools call
    this before MMEngine loads a checkpoint. Nothing is checked for an
    empty ``path``, a URL or a missing file (the loader reports those), a
    legacy (pre-zip) ``torch.save`` file beyond its first bytes, or a
    safetensors file beyond its header's start.

    Returns:
        str | None: 'safetensors' or 'torch' for a checked file.

    Raises:
        CheckpointFileError: empty, text, truncated or foreign files.
    """
    if not path or '://' in path or not osp.isfile(path):
        return None
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointFileError(f'checkpoint {path} is empty (0 bytes)')
    with open(path, 'rb') as f:
        head = f.read(64)
    if path.endswith(SAFETENSORS_SUFFIX) or _looks_like_safetensors(
            head, size):
        return 'safetensors'
    if _looks_like_text(head):
        raise CheckpointFileError(_text_message(path, size))
    if head.startswith(LEGACY_MAGIC):
        return 'torch'
    if not head.startswith(ZIP_MAGIC):
        raise CheckpointFileError(
            f'checkpoint {path} is not a PyTorch checkpoint ({size} bytes '
            f'beginning {head[:16]!r})')
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointFileError(
            f'checkpoint {path} is truncated or damaged: {size} bytes whose '
            f'zip directory cannot be read ({err}), as when a copy or a save '
            'did not finish. Copy it again, or use another checkpoint (e.g. '
            'an earlier epoch_N.pth / iter_N.pth)') from None
    return 'torch'


def _file_in_folder(folder: str) -> str:
    for name in FOLDER_FILES:
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    raise FileNotFoundError(
        f'checkpoint folder {folder} holds none of {list(FOLDER_FILES)}')


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file starts with its JSON header's length (8 bytes,
    little endian) and then the header's opening brace."""
    if len(head) < 9 or head[8:9] != b'{':
        return False
    return 0 < int.from_bytes(head[:8], 'little') <= MAX_HEADER_BYTES


def _looks_like_text(head: bytes) -> bool:
    """Printable ASCII / UTF-8 where torch files start with a zip or
    pickle signature (both have bytes outside that range)."""
    if head.startswith((b'PK', b'\x80')):
        return False
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in '\r\n\t' for ch in text)


def _text_message(path: str, size: int) -> str:
    with open(path, 'rb') as f:
        first_line = f.readline(200).decode('utf-8', 'replace')
    hint = ''
    if first_line.startswith('version https://git-lfs'):
        hint = (' It is a Git LFS pointer, not the weights: fetch them with '
                '`git lfs pull` in its repository.')
    elif first_line.lower().startswith(('<!doctype', '<html')):
        hint = ' It is a web page (a failed download?).'
    return (f'checkpoint {path} is a text file, not weights ({size} bytes, '
            f'first line {first_line[:80]!r}).{hint}')


def _device(map_location) -> str:
    import torch
    if isinstance(map_location, (str, torch.device)):
        return str(map_location)
    return 'cpu'


def _load_safetensors(path: str, map_location) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path, device=_device(map_location))
    except SafetensorError as err:
        raise CheckpointFileError(
            f'checkpoint {path} cannot be read as safetensors: it is '
            f'truncated or damaged ({err}). Download or copy it again.'
        ) from None


def _load_shards(index: str, map_location) -> dict:
    """transformers' sharded files: ``weight_map`` names each tensor's
    shard, relative to the index's folder."""
    try:
        with open(index) as f:
            weight_map = json.load(f)['weight_map']
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointFileError(
            f'{index} is not a transformers shard index (a JSON object with '
            f'a "weight_map"): {err}') from None
    shards: List[str] = sorted(set(weight_map.values()))
    merged = {}
    for shard in shards:
        merged.update(
            load_checkpoint_file(
                osp.join(osp.dirname(index), shard), map_location))
    missing = sorted(set(weight_map) - set(merged))
    if missing:
        raise CheckpointFileError(
            f'{index} lists {len(missing)} tensors its shards do not hold, '
            f'e.g. {missing[:3]}')
    return merged
