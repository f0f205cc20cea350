"""Checkpoints that do not fit the model are refused, naming file and keys."""
import pytest
from torch import nn

from grpo_rm_mm.utils import CheckpointMismatchError, check_checkpoint_fits


class Net(nn.Module):

    def __init__(self, classes=3, width=4):
        super().__init__()
        self.backbone = nn.Linear(2, width)
        self.bn = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, classes)

    def test_step(self, data):  # what BaseTTAModel asks of its module
        return data


def test_matching_checkpoint_passes_ddp_prefix_stripped():
    state = {f'module.{k}': v for k, v in Net().state_dict().items()}
    check_checkpoint_fits(Net(), dict(state_dict=state), 'a.pth',
                          complete=True)


def test_partial_checkpoint_is_fine_for_training_not_for_evaluation():
    backbone_only = {k: v for k, v in Net().state_dict().items()
                     if k.startswith('backbone.')}
    check_checkpoint_fits(Net(), backbone_only, 'bb.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r'checkpoint bb.pth .*6 weight\(s\) of the '
                       r'model are not in the checkpoint: bn.weight; '
                       r'bn.bias; bn.running_mean; bn.running_var; '
                       r'head.weight; head.bias\.'):
        check_checkpoint_fits(Net(), backbone_only, 'bb.pth', complete=True)


def test_bn_counter_may_be_missing():
    state = Net().state_dict()
    del state['bn.num_batches_tracked']
    check_checkpoint_fits(Net(), state, 'old.pth', complete=True)


@pytest.mark.parametrize('complete', [False, True])
def test_shape_mismatch_is_refused_in_both_modes(complete):
    state = dict(state_dict=Net(classes=5).state_dict())
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_fits(Net(), state, '/w/five.pth', complete)
    message = str(info.value)
    assert message.startswith('checkpoint /w/five.pth does not fit')
    assert 'head.weight: checkpoint [5, 4] vs model [3, 4]' in message
    assert 'head.bias: checkpoint [5] vs model [3]' in message
    assert 'backbone' not in message


def test_long_lists_are_cut_short():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    wide = nn.Sequential(*[nn.Linear(3, 3) for _ in range(12)])
    with pytest.raises(CheckpointMismatchError,
                       match=r'24 weight\(s\) .*; \.\.\. and 14 more'):
        check_checkpoint_fits(model, wide.state_dict(), 'w.pth')


def test_wrapped_and_tta_models_are_unwrapped():
    from mmengine.model import BaseTTAModel

    class TTA(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return data_samples_list

    tta = TTA(module=Net())
    check_checkpoint_fits(tta, Net().state_dict(), 'a.pth', complete=True)
    with pytest.raises(CheckpointMismatchError, match='head.weight'):
        check_checkpoint_fits(tta, Net(classes=4).state_dict(), 'a.pth')
