"""Bad input to the classification tools is an error naming the file, key
or option and what to do, before any work is done."""
import os.path as osp

import pytest
import torch
from cls_fixtures import write_stl10
from conftest import REPO_ROOT, load_tool
from conftest import run_in_process as run
from mmengine.config import Config
from mmengine.registry import DefaultScope
from test_cls_class_list import CLS_CONFIG, options

CLS = osp.join(REPO_ROOT, 'configs', 'cls')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from grpo_rm_mm.datasets import make_synthetic_cls
    return make_synthetic_cls(str(tmp_path_factory.mktemp('cls')), 10, 5)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A complete checkpoint of the demo classifier, the same cut short (as
    by a kill or a copy that did not finish) and a text file."""
    from mmpretrain.registry import MODELS
    folder = tmp_path_factory.mktemp('ckpts')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(CLS_CONFIG).model)
    good = folder / 'epoch_2.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), good)
    raw = good.read_bytes()
    (folder / 'truncated.pth').write_bytes(raw[:-10])
    (folder / 'notes.pth').write_text('epoch 2 looked best\n')
    return folder


CASES = [('notes.pth', r'is a text file, not weights \(20 bytes, first line '
          r"'epoch 2 looked best\\n'\)"),
         ('truncated.pth', r'is truncated or damaged: \d+ bytes whose zip '
          'directory cannot be read')]


@pytest.mark.parametrize('name, message', CASES)
def test_test_tool_names_a_file_that_is_no_checkpoint(name, message, data,
                                                      checkpoints, tmp_path):
    from grpo_rm_mm.utils import CheckpointFileError
    path = checkpoints / name
    with pytest.raises(CheckpointFileError,
                       match=f'checkpoint {path} {message}'):
        run('test', CLS_CONFIG, path, '--work-dir', tmp_path,
            '--cfg-options', *options(data))


@pytest.mark.parametrize('name, message', CASES)
def test_eval_representation_names_a_file_that_is_no_checkpoint(
        name, message, data, checkpoints):
    from grpo_rm_mm.utils import CheckpointFileError
    path = checkpoints / name
    with pytest.raises(CheckpointFileError,
                       match=f'checkpoint {path} {message}'):
        run('eval_representation', CLS_CONFIG, path, '--cfg-options',
            *options(data))


def test_eval_representation_names_the_checkpoint_of_another_model(
        data, checkpoints):
    from grpo_rm_mm.utils import CheckpointMismatchError
    path = checkpoints / 'epoch_2.pth'
    with pytest.raises(CheckpointMismatchError,
                       match=f'checkpoint {path} does not fit the model.*'
                       r'head.fc.weight: checkpoint \[5, 96\] vs model '
                       r'\[7, 96\]'):
        run('eval_representation', CLS_CONFIG, path, '--cfg-options',
            *options(data), 'model.head.num_classes=7')


@pytest.mark.parametrize('option, message', [
    (['--ks', '0'], r'--ks must be neighbour counts >= 1, got \[0\]'),
    (['--temperature', '0'], '--temperature must be > 0, got 0.0'),
    (['--ks', '10', '11'], '--ks 11 is more than the 10 images of the '
     'train split'),
])
def test_eval_representation_checks_options_before_extracting(
        option, message, data, capsys):
    with pytest.raises(ValueError, match=message):
        run('eval_representation', CLS_CONFIG, 'none', *option,
            '--cfg-options', *options(data))
    assert 'extracting' not in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs no CUDA')
def test_eval_representation_device_cuda_without_cuda(data):
    with pytest.raises(ValueError, match='--device cuda: this machine has no '
                       'CUDA device PyTorch can use.*pass --device cpu'):
        run('eval_representation', CLS_CONFIG, 'none', '--device', 'cuda',
            '--cfg-options', *options(data))


def test_eval_representation_config_without_test_split(data, tmp_path):
    config = tmp_path / 'no_test.py'
    config.write_text(f"_base_ = ['{CLS_CONFIG}']\n"
                      'test_dataloader = None\ntest_evaluator = None\n'
                      'test_cfg = None\n')
    with pytest.raises(KeyError, match=f'{config} has no '
                       'test_dataloader.dataset: .*test_dataloader = '
                       'val_dataloader'):
        run('eval_representation', config, 'none', '--cfg-options',
            *options(data)[:8])


def test_test_tool_refuses_stl10_unlabeled_split(tmp_path, checkpoints):
    from test_configs_cls import shrink
    root = str(tmp_path / 'stl')
    write_stl10(root)
    cfg = shrink(Config.fromfile(
        osp.join(CLS, 'ce_dinov2-s_8xb128-100e_stl10-224.py')), root,
        tmp_path)
    cfg.test_dataloader.dataset.split = 'unlabeled'
    path = str(tmp_path / 'stl10_unlabeled.py')
    cfg.dump(path)
    with pytest.raises(ValueError, match="test_dataloader.dataset: split="
                       "'unlabeled' has no labels, but tools/test.py needs "
                       'labelled images'):
        run('test', path, checkpoints / 'epoch_2.pth')


@pytest.fixture
def odd_size(data, tmp_path):
    """The data with one val image 70 x 64 instead of 64 x 64."""
    import shutil

    import cv2
    root = tmp_path / 'odd'
    shutil.copytree(data, root)
    path = sorted((root / 'val').glob('*/*.png'))[1]
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (64, 70)))
    return root, str(path)


def no_resize_config(folder):
    """The demo without a resize in its test pipeline."""
    path = folder / 'no_resize.py'
    path.write_text(
        f"_base_ = ['{CLS_CONFIG}']\n"
        "pipeline = [dict(type='CheckedLoadImageFromFile'), "
        "dict(type='PackInputs')]\n"
        'val_dataloader = dict(dataset=dict(pipeline=pipeline))\n'
        'test_dataloader = val_dataloader\n')
    return path


def test_test_tool_refuses_a_batch_of_different_sizes(odd_size, checkpoints,
                                                      tmp_path):
    from grpo_rm_mm.engine.hooks import ImageSizeError
    root, odd = odd_size
    with pytest.raises(ImageSizeError, match=r'test batch 0 holds images of '
                       r'different sizes \(H x W\): 64x64 \(.*\), 70x64 '
                       rf"\({odd}\)\. .*zero-pad them to 70x64.*"
                       r"dict\(type='Resize', scale=\(224, 224\)\)"):
        run('test', no_resize_config(tmp_path), checkpoints / 'epoch_2.pth',
            '--work-dir', tmp_path, '--cfg-options', *options(root))


def test_eval_representation_refuses_a_batch_of_different_sizes(
        odd_size, tmp_path):
    from grpo_rm_mm.engine.hooks import ImageSizeError
    root, odd = odd_size
    with pytest.raises(ImageSizeError, match=rf'70x64 \({odd}\)'):
        run('eval_representation', no_resize_config(tmp_path), 'none',
            '--ks', 1, '--cfg-options', *options(root))


def test_demo_pipelines_resize_every_image(odd_size):
    from grpo_rm_mm.utils import bind_class_list
    from mmpretrain.registry import DATASETS
    root, odd = odd_size
    cfg = Config.fromfile(CLS_CONFIG)
    for split in ('train', 'val'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(root)
    bind_class_list(cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for split in ('train', 'val'):
            dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
            sizes = {tuple(dataset[i]['inputs'].shape[-2:])
                     for i in range(len(dataset))}
            assert sizes == {(64, 64)}, split


def test_eval_representation_normalises_as_the_runner_does():
    # the config's top-level data_preprocessor (mean / std, BGR -> RGB)
    # reaches the model, as MMEngine's runner gives it in training
    cfg = Config.fromfile(CLS_CONFIG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        tool = load_tool('eval_representation')
        model = tool.build_model(cfg, 'none', 'cpu')
    pre = model.data_preprocessor
    assert pre._enable_normalize and pre.to_rgb
    assert pre.mean.flatten().tolist() == pytest.approx(
        cfg.data_preprocessor.mean)
    assert pre.std.flatten().tolist() == pytest.approx(
        cfg.data_preprocessor.std)
