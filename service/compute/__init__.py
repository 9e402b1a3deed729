"""Torch computation: devices, and evaluating a loss with its gradients."""
