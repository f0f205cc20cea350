from .image_size_check_hook import (ImageSizeCheckHook, ImageSizeError,
                                    check_equal_image_sizes)
from .old_model_hook import GRPOOldModelHook
from .random_state_hook import (RandomStateHook, capture_random_states,
                                restore_random_states, seed_train_samples)

__all__ = [
    'GRPOOldModelHook', 'ImageSizeCheckHook', 'ImageSizeError',
    'RandomStateHook', 'check_equal_image_sizes', 'capture_random_states',
    'restore_random_states', 'seed_train_samples'
]
