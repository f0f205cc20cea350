from .old_model_hook import GRPOOldModelHook

__all__ = ['GRPOOldModelHook']
