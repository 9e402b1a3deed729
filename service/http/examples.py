"""One valid request per loss: shown in the OpenAPI document, and run by the tests."""

from __future__ import annotations

from typing import Any

_PRED = [1.5, 2.0, 3.2]
_TRUE = [1.0, 2.5, 2.8]
_LOGITS = [[1.2, 0.4, -0.5, 2.1, 0.3], [0.8, 1.9, -1.2, 0.4, 1.1]]
_SIGNS = [1, -1, 1]

LOSS_EXAMPLES: dict[str, dict[str, Any]] = {
    "l1_loss": {"input": _PRED, "target": _TRUE, "grad": True},
    "mse_loss": {"input": _PRED, "target": _TRUE, "grad": ["input"]},
    "huber_loss": {"input": _PRED, "target": _TRUE, "params": {"delta": 0.5}, "grad": True},
    "smooth_l1_loss": {"input": _PRED, "target": _TRUE, "params": {"beta": 0.5}},
    "cross_entropy": {
        "input": _LOGITS,
        "target": [3, 1],
        "params": {
            "reduction": "mean",
            "weight": [0.1, 0.2, 0.3, 0.2, 0.2],
            "label_smoothing": 0.1,
        },
        "grad": ["input"],
    },
    "nll_loss": {
        "input": [[-1.2, -0.6, -1.6], [-0.3, -2.1, -1.9]],
        "target": [1, 0],
        "grad": True,
    },
    "binary_cross_entropy": {
        "input": [0.8, 0.2, 0.6, 0.9],
        "target": [1, 0, 1, 1],
        "params": {"weight": [1, 2, 1, 1]},
        "grad": ["input"],
    },
    "binary_cross_entropy_with_logits": {
        "input": [1.5, -1.2, 0.4, 2.1],
        "target": [1, 0, 1, 1],
        "params": {"pos_weight": [2.0]},
        "grad": ["input"],
    },
    "kl_div": {
        "input": [[-1.2, -0.9, -1.2]],
        "target": [[0.2, 0.5, 0.3]],
        "params": {"reduction": "batchmean"},
        "grad": ["input"],
    },
    "poisson_nll_loss": {"input": [0.5, 1.0, 2.0], "target": [1, 2, 4], "grad": ["input"]},
    "gaussian_nll_loss": {"input": _PRED, "target": _TRUE, "var": [0.5, 1.0, 2.0], "grad": True},
    "soft_margin_loss": {"input": [0.3, -1.2, 2.0], "target": _SIGNS, "grad": True},
    "multilabel_soft_margin_loss": {
        "input": [[0.3, -1.2, 2.0], [1.1, 0.2, -0.4]],
        "target": [[1, 0, 1], [0, 1, 0]],
        "grad": ["input"],
    },
    "multilabel_margin_loss": {
        "input": [[0.1, 0.2, 0.4, 0.8]],
        "target": [[3, 0, -1, 1]],
        "grad": True,
    },
    "multi_margin_loss": {
        "input": [[0.1, 0.2, 0.4, 0.8], [0.5, 0.1, 0.3, 0.2]],
        "target": [3, 0],
        "params": {"margin": 1.0, "p": 1},
        "grad": True,
    },
    "hinge_embedding_loss": {"input": [0.3, 1.2, 0.5], "target": _SIGNS, "grad": True},
    "cosine_embedding_loss": {
        "input1": [[1.0, 0.5, -0.2], [0.3, 0.3, 0.9], [0.0, 1.0, 0.0]],
        "input2": [[0.9, 0.4, 0.0], [-0.3, 0.1, 0.5], [1.0, 0.0, 0.0]],
        "target": _SIGNS,
        "params": {"margin": 0.1},
        "grad": True,
    },
    "margin_ranking_loss": {
        "input1": [0.8, 0.1, 0.5],
        "input2": [0.3, 0.4, 0.9],
        "target": _SIGNS,
        "params": {"margin": 0.2},
        "grad": ["input1", "input2"],
    },
    "triplet_margin_loss": {
        "anchor": [[0.0, 1.0], [1.0, 1.0]],
        "positive": [[0.1, 0.9], [1.2, 0.8]],
        "negative": [[1.0, 0.0], [1.1, 1.1]],
        "params": {"margin": 1.0, "p": 2},
        "grad": True,
    },
    "triplet_margin_with_distance_loss": {
        "anchor": [[0.0, 1.0], [1.0, 1.0]],
        "positive": [[0.1, 0.9], [1.2, 0.8]],
        "negative": [[1.0, 0.0], [1.1, 1.1]],
        "params": {"distance_function": "cosine", "margin": 0.5},
        "grad": True,
    },
    "ctc_loss": {
        "log_probs": {
            "shape": [4, 1, 3],
            "dtype": "float32",
            "data": [-1.1, -0.9, -1.3, -0.7, -1.5, -1.2, -1.0, -1.4, -0.9, -0.8, -1.2, -1.4],
        },
        "targets": [[1, 2]],
        "input_lengths": [4],
        "target_lengths": [2],
        "grad": True,
    },
    "sigmoid_focal_loss": {
        "input": [1.5, -1.2, 0.4, 2.1],
        "target": [1, 0, 1, 1],
        "params": {"alpha": 0.25, "gamma": 2.0, "reduction": "mean"},
        "grad": ["input"],
    },
    "linear_cross_entropy": {
        "input": [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]],
        "linear_weight": [[0.1, 0.2, -0.1], [0.4, -0.3, 0.2], [-0.2, 0.1, 0.3], [0.0, 0.5, 0.1]],
        "linear_bias": [0.1, 0.0, -0.1, 0.2],
        "target": [2, 0],
        "grad": True,
    },
    "generalized_box_iou_loss": {
        "boxes1": [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]],
        "boxes2": [[0.5, 0.5, 2.5, 2.0], [4.0, 4.0, 5.0, 6.0]],
        "params": {"reduction": "mean"},
        "grad": ["boxes1"],
    },
    "distance_box_iou_loss": {
        "boxes1": [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]],
        "boxes2": [[0.5, 0.5, 2.5, 2.0], [4.0, 4.0, 5.0, 6.0]],
        "grad": ["boxes1"],
    },
    "complete_box_iou_loss": {
        "boxes1": [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]],
        "boxes2": [[0.5, 0.5, 2.5, 2.0], [4.0, 4.0, 5.0, 6.0]],
        "params": {"reduction": "sum"},
        "grad": ["boxes1"],
    },
}
