"""Prediction on images: the stacks' inference APIs on every config, and
``tools/infer.py``.

MMSeg's ``MMSegInferencer``, ``init_model`` + ``inference_model`` and
``show_result_pyplot``, MMPretrain's ``ImageClassificationInferencer`` and
``FeatureExtractor`` find a config's loaders by name; the configs use the
checked loaders (subclasses), which must work there too.
"""
import copy
import glob
import os.path as osp
import types

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, load_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

SEG = osp.join(REPO_ROOT, 'configs/demo/'
               'grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py')
CLS = osp.join(REPO_ROOT, 'configs/demo/'
               'grpo-rm_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py')
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)
#: an image size no config uses, not a multiple of the patch size
H, W = 45, 61


def image_array(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (H, W, 3), np.uint8)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('images')
    for i, name in enumerate(('first.jpg', 'second.png')):
        cv2.imwrite(str(folder / name), image_array(i))
    (folder / 'notes.txt').write_text('not an image')
    return folder


def save_random_checkpoint(cfg_path: str, path, dataset_meta: dict):
    """A randomly initialised model of the config, saved as MMEngine's
    runner saves it (``meta.dataset_meta`` included)."""
    cfg = Config.fromfile(cfg_path)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        if cfg.default_scope == 'mmseg':
            from mmseg.registry import MODELS
        else:
            from mmpretrain.registry import MODELS
        model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dataset_meta)), path)
    return str(path)


@pytest.fixture(scope='module')
def seg_checkpoint(tmp_path_factory):
    from mmseg.datasets import PascalVOCDataset
    return save_random_checkpoint(
        SEG, tmp_path_factory.mktemp('seg') / 'iter_1.pth',
        dict(PascalVOCDataset.METAINFO))


@pytest.fixture(scope='module')
def cls_checkpoint(tmp_path_factory):
    from grpo_rm_mm.datasets.synthetic_cls import CLASS_NAMES
    return save_random_checkpoint(
        CLS, tmp_path_factory.mktemp('cls') / 'epoch_1.pth',
        dict(classes=CLASS_NAMES))


# ------------------------------------------------- every config's pipeline
def scope_of(path: str) -> str:
    return Config.fromfile(path).get('default_scope', 'mmseg')


def stub(cls):
    """An inferencer object without a model: only its pipeline code."""
    return object.__new__(cls)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_every_test_pipeline_is_accepted_by_the_inferencers(path, images):
    cfg = Config.fromfile(path)
    image_file = str(images / 'first.jpg')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        if cfg.default_scope == 'mmseg':
            from mmseg.apis import MMSegInferencer
            from mmseg.apis.utils import _preprare_data
            pipeline = stub(MMSegInferencer)._init_pipeline(
                copy.deepcopy(cfg))
            packed = [pipeline(image_file), pipeline(image_array())]
            for source in (image_file, image_array()):  # inference_model
                model = types.SimpleNamespace(cfg=copy.deepcopy(cfg))
                data, _ = _preprare_data(source, model)
                packed.append(dict(inputs=data['inputs'][0],
                                   data_samples=data['data_samples'][0]))
        else:
            from mmpretrain.apis import (FeatureExtractor,
                                         ImageClassificationInferencer)
            packed = []
            for kind in (ImageClassificationInferencer, FeatureExtractor):
                inferencer = stub(kind)
                inferencer.pipeline = inferencer._init_pipeline(cfg)
                for source in (image_file, image_array()):
                    (batch, ) = inferencer.preprocess([source])
                    packed.append(dict(inputs=batch['inputs'][0],
                                       data_samples=batch['data_samples'][0]))
    for item in packed:
        assert item['inputs'].shape[0] == 3 and item['inputs'].dim() == 3
        assert tuple(item['data_samples'].ori_shape) == (H, W)


# ------------------------------------------- the stacks' APIs, end to end
def test_mmseg_inferencer(seg_checkpoint, images):
    from mmseg.apis import MMSegInferencer

    # (the stacks' APIs set the process's default scope: put it back)
    with DefaultScope.overwrite_default_scope('mmseg'):
        inferencer = MMSegInferencer(model=SEG, weights=seg_checkpoint,
                                     device='cpu')
        samples = [inferencer(source, return_datasamples=True)
                   for source in (str(images / 'first.jpg'), image_array())]
    for sample in samples:
        assert sample.pred_sem_seg.data.shape == (1, H, W)
        assert sample.seg_logits.data.shape == (21, H, W)
    assert inferencer.model.dataset_meta['classes'][0] == 'background'


def test_init_model_inference_model_and_show_result(seg_checkpoint, images,
                                                    tmp_path):
    from mmseg.apis import inference_model, init_model, show_result_pyplot
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = init_model(SEG, seg_checkpoint, device='cpu')
        by_path = inference_model(model, str(images / 'first.jpg'))
        by_array = inference_model(model,
                                   cv2.imread(str(images / 'first.jpg')))
    assert by_path.pred_sem_seg.data.shape == (1, H, W)
    # the same pixels through the file loader and the array loader
    assert torch.equal(by_path.pred_sem_seg.data, by_array.pred_sem_seg.data)
    out_file = tmp_path / 'shown.png'
    drawn = show_result_pyplot(model, str(images / 'first.jpg'), by_path,
                               show=False, out_file=str(out_file))
    assert drawn.shape == (H, W, 3)
    assert cv2.imread(str(out_file)).shape == (H, W, 3)


def test_image_classification_inferencer_and_feature_extractor(
        cls_checkpoint, images):
    from mmpretrain.apis import (FeatureExtractor,
                                 ImageClassificationInferencer)

    from grpo_rm_mm.datasets.synthetic_cls import CLASS_NAMES
    cfg = Config.fromfile(CLS)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            cfg, pretrained=cls_checkpoint, device='cpu')
        results = inferencer([str(images / 'first.jpg'), image_array()])
        extractor = FeatureExtractor(cfg, pretrained=cls_checkpoint,
                                     device='cpu')
        ((features, ), ) = extractor(str(images / 'first.jpg'))
    for result in results:
        assert result['pred_scores'].shape == (len(CLASS_NAMES), )
        assert result['pred_class'] == CLASS_NAMES[result['pred_label']]
        np.testing.assert_allclose(result['pred_scores'].sum(), 1.0,
                                   rtol=1e-5)
    head_in = cfg.model.head.in_channels
    assert features.shape == (head_in, )


# ---------------------------------------------------------- tools/infer.py
@pytest.fixture(scope='module')
def infer_tool():
    return load_tool('infer')


def test_infer_tool_segmentation(infer_tool, seg_checkpoint, images,
                                 tmp_path):
    from mmseg.apis import inference_model, init_model
    from mmseg.datasets import PascalVOCDataset
    out = tmp_path / 'out'
    with DefaultScope.overwrite_default_scope('mmseg'):
        infer_tool.main([SEG, seg_checkpoint, str(images), '--out-dir',
                         str(out), '--device', 'cpu', '--opacity', '0.7'])
    assert sorted(p.name for p in out.iterdir()) == [
        'first.png', 'first_overlay.png', 'second.png', 'second_overlay.png']
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = init_model(SEG, seg_checkpoint, device='cpu')
        # the class indices of MMSeg's own inference API
        expected = {
            stem: inference_model(model, str(next(images.glob(stem + '.*')))
                                  ).pred_sem_seg.data[0].numpy()
            for stem in ('first', 'second')}
    for stem in ('first', 'second'):
        mask = Image.open(out / f'{stem}.png')
        assert mask.mode == 'P' and mask.size == (W, H)
        palette = np.array(mask.getpalette()[:21 * 3]).reshape(21, 3)
        assert palette.tolist() == [
            list(c) for c in PascalVOCDataset.METAINFO['palette']]
        assert np.array_equal(np.array(mask), expected[stem])
        overlay = cv2.imread(str(out / f'{stem}_overlay.png'))
        assert overlay.shape == (H, W, 3)


def test_infer_tool_classification(infer_tool, cls_checkpoint, images,
                                   tmp_path):
    import json

    from mmpretrain.apis import ImageClassificationInferencer
    out = tmp_path / 'out'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        infer_tool.main([CLS, cls_checkpoint, str(images / 'first.jpg'),
                         str(images / 'second.png'), '--out-dir', str(out)])
        reference = ImageClassificationInferencer(
            Config.fromfile(CLS), pretrained=cls_checkpoint, device='cpu')
        expected = reference([p['image'] for p in json.loads(
            (out / 'predictions.json').read_text())])
    assert sorted(p.name for p in out.iterdir()) == [
        'first_overlay.png', 'predictions.json', 'second_overlay.png']
    with open(out / 'predictions.json') as f:
        predictions = json.load(f)
    assert len(predictions) == 2
    for pred, ref in zip(predictions, expected):
        assert pred['pred_label'] == ref['pred_label']
        assert pred['pred_class'] == ref['pred_class']
        assert pred['pred_score'] == pytest.approx(ref['pred_score'])
    # drawn at a readable size: the short side up to 224 pixels
    assert min(cv2.imread(str(out / 'first_overlay.png')).shape[:2]) == 224


def test_infer_tool_errors(infer_tool, seg_checkpoint, cls_checkpoint,
                           images, tmp_path):
    from grpo_rm_mm.utils import CheckpointMismatchError
    with pytest.raises(FileNotFoundError, match='image not found: .*nope'):
        infer_tool.main([SEG, seg_checkpoint, str(tmp_path / 'nope.jpg')])
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no image .* in folder'):
        infer_tool.main([SEG, seg_checkpoint, str(empty)])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            infer_tool.main([SEG, seg_checkpoint, str(images), '--device',
                             'cuda:0'])
    # a checkpoint of another model would predict with random weights
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(CheckpointMismatchError, match=cls_checkpoint):
        infer_tool.main([SEG, cls_checkpoint, str(images), '--out-dir',
                         str(tmp_path / 'o')])


def test_loaders_still_refuse_dataset_samples_without_files():
    """Inputs to predict on pass; a dataset sample missing its files does
    not."""
    from grpo_rm_mm.datasets.transforms import (CheckedLoadAnnotations,
                                                CheckedLoadImageFromFile)
    img = image_array()
    loaded = CheckedLoadImageFromFile().transform(dict(img=img))
    assert loaded['img'] is img and loaded['ori_shape'] == (H, W)
    with pytest.raises(KeyError, match='needs an img_path'):
        CheckedLoadImageFromFile().transform(dict(seg_fields=[]))
    assert 'gt_seg_map' not in CheckedLoadAnnotations().transform(
        dict(img=img, img_path='x.jpg'))
    with pytest.raises(KeyError, match='x.jpg has no seg_map_path'):
        CheckedLoadAnnotations().transform(
            dict(img=img, img_path='x.jpg', seg_fields=[]))


def test_dinov3_config_predicts_through_the_tool_and_the_inferencer(
        infer_tool, images, tmp_path):
    # the DINOv3 demo config: nothing in the inference path is DINOv2's
    from mmseg.apis import MMSegInferencer
    from mmseg.datasets import PascalVOCDataset
    config = SEG.replace('dinov2', 'dinov3')
    checkpoint = save_random_checkpoint(config, tmp_path / 'iter_1.pth',
                                        dict(PascalVOCDataset.METAINFO))
    out = tmp_path / 'out'
    with DefaultScope.overwrite_default_scope('mmseg'):
        infer_tool.main([config, checkpoint, str(images / 'first.jpg'),
                         '--out-dir', str(out), '--device', 'cpu'])
        inferencer = MMSegInferencer(model=config, weights=checkpoint,
                                     device='cpu')
        sample = inferencer(str(images / 'first.jpg'),
                            return_datasamples=True)
    assert sorted(p.name for p in out.iterdir()) == ['first.png',
                                                     'first_overlay.png']
    assert sample.pred_sem_seg.data.shape == (1, H, W)
    assert np.array_equal(np.array(Image.open(out / 'first.png')),
                          sample.pred_sem_seg.data[0].numpy())
