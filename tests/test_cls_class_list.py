"""Every split of a class-folder / annotation-file dataset (MMPretrain's
``CustomDataset``, as in the classification demo) is labelled through one
class list, in tools/train.py, tools/test.py and eval_representation.py."""
import json
import os.path as osp
import pickle
import shutil

import pytest
import torch
from conftest import REPO_ROOT
from conftest import run_in_process as run
from mmengine.config import Config
from mmengine.registry import DefaultScope

from grpo_rm_mm.datasets import ClassListError, make_synthetic_cls
from grpo_rm_mm.datasets.synthetic_cls import CLASS_NAMES

CLS_CONFIG = osp.join(REPO_ROOT, 'configs/demo/'
                      'ce_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py')


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """24 train and 8 val images of the 5 demo classes, in class folders."""
    return make_synthetic_cls(str(tmp_path_factory.mktemp('src')), 24, 8)


@pytest.fixture
def data(source, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(source, root)
    return root


def settings(root, train='train', val='val', test='val'):
    """The data folders of the three splits, read without workers."""
    opts = {}
    for split, prefix in (('train', train), ('val', val), ('test', test)):
        opts.update({f'{split}_dataloader.dataset.data_root': str(root),
                     f'{split}_dataloader.dataset.data_prefix': prefix,
                     f'{split}_dataloader.num_workers': 0,
                     f'{split}_dataloader.persistent_workers': False})
    return opts


def options(root, **prefixes):
    """:func:`settings` as --cfg-options."""
    return [f'{k}={v}' for k, v in settings(root, **prefixes).items()]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Random weights of the demo classifier, saved as MMEngine does."""
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(CLS_CONFIG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


def true_labels(paths):
    return [CLASS_NAMES.index(osp.basename(osp.dirname(p))) for p in paths]


def test_test_tool_scores_a_split_lacking_a_class_folder(data, checkpoint,
                                                         tmp_path):
    # val without 'bird': MMPretrain would number bottle 1, cat 2, dog 3
    shutil.rmtree(data / 'val' / 'bird')
    out = tmp_path / 'preds.pkl'
    metrics = run('test', CLS_CONFIG, checkpoint, '--work-dir', tmp_path,
                  '--out', out, '--cfg-options', *options(data))
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    labels = [int(p['gt_label']) for p in preds]
    assert labels == true_labels([p['img_path'] for p in preds])
    assert CLASS_NAMES.index('bottle') in labels
    correct = [int(p['pred_label']) == y for p, y in zip(preds, labels)]
    assert metrics['accuracy/top1'] == pytest.approx(
        100 * sum(correct) / len(correct))


def built_datasets(root, *extra):
    """The train and val datasets as tools/train.py builds them."""
    from grpo_rm_mm.utils import build_runner, load_config
    cfg = load_config(CLS_CONFIG, 'none', None, str(root / 'work'))
    cfg.merge_from_dict(settings(root))
    cfg.merge_from_dict(dict(extra))
    runner = build_runner(cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return [runner.build_dataloader(cfg).dataset for cfg in
                (runner._train_dataloader, runner._val_dataloader)]


def labels_by_name(dataset, names):
    paths = [dataset.get_data_info(i)['img_path']
             for i in range(len(dataset))]
    return [names.index(osp.basename(osp.dirname(p))) for p in paths]


def test_train_split_lacking_a_class_folder_keeps_the_names(data):
    # MMPretrain would number the train folders bird 0, bottle 1, ...
    shutil.rmtree(data / 'train' / 'aeroplane')
    train, val = built_datasets(
        data, ('train_dataloader.dataset.metainfo',
               dict(classes=list(CLASS_NAMES))))
    for dataset in (train, val):
        assert list(dataset.metainfo['classes']) == list(CLASS_NAMES)
        assert [int(x) for x in dataset.get_gt_labels()] == \
            labels_by_name(dataset, CLASS_NAMES)
    # without metainfo.classes the train split's folders are the list, and
    # a val folder outside it is named
    with pytest.raises(ClassListError, match=r"val_dataloader.dataset: "
                       r"class folder\(s\) \['aeroplane'\] in .*/val are "
                       r"not among the 4 classes \['bird', "):
        built_datasets(data)


def test_config_class_list_with_more_classes_than_the_head(data):
    from grpo_rm_mm.utils import bind_class_list
    (data / 'train' / 'zebra').mkdir()
    cfg = Config.fromfile(CLS_CONFIG)
    cfg.merge_from_dict(settings(data))
    with pytest.raises(ClassListError, match=r"has 6 classes .*'zebra'.* "
                       'model.head.num_classes is 5'):
        bind_class_list(cfg)


def test_test_tool_refuses_a_sixth_class_folder(data, checkpoint, tmp_path):
    (data / 'val' / 'zebra').mkdir()
    shutil.copy(next((data / 'val' / 'cat').iterdir()),
                data / 'val' / 'zebra' / 'z.png')
    with pytest.raises(ClassListError) as err:
        run('test', CLS_CONFIG, checkpoint, '--work-dir', tmp_path,
            '--cfg-options', *options(data))
    message = str(err.value)
    assert "test_dataloader.dataset: class folder(s) ['zebra']" in message
    assert str(data / 'val') in message
    assert str(list(CLASS_NAMES)) in message


def test_test_tool_refuses_an_annotation_label_of_no_class(
        data, checkpoint, tmp_path):
    # the val images with their labels, the second one's replaced by 9
    files = sorted((data / 'val').glob('*/*.png'))
    labels = [CLASS_NAMES.index(f.parent.name) for f in files]
    labels[1] = 9
    ann = data / 'val.txt'
    ann.write_text(''.join(f'{f.parent.name}/{f.name} {label}\n'
                           for f, label in zip(files, labels)))
    with pytest.raises(ClassListError) as err:
        run('test', CLS_CONFIG, checkpoint, '--work-dir', tmp_path,
            '--cfg-options', *options(data),
            f'+test_dataloader.dataset.ann_file={ann}')
    assert f'{ann}:2: label 9 is not a class index of the 5 classes' in \
        str(err.value)


def test_eval_representation_labels_both_splits_alike(data, tmp_path):
    # train lacks 'bird'; test holds the train images again plus the birds:
    # with k=1 each train image finds itself, so every image but the birds
    # is right when both splits are labelled by name
    shutil.rmtree(data / 'train' / 'bird')
    shutil.copytree(data / 'train', data / 'test')
    shutil.copytree(data / 'val' / 'bird', data / 'test' / 'bird')
    birds = len(list((data / 'test' / 'bird').iterdir()))
    total = sum(1 for _ in (data / 'test').glob('*/*.png'))
    out = tmp_path / 'repr.json'
    run('eval_representation', CLS_CONFIG, 'none', '--ks', 1, '--no-linear',
        '--out', out, '--cfg-options', *options(data, test='test'),
        '+train_dataloader.dataset.metainfo.classes=[' +
        ','.join(CLASS_NAMES) + ']')
    with open(out) as f:
        report = json.load(f)
    assert report['num_classes'] == 5
    assert report['knn_k1_top1'] == pytest.approx(
        100 * (total - birds) / total)


def test_eval_representation_test_split_lacking_a_class(data, tmp_path):
    # no longer "train labels must be in [0, 4)": both splits use the
    # train split's five classes
    shutil.rmtree(data / 'val' / 'dog')
    out = tmp_path / 'repr.json'
    run('eval_representation', CLS_CONFIG, 'none', '--ks', 1, '--no-linear',
        '--out', out, '--cfg-options', *options(data))
    with open(out) as f:
        report = json.load(f)
    assert report['num_classes'] == 5 and report['num_test'] == 6
