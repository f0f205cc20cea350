"""tools/train.py never silently replaces another run's checkpoints, and
removes what a killed checkpoint save left behind."""
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from conftest import run_in_process as run
from test_cls_class_list import CLS_CONFIG, options


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from grpo_rm_mm.datasets import make_synthetic_cls
    return make_synthetic_cls(str(tmp_path_factory.mktemp('cls')), 4, 2)


def earlier_run(work_dir):
    """What a finished run leaves: checkpoints and the pointer to the last."""
    work_dir.mkdir()
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        (work_dir / name).write_bytes(b'earlier run')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))


def killed_save(work_dir, name='epoch_2.pth'):
    """A process killed while ReplaceOnClose wrote a checkpoint: its
    temporary file stays, its process is gone."""
    # compat.py alone (the package would import MMSeg and MMPretrain)
    code = ('import importlib.util, os\n'
            'spec = importlib.util.spec_from_file_location("compat", '
            f'{os.path.join(REPO_ROOT, "grpo_rm_mm", "compat.py")!r})\n'
            'c = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(c)\n'
            f"f = c.ReplaceOnClose({str(work_dir / name)!r}, 'wb')\n"
            "f.write(b'half a checkpoint'); f.flush()\n"
            'os.kill(os.getpid(), 9)\n')
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=REPO_ROOT)
    assert proc.wait() == -9
    [tmp] = [p for p in work_dir.iterdir() if p.name.endswith('.tmp')]
    assert tmp.name.startswith(f'{name}.{proc.pid}.')
    return tmp


def train_options(data):
    return ['--cfg-options', *options(data), 'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=1']


def test_fresh_run_in_a_work_dir_with_checkpoints_stops(data, tmp_path):
    from grpo_rm_mm.utils import WorkDirInUseError
    work_dir = tmp_path / 'work'
    earlier_run(work_dir)
    with pytest.raises(WorkDirInUseError) as err:
        run('train', CLS_CONFIG, '--work-dir', work_dir,
            *train_options(data))
    message = str(err.value)
    assert f'{work_dir} already holds the checkpoints of another run: ' \
        f'epoch_1.pth, epoch_2.pth, last_checkpoint (-> {work_dir}/' \
        'epoch_2.pth)' in message
    for way in ('--resume', '--work-dir', '--overwrite'):
        assert way in message
    # nothing was written: no run folder, the checkpoints as they were
    assert sorted(p.name for p in work_dir.iterdir()) == [
        'epoch_1.pth', 'epoch_2.pth', 'last_checkpoint']
    assert (work_dir / 'epoch_2.pth').read_bytes() == b'earlier run'


def test_overwrite_replaces_them_and_stale_tmp_files_go(data, tmp_path,
                                                        capsys):
    work_dir = tmp_path / 'work'
    earlier_run(work_dir)
    stale = killed_save(work_dir)
    # a save of a process that still runs (this one) is left alone
    live = work_dir / f'epoch_3.pth.{os.getpid()}.0123abcd.tmp'
    live.write_bytes(b'being written')
    run('train', CLS_CONFIG, '--work-dir', work_dir, '--overwrite',
        *train_options(data))
    out = capsys.readouterr().out
    assert ('removed 1 unfinished checkpoint file(s) that a killed save left'
            f' behind: {stale} (0.0 MB)') in out
    assert not stale.exists() and live.exists()
    assert (work_dir / 'epoch_1.pth').read_bytes() != b'earlier run'
    assert (work_dir / 'last_checkpoint').read_text().endswith(
        'epoch_1.pth')
