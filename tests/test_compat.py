"""Each compatibility shim: its detector matches reality, and it works."""
import argparse
import io
import os.path as osp
import pickle
import textwrap

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, run_tool

from grpo_rm_mm import compat

# Loads compat.py by path in a fresh interpreter, so nothing is applied yet.
LOAD_COMPAT = textwrap.dedent(f'''
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location(
        'compat_alone', '{REPO_ROOT}/grpo_rm_mm/compat.py')
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
''')


def run_python(code: str):
    """The stock stack: the start-up import hook (which applies shims 1 and
    2 on its own, see the import-hook tests below) is turned off."""
    return run_tool('-c', LOAD_COMPAT + textwrap.dedent(code),
                    env={'GRPO_RM_MM_NO_IMPORT_HOOK': '1'})


def test_torchvision_detector_matches_a_plain_import():
    probe = run_python('''
        broken = compat.torchvision_ops_broken()
        try:
            import torchvision
            ok = True
        except Exception:
            ok = False
        print('RESULT', broken, ok)
    ''')
    result = probe.stdout.split('RESULT')[-1].split()
    broken, imports = result[0] == 'True', result[1] == 'True'
    # the detector loads _C.so itself, so in the healthy case the import
    # must still work; in the broken case the plain import must fail.
    assert broken != imports, probe.stdout + probe.stderr


def test_torchvision_shim_makes_import_work():
    import torchvision  # noqa: F401  (works here whatever the wheel)
    import torchvision.transforms.functional as F
    out = F.hflip(torch.arange(6.).view(1, 2, 3))
    assert out[0, 0].tolist() == [2., 1., 0.]


def test_mmcv_ext_detector_and_mmseg_import():
    probe = run_python('''
        if compat.torchvision_ops_broken():
            compat._shim_torchvision_ops()
        missing = compat.mmcv_ext_missing()
        try:
            import mmseg.models
            ok = True
        except ModuleNotFoundError as err:
            ok = 'mmcv._ext' not in str(err)
        print('RESULT', missing, ok)
    ''')
    missing, imports = probe.stdout.split('RESULT')[-1].split()
    assert (missing == 'True') != (imports == 'True'), probe.stderr


def test_stack_imports_after_shims():
    import mmpretrain.models  # noqa: F401
    import mmseg.models  # noqa: F401
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmseg.registry import MODELS
    assert MODELS.get('EncoderDecoder') is not None
    assert PRETRAIN_MODELS.get('ImageClassifier') is not None


def test_compiled_op_under_mmcv_lite_names_op_and_fix():
    if 'mmcv_ext' not in compat.APPLIED:
        pytest.skip('full MMCV installed: compiled ops are available')
    from mmcv.ops import nms
    with pytest.raises(compat.MissingCompiledOpError,
                       match=r"'nms'.*mmcv-lite.*mim install"):
        nms(torch.zeros(1, 4), torch.zeros(1), 0.5)


def test_pure_pytorch_mmcv_op_still_works_under_stub():
    from mmcv.ops import point_sample
    feats = torch.arange(16.).view(1, 1, 4, 4)
    out = point_sample(feats, torch.tensor([[[0.5, 0.5]]]),
                       align_corners=False)
    assert out.shape == (1, 1, 1)


def test_mmseg_version_assertion_shim_only_for_mmcv_2_2():
    probe = run_python('''
        if compat.torchvision_ops_broken():
            compat._shim_torchvision_ops()
        if compat.mmcv_ext_missing():
            compat._shim_mmcv_ext()
        import mmcv
        real = mmcv.__version__
        print('REAL', compat.mmseg_rejects_mmcv())
        mmcv.__version__ = '2.2.0'
        print('FAKE', compat.mmseg_rejects_mmcv())
        compat.apply()
        import mmseg
        print('IMPORTED', mmcv.__version__, 'mmseg_mmcv_version' in
              compat.APPLIED)
    ''')
    out = probe.stdout
    assert 'REAL False' in out and 'FAKE True' in out, probe.stderr
    assert 'IMPORTED 2.2.0 True' in out, probe.stderr


def test_mmseg_rejects_mmcv_2_2_without_the_shim():
    probe = run_python('''
        import mmcv
        mmcv.__version__ = '2.2.0'
        try:
            import mmseg
        except AssertionError as err:
            print('REJECTED', err)
    ''')
    assert 'REJECTED MMCV==2.2.0' in probe.stdout, probe.stderr


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


# ------------------------------------------------- the start-up import hook
def test_stack_imported_before_grpo_rm_mm_in_a_fresh_interpreter():
    """MMSeg's own tools and users' scripts import mmseg / mmpretrain
    first: the installed hook applies shims 1 and 2 where needed."""
    proc = run_tool('-c', textwrap.dedent('''
        import sys
        import mmseg.models, mmseg.apis, mmpretrain.models
        from mmseg.registry import MODELS
        assert MODELS.get('EncoderDecoder') is not None
        hooked = sys.modules.get('grpo_rm_mm.compat')
        early = list(hooked.APPLIED) if hooked else []
        assert 'grpo_rm_mm' not in sys.modules
        import grpo_rm_mm
        assert hooked is None or grpo_rm_mm.compat is hooked
        print('RESULT', ','.join(early) or '-')
    '''), cwd='/')
    assert proc.returncode == 0, proc.stderr[-3000:]
    early = proc.stdout.split('RESULT')[-1].split()[0].split(',')
    # the problems this process's own detectors found on this machine
    for name in ('torchvision_ops', 'mmcv_ext'):
        assert (name in early) == (name in compat.APPLIED), (early,
                                                             compat.APPLIED)


def test_import_hook_is_installed_in_site_packages():
    import site
    import sysconfig
    folders = site.getsitepackages() + [sysconfig.get_path('purelib')]
    found = [osp.join(d, 'grpo_rm_mm_import_hook.pth') for d in folders
             if osp.isfile(osp.join(d, 'grpo_rm_mm_import_hook.pth'))]
    assert found, f'no grpo_rm_mm_import_hook.pth in {folders}'
    with open(found[0]) as f:
        assert '_grpo_rm_mm_import_hook' in f.read()


def test_import_hook_stands_aside_for_another_copys_compat(tmp_path):
    """Another checkout of the package first on the path (e.g. an older
    one, benchmarked against this install): its compat module has no
    ``import_hook_spec``, and its imports go on as if there were no hook
    (mmcv-lite's missing extension is then the stock ImportError)."""
    package = tmp_path / 'grpo_rm_mm'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'compat.py').write_text('OLD = True\n')
    proc = run_tool('-c', textwrap.dedent('''
        import grpo_rm_mm.compat
        try:
            import mmcv._ext
            found = 'imported'
        except ImportError as err:
            found = type(err).__name__
        print('RESULT', grpo_rm_mm.compat.OLD, found)
    '''), env={'PYTHONPATH': str(tmp_path)}, cwd='/')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split('RESULT')[-1].split() == [
        'True', 'ModuleNotFoundError'], proc.stdout


@pytest.mark.parametrize('real_ext', [True, False])
def test_import_hook_gives_the_stand_in_only_without_a_real_extension(
        tmp_path, real_ext):
    """A stand-in ``mmcv`` package on PYTHONPATH, with or without its own
    ``_ext`` module: the hook never hides a real extension."""
    (tmp_path / 'mmcv').mkdir()
    (tmp_path / 'mmcv' / '__init__.py').write_text('')
    if real_ext:
        (tmp_path / 'mmcv' / '_ext.py').write_text('REAL = True\n')
    proc = run_tool('-c', textwrap.dedent('''
        import mmcv._ext
        print('RESULT', 'REAL' in vars(mmcv._ext),
              'GRPO_RM_MM_STUB' in vars(mmcv._ext))
        try:
            mmcv._ext.nms_impl()
        except Exception as err:
            print(type(err).__name__)
    '''), env={'PYTHONPATH': str(tmp_path)}, cwd='/')
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = proc.stdout.split('RESULT')[-1].split()
    if real_ext:
        assert result[:2] == ['True', 'False'], proc.stdout
    else:
        assert result == ['False', 'True', 'MissingCompiledOpError'], \
            proc.stdout


def test_mmseg_inferencer_shim_finds_subclassed_loaders():
    probe = run_python('''
        for name in ('torchvision_ops', 'mmcv_ext'):
            detect, shim = compat.SHIMS[name]
            if detect():
                shim()
        from mmcv.transforms import LoadImageFromFile
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.apis import MMSegInferencer
        init_default_scope('mmseg')
        from mmseg.registry import TRANSFORMS

        @TRANSFORMS.register_module()
        class ProbeLoader(LoadImageFromFile):
            pass

        cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='ProbeLoader'), dict(type='PackSegInputs')]))))
        stub = object.__new__(MMSegInferencer)
        before = compat.mmseg_inferencer_needs_exact_names()
        try:
            stub._init_pipeline(cfg.copy())
            stock = 'accepted'
        except ValueError as err:
            stock = 'refused' if 'LoadImageFromFile is not found' in str(
                err) else repr(err)
        compat._shim_mmseg_inferencer_names()
        pipeline = stub._init_pipeline(cfg.copy())
        print('RESULT', before, stock,
              compat.mmseg_inferencer_needs_exact_names(),
              type(pipeline.transforms[0]).__name__)
    ''')
    result = probe.stdout.split('RESULT')[-1].split()
    assert result == ['True', 'refused', 'False', 'InferencerLoader'], (
        probe.stdout + probe.stderr)[-3000:]


def test_checkpoint_detector_matches_torch_default():
    from mmengine.logging import HistoryBuffer
    buf = io.BytesIO()
    torch.save({'hb': HistoryBuffer([1.], [1]), 'a': np.ones(2)}, buf)
    buf.seek(0)
    try:
        torch.load(buf)
        refused = False
    except pickle.UnpicklingError:
        refused = True
    assert compat.checkpoint_load_refused() == refused


def test_checkpoint_loader_accepts_mmengine_objects(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    path = _save({'message_hub': {'hb': HistoryBuffer([1., 2.], [1, 1])},
                  'meta': {'seed': np.int64(3), 'arr': np.arange(3.)},
                  'state_dict': {'w': torch.ones(2)}}, tmp_path / 'ckpt.pth')
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['message_hub']['hb'].current() == 2.
    assert ckpt['meta']['arr'].tolist() == [0., 1., 2.]


def test_checkpoint_loader_refuses_foreign_objects_by_name(tmp_path):
    path = _save({'state_dict': {}, 'args': argparse.Namespace(a=1)},
                 tmp_path / 'odd.pth')
    if not compat.checkpoint_load_refused():
        pytest.skip('this torch loads arbitrary pickles by default')
    with pytest.raises(pickle.UnpicklingError, match='argparse.Namespace'):
        compat.load_checkpoint_file(path)


@pytest.mark.parametrize('zipped', [True, False])
def test_refused_checkpoint_says_why_in_both_formats(tmp_path, zipped):
    # a legacy (non-zip) file used to give torch's misleading "Expected
    # input to be a checkpoint returned by torch.save"
    if not compat.checkpoint_load_refused():
        pytest.skip('this torch loads arbitrary pickles by default')
    path = str(tmp_path / 'odd.pth')
    torch.save({'state_dict': {}, 'args': argparse.Namespace(a=1)}, path,
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(pickle.UnpicklingError) as info:
        compat.load_checkpoint_file(path)
    message = str(info.value)
    assert message.startswith(f'{path} is refused: it pickles objects '
                              'beyond tensors'), message
    assert 'argparse.Namespace' in message.split('; ')[0]
    assert 'Expected input' not in message


def test_legacy_mmengine_checkpoint_still_loads(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'legacy.pth')
    torch.save({'message_hub': {'hb': HistoryBuffer([1., 5.], [1, 1])},
                'state_dict': {'w': torch.ones(2)}}, path,
               _use_new_zipfile_serialization=False)
    ckpt = compat.load_checkpoint_file(path)
    assert ckpt['message_hub']['hb'].current() == 5.
    assert ckpt['state_dict']['w'].tolist() == [1., 1.]


class _ReachesGlobals:
    """Pickles as getattr(HistoryBuffer, '__init__'): the first step of the
    getattr chain to ``__globals__`` / ``eval`` a crafted file would use."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_checkpoint_loader_restricts_getattr(tmp_path):
    path = _save({'state_dict': {}, 'x': _ReachesGlobals()},
                 tmp_path / 'crafted.pth')
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        compat.load_checkpoint_file(path)


def test_checkpoint_loader_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        compat.load_checkpoint_file(str(tmp_path / 'nothere.pth'))


def test_atomic_write_detector_matches_stock_mmengine():
    # in a fresh interpreter nothing is patched: MMEngine writes in place
    probe = run_python('''
        print('RESULT', compat.checkpoint_writes_in_place())
        compat._shim_atomic_checkpoint_writes()
        print('RESULT', compat.checkpoint_writes_in_place())
    ''')
    assert probe.stdout.split('RESULT')[1:] == [' True\n', ' False\n'], \
        probe.stdout + probe.stderr
    assert 'atomic_checkpoint_writes' in compat.APPLIED


def test_checkpoint_save_goes_through_a_temp_name_and_rename(
        tmp_path, monkeypatch):
    import os

    from mmengine.runner.checkpoint import save_checkpoint
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        assert os.path.getsize(src) > 0 and not os.path.exists(dst)
        renames.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace)
    path = str(tmp_path / 'iter_2.pth')
    save_checkpoint({'state_dict': {'w': torch.arange(3.)}}, path)
    (src, dst), = renames
    assert dst == path and os.path.dirname(src) == str(tmp_path)
    assert src.endswith('.tmp') and src != dst
    assert os.listdir(tmp_path) == ['iter_2.pth']
    loaded = compat.load_checkpoint_file(path)
    assert loaded['state_dict']['w'].tolist() == [0., 1., 2.]


def test_last_checkpoint_pointer_is_replaced_not_rewritten(tmp_path):
    write = compat._pointer_write(str(tmp_path))
    pointer = str(tmp_path / 'last_checkpoint')
    assert not compat._written_in_place(pointer, write)
    with open(pointer) as f:
        assert f.read() == str(tmp_path / 'probe_1.pth')


def test_kill_during_a_checkpoint_save_leaves_no_file_under_its_name(
        tmp_path):
    # SIGKILL once the bytes are written, before the rename: a real kill -9
    # in the worst place
    path = tmp_path / 'iter_4.pth'
    (tmp_path / 'iter_2.pth').write_bytes(b'earlier checkpoint')
    proc = run_tool('-c', textwrap.dedent(f'''
        import os, signal, torch
        import grpo_rm_mm
        from mmengine.runner.checkpoint import save_checkpoint
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        save_checkpoint({{'state_dict': {{'w': torch.ones(1000)}}}},
                        '{path}')
    '''))
    assert proc.returncode == -9, proc.stderr
    assert not path.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[0] == 'iter_2.pth' and len(left) == 2, left
    assert left[1].startswith('iter_4.pth.') and left[1].endswith('.tmp')
    assert (tmp_path / 'iter_2.pth').read_bytes() == b'earlier checkpoint'


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / 'last_checkpoint'
    path.write_text('iter_2.pth')
    with pytest.raises(RuntimeError, match='disk full'):
        with compat.ReplaceOnClose(path, 'w') as f:
            f.write('iter_4.pth')
            raise RuntimeError('disk full')
    assert path.read_text() == 'iter_2.pth'
    assert [p.name for p in tmp_path.iterdir()] == ['last_checkpoint']


def test_prepare_distributed_is_noop_without_launcher():
    from mmengine.config import Config
    cfg = Config(dict(launcher='none', env_cfg=dict(dist_cfg=dict(
        backend='nccl'))))
    assert compat.prepare_distributed(cfg) is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def test_cpu_distributed_detector():
    assert compat.cpu_distributed_needed('none') is False
    for launcher in ('pytorch', 'slurm'):
        assert compat.cpu_distributed_needed(launcher) == (
            not torch.cuda.is_available())


def test_prepare_distributed_on_cpu_uses_gloo_and_no_device_ids(
        monkeypatch):
    import torch.distributed as dist
    from mmengine.config import Config
    if torch.cuda.is_available():
        pytest.skip('CUDA present: the workaround is not needed')
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT='29431',
                           RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True,
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        assert compat.prepare_distributed(cfg) is True
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model_wrapper_cfg.find_unused_parameters is True


def test_prepare_distributed_on_cpu_reads_slurm_variables(monkeypatch):
    # what MMEngine's slurm launcher derives, without its torch.cuda call
    import os

    import torch.distributed as dist
    from mmengine.config import Config
    if torch.cuda.is_available():
        pytest.skip('CUDA present: the workaround is not needed')
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE'):
        monkeypatch.setenv(key, 'unset')  # so that teardown restores it
        monkeypatch.delenv(key)
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1',
                           SLURM_LOCALID='0', SLURM_NODELIST='node[1]',
                           LOCAL_RANK='5').items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr('subprocess.getoutput', lambda cmd: '127.0.0.1'
                        if cmd.startswith('scontrol show hostname node[1]')
                        else 'unexpected command')
    cfg = Config(dict(launcher='slurm', env_cfg=dict(dist_cfg=dict(
        backend='nccl', port=29433))))
    try:
        assert compat.prepare_distributed(cfg) is True
        assert dist.is_initialized() and dist.get_world_size() == 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == (
        '127.0.0.1', '29433')
    assert (os.environ['RANK'], os.environ['LOCAL_RANK']) == ('0', '0')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


LONG_ROOT = '/tmp/' + 'a-long-data-root/' * 6 + 'VOC2012'


def _config_with(root: str):
    from mmengine import Config
    return Config(dict(
        data_root=root, work_dir=root + '/work',
        train_dataloader=dict(batch_size=2, dataset=dict(
            type='PascalVOCDataset', data_root=root, pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='RandomCrop', crop_size=(512, 512)),
                dict(type='PackSegInputs', meta_keys=('img_path', ))]))))


def test_config_formatter_detector_and_shim_applied():
    probe = run_python('''
        print('RESULT', compat.config_formatter_searches_long_strings())
        compat._shim_config_long_strings()
        print('RESULT', compat.config_formatter_searches_long_strings())
    ''')
    assert probe.stdout.split('RESULT')[1:] == [' True\n', ' False\n'], \
        probe.stdout + probe.stderr
    assert 'config_long_strings' in compat.APPLIED


def test_config_text_with_long_strings_is_the_same_config():
    from mmengine import Config
    from mmengine.config import config as config_module
    yapf = config_module.FormatCode.__wrapped__
    yapf_calls = []

    def spy(text, *args, **kwargs):
        yapf_calls.append(text)
        return yapf(text, *args, **kwargs)

    cfg = _config_with(LONG_ROOT)
    wrapped = compat.format_code_with_long_strings(spy)
    original = config_module.FormatCode
    config_module.FormatCode = wrapped
    try:
        text = cfg.pretty_text
    finally:
        config_module.FormatCode = original
    # yapf never saw the long strings (what makes its search slow) ...
    assert len(yapf_calls) == 1 and LONG_ROOT not in yapf_calls[0]
    assert max(map(len, yapf_calls[0].splitlines())) <= 79
    # ... and the text is the same config, every string verbatim
    assert text.count(f"'{LONG_ROOT}'") == 2
    assert text.count(f"'{LONG_ROOT}/work'") == 1
    assert Config.fromstring(text, '.py').to_dict() == cfg.to_dict()


def test_config_text_without_long_lines_is_yapfs_own():
    from mmengine.config import config as config_module
    cfg = _config_with('data/VOC2012')
    yapf = config_module.FormatCode.__wrapped__
    seen = []
    wrapped = compat.format_code_with_long_strings(
        lambda text, **kw: seen.append(text) or yapf(text, **kw))
    style = dict(based_on_style='pep8')
    text = cfg.pretty_text
    assert wrapped(text, style_config=style) == yapf(text, style_config=style)
    assert seen == [text]
