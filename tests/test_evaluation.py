"""kNN and linear-probe evaluation against references and known answers."""
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from grpo_rm_mm.evaluation import (evaluate_representation, fit_linear_probe,
                                   knn_predict, linear_probe_predict)


def reference_knn(train_x, train_y, test_x, num_classes, k, temperature):
    """One test sample at a time, in float64 numpy, with exp weights."""
    train = train_x.double().numpy()
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    preds = []
    for row in test_x.double().numpy():
        sims = train @ (row / np.linalg.norm(row))
        order = np.argsort(-sims, kind='stable')
        nearest = order[:k]
        votes = np.zeros(num_classes)
        for i in nearest:
            votes[train_y[i]] += math.exp(sims[i] / temperature)
        preds.append(int(np.argmax(votes)))
        # no near-ties, so float32 and float64 must pick the same labels
        # on every CPU (the kNN set, then the vote)
        if k < len(sims):
            assert sims[order[k - 1]] - sims[order[k]] > 1e-5
        top2 = np.sort(votes)[-2:]
        assert top2[1] - top2[0] > 1e-5 * top2[1]
    return torch.tensor(preds)


@pytest.mark.parametrize('k, temperature', [(1, 0.07), (10, 0.07),
                                            (20, 0.07), (20, 1.0)])
def test_knn_matches_reference(k, temperature):
    gen = torch.Generator().manual_seed(k)
    # clustered so that neighbours disagree sometimes but not always
    centres = torch.randn(4, 8, generator=gen)
    train_y = torch.randint(0, 4, (60, ), generator=gen)
    train_x = centres[train_y] + 1.5 * torch.randn(60, 8, generator=gen)
    test_x = centres[torch.randint(0, 4, (30, ), generator=gen)]
    test_x = test_x + 1.5 * torch.randn(30, 8, generator=gen)
    got = knn_predict(train_x, train_y, test_x, 4, k=k,
                      temperature=temperature, chunk_size=7)
    want = reference_knn(train_x, train_y, test_x, 4, k, temperature)
    assert got.dtype == torch.long
    assert torch.equal(got, want)


def test_knn_uses_cosine_not_euclidean():
    # the test point is far from [1, 0] but points the same way
    train_x = torch.tensor([[1.0, 0.0], [0.3, 0.3]])
    train_y = torch.tensor([0, 1])
    pred = knn_predict(train_x, train_y, torch.tensor([[50.0, 1.0]]), 2, k=1)
    assert pred.tolist() == [0]


def test_knn_weights_votes_by_similarity():
    # two far neighbours of class 1 against one very close of class 0
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    train_y = torch.tensor([0, 1, 1])
    test_x = torch.tensor([[1.0, 0.6]])  # cos 0.86 vs 0.51
    assert knn_predict(train_x, train_y, test_x, 2, k=3,
                       temperature=0.07).tolist() == [0]
    # a hot vote is close to a plain majority
    assert knn_predict(train_x, train_y, test_x, 2, k=3,
                       temperature=100.0).tolist() == [1]


def separable(num_classes=5, per_class=20, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = 5 * torch.randn(num_classes, dim, generator=gen)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    feats = centres[labels] + 0.3 * torch.randn(len(labels), dim,
                                                generator=gen)
    return feats, labels


def test_separable_features_reach_100_percent():
    train_x, train_y = separable(seed=0)
    test_x, test_y = separable(seed=0)
    test_x = test_x + 0.1 * torch.randn_like(test_x)
    results = evaluate_representation(train_x, train_y, test_x, test_y, 5)
    assert results['knn_k10_top1'] == 100.0
    assert results['knn_k20_top1'] == 100.0
    assert results['linear_top1'] == 100.0


def test_random_labels_give_about_chance():
    gen = torch.Generator().manual_seed(0)
    num_classes, n = 4, 800
    train_x = torch.randn(n, 16, generator=gen)
    train_y = torch.randint(0, num_classes, (n, ), generator=gen)
    test_x = torch.randn(n, 16, generator=gen)
    test_y = torch.randint(0, num_classes, (n, ), generator=gen)
    results = evaluate_representation(train_x, train_y, test_x, test_y,
                                      num_classes)
    # chance is 25%; 800 samples: one standard deviation is ~1.5 points
    for key in ('knn_k10_top1', 'knn_k20_top1', 'linear_top1'):
        assert 18.0 < results[key] < 32.0, (key, results[key])


def test_linear_probe_matches_a_direct_fit():
    """The L-BFGS optimum has the zero gradient of the penalised loss."""
    x, y = separable(num_classes=3, per_class=10, dim=4, seed=3)
    x = x + 3 * torch.randn(len(x), 4, generator=torch.Generator()
                            .manual_seed(1))  # overlapping: finite optimum
    probe = fit_linear_probe(x, y, 3, weight_decays=(1e-2, ), max_iter=500)
    xs = ((x - probe.mean) / probe.std).double()
    w = probe.weight.double().requires_grad_()
    b = probe.bias.double().requires_grad_()
    loss = torch.nn.functional.cross_entropy(xs @ w.T + b, y)
    loss = loss + 0.5 * 1e-2 * w.pow(2).sum()
    loss.backward()
    assert_close(w.grad, torch.zeros_like(w), atol=1e-4, rtol=0)
    assert_close(b.grad, torch.zeros_like(b), atol=1e-4, rtol=0)
    assert_close(probe.mean, x.mean(0), atol=1e-5, rtol=1e-5)


def test_linear_probe_chooses_weight_decay_on_held_out_train():
    x, y = separable(seed=2)
    probe = fit_linear_probe(x, y, 5, weight_decays=(1e-1, 1e-3))
    assert probe.weight_decay in (1e-1, 1e-3)
    assert probe.val_accuracy == 100.0
    preds = linear_probe_predict(x, y, x, 5, weight_decays=(1e-3, ))
    assert torch.equal(preds, y)


@pytest.mark.parametrize('bad, match', [
    (dict(train_y=torch.tensor([0, 5])), r'labels must be in \[0, 2\)'),
    (dict(train_x=torch.tensor([[0.0, float('nan')], [1.0, 0.0]])), 'NaN'),
    (dict(test_x=torch.ones(1, 3)), '3 dimensions'),
    (dict(k=3), r'k=3 must be in \[1, 2\]'),
    (dict(train_y=torch.tensor([0.0, 1.0])), 'integers'),
])
def test_bad_inputs_are_refused(bad, match):
    args = dict(train_x=torch.eye(2), train_y=torch.tensor([0, 1]),
                test_x=torch.eye(2), k=1)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        knn_predict(args['train_x'], args['train_y'], args['test_x'], 2,
                    k=args['k'])
