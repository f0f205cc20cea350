"""Reading MMEngine's scalar logs (``<work_dir>/<timestamp>/vis_data/
scalars.json``), shared by ``tools/analyze_logs.py`` and the study."""
import ast
import glob
import json
import math
import os.path as osp
from typing import Dict, List, Optional

SCALARS = osp.join('vis_data', 'scalars.json')


def find_scalar_logs(work_dir: str) -> List[str]:
    """Every run's ``scalars.json`` under ``work_dir``, oldest first (run
    folders are named by their start time, so sorted order is time order);
    a file path is returned alone."""
    if osp.isfile(work_dir):
        return [work_dir]
    found = sorted(glob.glob(osp.join(work_dir, '*', SCALARS)))
    if not found:
        raise FileNotFoundError(
            f'no MMEngine scalar log in {work_dir!r} (looked for '
            f'{osp.join(work_dir, "<timestamp>", SCALARS)})')
    return found


def find_scalar_log(work_dir: str) -> str:
    """The newest run's ``scalars.json`` under ``work_dir`` (see
    :func:`find_scalar_logs`)."""
    return find_scalar_logs(work_dir)[-1]


def read_scalar_log(path: str) -> Dict[str, List[dict]]:
    """Split a scalar log into training and validation records.

    MMEngine writes one JSON object a line. Training records carry ``lr``
    (and ``iter``; ``epoch`` too in epoch-based runs, where ``step`` is the
    iteration). Validation records have no ``lr``; their ``step`` is the
    iteration of iteration-based runs and the epoch of epoch-based ones.

    A last line that is cut short (no newline, no complete JSON object: the
    run was killed while writing it) ends the reading; any other line that
    is not a record is an error.

    Returns:
        dict: ``train`` and ``val`` lists of records, in file order,
        ``by_epoch`` (bool), whether the run was epoch-based, and
        ``half_written`` (int | None), the line number of a cut-short last
        record.
    """
    train, val = [], []
    half_written = None
    with open(path) as f:
        lines = f.read().split('\n')
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if line_no == len(lines):  # the last line, without its newline
                half_written = line_no
                break
            raise ValueError(f'{path}:{line_no} is not a JSON scalar '
                             f'record: {err}') from None
        if not isinstance(record, dict) or 'step' not in record:
            raise ValueError(f'{path}:{line_no} has no "step": not an '
                             'MMEngine scalar record')
        (train if 'lr' in record else val).append(record)
    by_epoch = any('epoch' in r for r in train)
    return dict(train=train, val=val, by_epoch=by_epoch,
                half_written=half_written)


def planned_length(scalars_path: str) -> Optional[tuple]:
    """``('iter', max_iters)`` or ``('epoch', max_epochs)`` of a run, read
    from the config MMEngine saved next to its scalar log (None if there is
    none or it does not say)."""
    path = osp.join(osp.dirname(scalars_path), 'config.py')
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            tree = ast.parse(f.read())
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == 'train_cfg' for t in node.targets) \
                and isinstance(node.value, ast.Call):
            for kw in node.value.keywords:
                if kw.arg in ('max_iters', 'max_epochs') and isinstance(
                        kw.value, ast.Constant):
                    return kw.arg[4:-1], kw.value.value
    return None


def _run_name(path: str) -> str:
    return osp.basename(osp.dirname(osp.dirname(path))) or path


def _steps(records: List[dict]) -> str:
    if not records:
        return 'no training record'
    return f"iterations {records[0]['step']}-{records[-1]['step']}"


def _stopped_early(path: str, log: dict) -> Optional[str]:
    """Says where a run stopped if it ended before its schedule did."""
    plan, train = planned_length(path), log['train']
    if plan is None or not train:
        return None
    unit, planned = plan
    steps = [r['step'] for r in train]
    interval = min((b - a for a, b in zip(steps, steps[1:])), default=1)
    total = planned
    if unit == 'epoch':  # epoch e holds iterations ((e - 1) n, e n]
        per_epoch = [math.ceil(r['step'] / r['epoch']) for r in train
                     if r.get('epoch')]
        if not per_epoch:
            return None
        total = planned * max(per_epoch)
    if steps[-1] + interval <= total:
        return (f'stopped at iteration {steps[-1]} of {total}' +
                (f' ({planned} epochs)' if unit == 'epoch' else ''))
    return None


def read_run_logs(source: str) -> dict:
    """All runs of a work dir as one log: a resumed run's parts joined.

    The runs are read in time order; where a later run logged the same step
    as an earlier one (a run resumed from a checkpoint before the point the
    earlier one reached), the later record wins. A run killed while writing
    is read up to its last complete record.

    Args:
        source (str): a work dir, or one ``scalars.json``.

    Returns:
        dict: like :func:`read_scalar_log` (``train`` and ``val`` sorted by
        step), plus ``runs`` (the files read) and ``notes`` (one line per
        run that was joined, stopped early or half written).
    """
    paths = find_scalar_logs(source)
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    notes, by_epoch = [], False
    for path in paths:
        log = read_scalar_log(path)
        by_epoch = by_epoch or log['by_epoch']
        overlap = [r['step'] for r in log['train'] if r['step'] in train]
        train.update((r['step'], r) for r in log['train'])
        val.update((r['step'], r) for r in log['val'])
        facts = [_steps(log['train'])]
        if overlap:
            facts.append(f'replacing the earlier records of iterations '
                         f'{overlap[0]}-{overlap[-1]}')
        stopped = _stopped_early(path, log)
        if stopped:
            facts.append(stopped + ' (killed, or still running)')
        if log['half_written']:
            facts.append(f"its last record (line {log['half_written']}) is "
                         'half written: read up to the one before')
        if len(paths) > 1 or stopped or log['half_written']:
            notes.append(f'{_run_name(path)}: ' + '; '.join(facts))
    return dict(train=[train[k] for k in sorted(train)],
                val=[val[k] for k in sorted(val)], by_epoch=by_epoch,
                runs=paths, notes=notes)
