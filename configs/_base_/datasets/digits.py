# scikit-learn's handwritten digits (grpo_rm_mm.datasets.DigitsDataset):
# 1,797 real 8x8 images, 10 classes, held in memory (no files, no download).
# The split is a seeded 80/20 shuffle; `digits=(...)` selects a class subset.
dataset_type = 'DigitsDataset'
data_preprocessor = dict(
    num_classes=10,
    # the grey values' mean and std over the whole set (0-255 scale)
    mean=[78.1, 78.1, 78.1],
    std=[96.3, 96.3, 96.3],
    to_rgb=False)
train_pipeline = [dict(type='PackInputs')]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
