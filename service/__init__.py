"""Loss Service: PyTorch losses and their gradients over HTTP."""

__version__ = "0.1.0"
