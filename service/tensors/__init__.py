"""Tensors on the wire: the four JSON forms, their dtypes, and the non-finite strings."""
