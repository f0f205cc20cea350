"""Expected calibration error against a hand computation."""
import pytest
import torch

from grpo_rm_mm.evaluation import (ExpectedCalibrationError,
                                   expected_calibration_error)

# five samples, three classes; confidences 0.95, 0.5 (a bin edge: it
# belongs to (0.4, 0.5]), 0.58, 0.56, 0.45
SCORES = [[0.95, 0.03, 0.02],   # label 0: right, bin (0.9, 1]
          [0.25, 0.50, 0.25],   # label 2: wrong, bin (0.4, 0.5]
          [0.58, 0.32, 0.10],   # label 0: right, bin (0.5, 0.6]
          [0.56, 0.44, 0.00],   # label 1: wrong, bin (0.5, 0.6]
          [0.45, 0.35, 0.20]]   # label 0: right, bin (0.4, 0.5]
LABELS = [0, 2, 0, 1, 0]
# by hand: bin (0.9, 1]: 1 sample, |1 - 0.95| = 0.05;
# (0.5, 0.6]: 2 samples, |0.5 - 0.57| = 0.07; (0.4, 0.5]: 2 samples,
# |0.5 - 0.475| = 0.025. ECE = (0.05 + 2 * 0.07 + 2 * 0.025) / 5 = 0.048
HAND_ECE = 4.8
HAND_CONFIDENCE = (0.95 + 0.5 + 0.58 + 0.56 + 0.45) / 5 * 100


def test_ece_matches_a_hand_computation():
    got = expected_calibration_error(torch.tensor(SCORES, dtype=torch.float64),
                                     torch.tensor(LABELS))
    assert got['ECE'] == pytest.approx(HAND_ECE, abs=1e-9)
    assert got['confidence'] == pytest.approx(HAND_CONFIDENCE, abs=1e-9)


def test_perfectly_calibrated_and_overconfident_extremes():
    # 4 samples at confidence 0.75, 3 right: calibrated, ECE 0
    scores = torch.tensor([[0.75, 0.25]] * 4, dtype=torch.float64)
    assert expected_calibration_error(scores, torch.tensor(
        [0, 0, 0, 1]))['ECE'] == pytest.approx(0, abs=1e-9)
    # sure and always wrong: ECE 100 %
    sure = torch.tensor([[1.0, 0.0]] * 3)
    assert expected_calibration_error(sure, torch.tensor(
        [1, 1, 1]))['ECE'] == pytest.approx(100)


def test_metric_through_mmpretrain_data_samples():
    from mmpretrain.registry import METRICS
    from mmpretrain.structures import DataSample
    metric = METRICS.build(dict(type='ExpectedCalibrationError'))
    assert isinstance(metric, ExpectedCalibrationError)
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    samples = [DataSample().set_pred_score(torch.tensor(s)).set_gt_label(y)
               .to_dict() for s, y in zip(SCORES, LABELS)]
    metric.process(None, samples[:2])
    metric.process(None, samples[2:])
    got = metric.evaluate(len(samples))
    assert got['calibration/ECE'] == pytest.approx(HAND_ECE, abs=1e-4)
    assert got['calibration/confidence'] == pytest.approx(HAND_CONFIDENCE,
                                                          abs=1e-4)


@pytest.mark.parametrize('scores, labels, match', [
    ([[0.5, 0.5]], [2], 'labels must be class indices'),
    ([[1.5, -0.5]], [0], 'probabilities'),
    ([[float('nan'), 0.5]], [0], 'probabilities'),
    ([0.5, 0.5], [0], r'scores \(N, C\)'),
])
def test_bad_input_is_named(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(torch.tensor(scores), torch.tensor(labels))


def test_metric_without_scores_is_refused():
    metric = ExpectedCalibrationError()
    with pytest.raises(KeyError, match='pred_score'):
        metric.process(None, [dict(pred_label=torch.tensor([0]),
                                   gt_label=torch.tensor([0]))])
    with pytest.raises(ValueError, match='num_bins'):
        ExpectedCalibrationError(num_bins=0)
