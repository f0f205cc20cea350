from .old_model_hook import GRPOOldModelHook
from .random_state_hook import (RandomStateHook, capture_random_states,
                                restore_random_states, seed_train_samples)

__all__ = [
    'GRPOOldModelHook', 'RandomStateHook', 'capture_random_states',
    'restore_random_states', 'seed_train_samples'
]
