"""Split functions for inputs that cannot be cut along a dim (MultiStreamModule's split_fn)."""
from ... import _C


def embedding_bag_split(args, kwargs, num_streams):
    """EmbeddingBag inputs `(indices, offsets, *rest)`: flat 1-D indices and one offset per bag.
    Each stream gets whole bags: its slice of indices and its offsets rebased to 0; other
    arguments go to every stream unchanged. Outputs concatenate along dim 0 (the default)."""
    if len(args) < 2:
        raise ValueError("embedding_bag_split: expected (indices, offsets, ...) positional arguments")
    parts = _C.split_embedding_bag(args[0], args[1], num_streams)
    return [((indices, offsets) + tuple(args[2:]), dict(kwargs)) for indices, offsets in parts]
