"""Grading: a submitted loss and gradients against the reference torch computes.

Comparison, checks, hints and messages; no HTTP here (routes live in ``service.http``).
"""
