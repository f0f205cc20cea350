"""Reading a weights file (.pth / .bin / .safetensors) with clear errors."""
import os.path as osp

#: what the files this reads start with
_ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default (zip) format
_PICKLE_MAGIC = b'\x80'  # torch.save's legacy format: a pickle


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Load a checkpoint file, naming the file in every error.

    ``.safetensors`` files are read with the ``safetensors`` package;
    anything else with torch's ``weights_only`` loader (through
    :func:`grpo_rm_mm.compat.load_checkpoint_file`, which also accepts
    MMEngine's own checkpoints).

    Args:
        path (str): The file.
        map_location: Where tensors go, as in :func:`torch.load`.

    Returns:
        dict: what the file holds.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, empty, or not a checkpoint (e.g.
            a text file such as a Git LFS pointer).
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path} does not exist')
    if path.endswith('.safetensors'):
        return _load_safetensors(path, map_location)
    with open(path, 'rb') as f:
        head = f.read(4)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise ValueError(
            f'{path} is not a PyTorch checkpoint: it starts with {head!r} '
            '(a text file, e.g. a Git LFS pointer, or an unfinished '
            'download?)')
    from grpo_rm_mm.compat import load_checkpoint_file as torch_load
    try:
        return torch_load(path, map_location=map_location)
    except (RuntimeError, EOFError) as err:
        # the zip reader's "failed finding central directory", or the
        # pickle ending early: the file stops before its end
        raise ValueError(
            f'{path} is truncated or corrupt ({type(err).__name__}: '
            f'{str(err)[:200]})') from None


def _load_safetensors(path: str, map_location) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path, device=str(map_location))
    except SafetensorError as err:
        raise ValueError(f'{path} is truncated or not a safetensors file '
                         f'({err})') from None
