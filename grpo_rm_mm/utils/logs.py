"""Reading MMEngine's scalar logs (``<work_dir>/<timestamp>/vis_data/
scalars.json``), shared by ``tools/analyze_logs.py`` and the study."""
import glob
import json
import os.path as osp
from typing import Dict, List

SCALARS = osp.join('vis_data', 'scalars.json')


def find_scalar_log(work_dir: str) -> str:
    """The newest run's ``scalars.json`` under ``work_dir`` (run folders are
    named by timestamp, so the last in sorted order is the newest); a file
    path is returned as it is."""
    if osp.isfile(work_dir):
        return work_dir
    found = sorted(glob.glob(osp.join(work_dir, '*', SCALARS)))
    if not found:
        raise FileNotFoundError(
            f'no MMEngine scalar log in {work_dir!r} (looked for '
            f'{osp.join(work_dir, "<timestamp>", SCALARS)})')
    return found[-1]


def read_scalar_log(path: str) -> Dict[str, List[dict]]:
    """Split a scalar log into training and validation records.

    MMEngine writes one JSON object a line. Training records carry ``lr``
    (and ``iter``; ``epoch`` too in epoch-based runs, where ``step`` is the
    iteration). Validation records have no ``lr``; their ``step`` is the
    iteration of iteration-based runs and the epoch of epoch-based ones.

    Returns:
        dict: ``train`` and ``val`` lists of records, in file order, and
        ``by_epoch`` (bool), whether the run was epoch-based.
    """
    train, val = [], []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{line_no} is not a JSON scalar '
                                 f'record: {err}') from None
            if not isinstance(record, dict) or 'step' not in record:
                raise ValueError(f'{path}:{line_no} has no "step": not an '
                                 'MMEngine scalar record')
            (train if 'lr' in record else val).append(record)
    by_epoch = any('epoch' in r for r in train)
    return dict(train=train, val=val, by_epoch=by_epoch)
