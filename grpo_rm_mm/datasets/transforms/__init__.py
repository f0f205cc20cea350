from .loading import (CheckedLoadAnnotations, CheckedLoadImageFromFile,
                      CorruptImageError)

__all__ = [
    'CheckedLoadAnnotations', 'CheckedLoadImageFromFile', 'CorruptImageError'
]
