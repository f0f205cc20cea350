"""A training run never silently replaces another run's checkpoints, and
the files a killed checkpoint save left behind are cleaned up."""
import glob
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

#: what MMEngine's CheckpointHook writes into the work dir
CHECKPOINT_PATTERNS = ('*.pth', 'last_checkpoint')
#: the temporary files of grpo_rm_mm.compat.ReplaceOnClose:
#: ``<name>.<pid>.<8 hex digits>.tmp``
TMP_FILE = re.compile(r'^(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$')
#: how many files a message lists
LISTED = 8


class WorkDirInUseError(RuntimeError):
    """A fresh training run would overwrite another run's checkpoints."""


def checkpoint_dirs(cfg) -> List[str]:
    """Where the run's checkpoints go: the work dir, and
    ``<out_dir>/<work dir name>`` when the CheckpointHook has an
    ``out_dir``."""
    folders = [cfg.work_dir]
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir') if isinstance(hook, dict) else None
    if out_dir and '://' not in out_dir:
        folders.append(osp.join(out_dir, osp.basename(
            osp.normpath(cfg.work_dir))))
    return folders


def existing_checkpoints(folder: str) -> List[str]:
    """The checkpoint files (and ``last_checkpoint`` pointer) in a folder,
    sorted."""
    found = set()
    for pattern in CHECKPOINT_PATTERNS:
        found.update(p for p in glob.glob(osp.join(folder, pattern))
                     if osp.isfile(p))
    return sorted(found)


def _describe(paths: List[str]) -> str:
    names = []
    for path in paths[:LISTED]:
        name = osp.basename(path)
        if name == 'last_checkpoint':
            with open(path) as f:
                name += f' (-> {f.read().strip()})'
        names.append(name)
    more = len(paths) - LISTED
    return ', '.join(names) + (f' and {more} more' if more > 0 else '')


def check_fresh_work_dir(cfg, resume: bool, overwrite: bool) -> None:
    """Refuse to start a fresh run where another run's checkpoints are.

    MMEngine would overwrite them (``epoch_2.pth`` replaced, and
    ``last_checkpoint`` pointing into the new run), without a word.

    Args:
        cfg (Config): the run's config (``work_dir``, the checkpoint hook).
        resume (bool): the run continues the one in the work dir.
        overwrite (bool): the user asked to replace the checkpoints.
    """
    if resume or overwrite:
        return
    for folder in checkpoint_dirs(cfg):
        found = existing_checkpoints(folder)
        if found:
            raise WorkDirInUseError(
                f'{folder} already holds the checkpoints of another run: '
                f'{_describe(found)}. A new run would overwrite them. '
                'Continue that run with --resume, train into another '
                '--work-dir, or pass --overwrite to replace them')


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_tmp_files(
        folders: List[str]) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Remove the temporary files of checkpoint saves whose process is gone
    (a save killed before it could rename its file into place).

    Returns:
        tuple: ``(path, size in bytes)`` of every file removed, and the
        paths kept because their process still runs.
    """
    removed, kept = [], []
    for folder in folders:
        for path in sorted(glob.glob(osp.join(folder, '*.tmp'))):
            match = TMP_FILE.match(osp.basename(path))
            if match is None or not osp.isfile(path):
                continue
            if _alive(int(match['pid'])):
                kept.append(path)
                continue
            size = osp.getsize(path)
            try:
                os.remove(path)
            except FileNotFoundError:  # another rank was first
                continue
            removed.append((path, size))
    return removed, kept


def clean_stale_tmp_files(cfg, log=print) -> Optional[str]:
    """:func:`remove_stale_tmp_files` in the run's checkpoint folders, said
    with ``log``; returns the message (None when there was nothing)."""
    removed, kept = remove_stale_tmp_files(checkpoint_dirs(cfg))
    lines = []
    if removed:
        lines.append(
            f'removed {len(removed)} unfinished checkpoint file(s) that a '
            'killed save left behind: ' + ', '.join(
                f'{path} ({size / 1e6:.1f} MB)' for path, size in removed))
    if kept:
        lines.append('kept the temporary file(s) of a save still running: '
                     + ', '.join(kept))
    if not lines:
        return None
    message = '\n'.join(lines)
    log(message)
    return message


def prepare_work_dir(cfg, resume: bool, overwrite: bool) -> None:
    """What ``tools/train.py`` does with the work dir before training:
    :func:`check_fresh_work_dir` on every rank, then (on the first rank of
    a launch) :func:`clean_stale_tmp_files`, said on stdout (the run's
    logger does not exist yet)."""
    check_fresh_work_dir(cfg, resume, overwrite)
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if int(rank) == 0:
        clean_stale_tmp_files(
            cfg, lambda message: print(message, flush=True))
