"""What torch cannot tell about each loss: roles, differentiable inputs, formulas, checks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from service.losses import checks, margins, work
from service.losses.catalogue import LossOverrides, Params, Tensors

REDUCTIONS_KL = ("none", "mean", "sum", "batchmean")

DISTANCE_FUNCTIONS = {
    "pairwise": F.pairwise_distance,
    "cosine": lambda x, y: 1.0 - F.cosine_similarity(x, y),
}


def _named_distance(tensors: Tensors, params: Params) -> tuple[Tensors, Params]:
    params = dict(params)
    params["distance_function"] = DISTANCE_FUNCTIONS[params.get("distance_function", "pairwise")]
    return tensors, params


def _scalar_var(tensors: Tensors, params: Params) -> tuple[Tensors, Params]:
    # torch broadcasts a float var as `var * ones_like(input)`; a 0-d tensor it rejects.
    var = tensors["var"]
    if var.dim() == 0:
        tensors = {**tensors, "var": var * torch.ones_like(tensors["input"])}
    return tensors, params


EMPTY_BATCH_NOTE = (
    "On an empty batch (input of shape (0, C)) torch returns uninitialised memory for 'mean' "
    "and 'sum'; the service answers what every other loss answers: NaN for 'mean', 0 for "
    "'sum' (and the empty tensor for 'none')."
)
BOX_REDUCTION = "reduction 'mean' of no boxes is 0, as in torchvision"
BOX_NOTE = (
    "torchvision.ops definition, computed in plain torch; boxes1 are the predictions and "
    "boxes2 the targets, each of shape (..., 4); float16 and bfloat16 boxes are computed in "
    "float32, as torchvision does."
)


def _mean_over(text: str) -> str:
    return f"{text}; reduction 'mean' averages over elements, 'sum' adds them up"


OVERRIDES: dict[str, LossOverrides] = {
    "l1_loss": LossOverrides(
        formula=_mean_over("l_i = w_i * |x_i - y_i|"),
        differentiable=("input", "target"),
        broadcast=("target",),
        aliases=("L1Loss", "mae"),
    ),
    "mse_loss": LossOverrides(
        formula=_mean_over("l_i = w_i * (x_i - y_i)^2"),
        differentiable=("input", "target"),
        broadcast=("target",),
        aliases=("MSELoss", "l2_loss"),
    ),
    "huber_loss": LossOverrides(
        formula=_mean_over(
            "l_i = w_i * (0.5 (x_i - y_i)^2 if |x_i - y_i| < delta else "
            "delta (|x_i - y_i| - 0.5 delta))"
        ),
        differentiable=("input", "target"),
        bounds={"delta": (0.0, None)},
        broadcast=("target",),
        aliases=("HuberLoss",),
    ),
    "smooth_l1_loss": LossOverrides(
        formula=_mean_over(
            "l_i = 0.5 (x_i - y_i)^2 / beta if |x_i - y_i| < beta else |x_i - y_i| - 0.5 beta"
        ),
        differentiable=("input", "target"),
        bounds={"beta": (0.0, None)},
        broadcast=("target",),
        aliases=("SmoothL1Loss",),
    ),
    "cross_entropy": LossOverrides(
        formula="l_n = -w_{y_n} log(softmax(x_n)_{y_n}) for class indices (mean divides by the "
        "sum of w_{y_n} over non-ignored n); l_n = -sum_c w_c p_{n,c} log(softmax(x_n)_c) for "
        "class probabilities; label_smoothing mixes the target with the uniform distribution",
        roles={"target": "class_target"},
        differentiable=("input", "target"),
        bounds={"label_smoothing": (0.0, 1.0)},
        check=checks.class_index_target,
        aliases=("CrossEntropyLoss",),
    ),
    "linear_cross_entropy": LossOverrides(
        formula="logits = input @ linear_weight^T (+ linear_bias), reshaped to (N, C, d_1..d_K) "
        "for a (C, d_1..d_K, H) linear_weight; then cross_entropy(logits, target): l_n = "
        "-w_{y_n} log(softmax(logits_n)_{y_n}) for class indices (ignore_index None means "
        "-100), -sum_c w_c p_{n,c} log(softmax(logits_n)_c) for class probabilities",
        roles={"target": "class_target"},
        differentiable=("input", "linear_weight", "target", "linear_bias"),
        optional_inputs=("linear_bias",),
        bounds={"label_smoothing": (0.0, 1.0)},
        omitted_params={
            "options": "torch's LinearCrossEntropyOptions (the chunked path) is a Python object "
            "holding a torch.dtype, and is not offered: every request takes torch's reference "
            "path (options=None: linear, then cross_entropy).",
        },
        check=checks.linear_class_target,
        work_broadcast=("input",),
        extra_work=work.linear_logits,
        aliases=("LinearCrossEntropyLoss",),
    ),
    "nll_loss": LossOverrides(
        formula="l_n = -w_{y_n} x_{n, y_n} (x holds log-probabilities); mean divides by the sum "
        "of w_{y_n} over non-ignored n",
        roles={"target": "index"},
        check=checks.class_index_target,
        aliases=("NLLLoss",),
    ),
    "binary_cross_entropy": LossOverrides(
        formula=_mean_over(
            "l_i = -w_i (y_i log x_i + (1 - y_i) log(1 - x_i)), each log clamped to >= -100"
        ),
        differentiable=("input", "target"),
        check=checks.probabilities_input,
        broadcast=("weight",),
        aliases=("BCELoss",),
    ),
    "binary_cross_entropy_with_logits": LossOverrides(
        formula=_mean_over(
            "l_i = -w_i (p_i y_i log sigmoid(x_i) + (1 - y_i) log(1 - sigmoid(x_i))), "
            "p = pos_weight (broadcast over the last dimension)"
        ),
        differentiable=("input", "target"),
        broadcast=("weight", "pos_weight"),
        aliases=("BCEWithLogitsLoss",),
    ),
    "kl_div": LossOverrides(
        formula="l_i = y_i (log y_i - x_i), x given as log-probabilities (and y too with "
        "log_target); 'batchmean' divides the sum by the batch size, which is the true KL "
        "divergence, 'mean' by the number of elements",
        differentiable=("input", "target"),
        choices={"reduction": REDUCTIONS_KL},
        broadcast=("target",),
        aliases=("KLDivLoss",),
    ),
    "poisson_nll_loss": LossOverrides(
        formula=_mean_over(
            "l_i = exp(x_i) - y_i x_i with log_input, else x_i - y_i log(x_i + eps); "
            "full adds the Stirling term y log y - y + 0.5 log(2 pi y)"
        ),
        differentiable=("input", "target"),
        broadcast=("target",),
        aliases=("PoissonNLLLoss",),
    ),
    "gaussian_nll_loss": LossOverrides(
        formula=_mean_over(
            "l_i = 0.5 (log(max(var_i, eps)) + (x_i - y_i)^2 / max(var_i, eps)), "
            "plus 0.5 log(2 pi) with full"
        ),
        differentiable=("input", "target", "var"),
        scalar_inputs=("var",),
        adapt=_scalar_var,
        broadcast=("target", "var"),
        aliases=("GaussianNLLLoss",),
    ),
    "soft_margin_loss": LossOverrides(
        formula=_mean_over("l_i = log(1 + exp(-y_i x_i)), y in {1, -1}"),
        broadcast=("target",),
        aliases=("SoftMarginLoss",),
    ),
    "multilabel_soft_margin_loss": LossOverrides(
        formula="l_n = -(1/C) sum_c w_c (y_{n,c} log sigmoid(x_{n,c}) + (1 - y_{n,c}) "
        "log sigmoid(-x_{n,c})); mean over n",
        differentiable=("input", "target"),
        broadcast=("target", "weight"),
        aliases=("MultiLabelSoftMarginLoss",),
    ),
    "multilabel_margin_loss": LossOverrides(
        formula="l_n = sum_{j in targets, i not in targets} max(0, 1 - (x_{n,j} - x_{n,i})) / C; "
        "targets are class indices ending at the first -1",
        roles={"target": "index"},
        check=checks.multilabel_margin_target,
        implementation=margins.multilabel_margin_loss,
        extra_work=work.multilabel_margin_pairs,
        aliases=("MultiLabelMarginLoss",),
        notes=EMPTY_BATCH_NOTE,
    ),
    "multi_margin_loss": LossOverrides(
        formula="l_n = sum_{i != y_n} w_{y_n} max(0, margin - x_{n,y_n} + x_{n,i})^p / C",
        roles={"target": "index"},
        choices={"p": (1, 2)},
        check=checks.multi_margin_target,
        implementation=margins.multi_margin_loss,
        aliases=("MultiMarginLoss",),
        notes=EMPTY_BATCH_NOTE,
    ),
    "hinge_embedding_loss": LossOverrides(
        formula=_mean_over("l_i = x_i if y_i = 1, max(0, margin - x_i) if y_i = -1"),
        broadcast=("target",),
        aliases=("HingeEmbeddingLoss",),
    ),
    "cosine_embedding_loss": LossOverrides(
        formula=_mean_over(
            "l_n = 1 - cos(x1_n, x2_n) if y_n = 1, max(0, cos(x1_n, x2_n) - margin) if y_n = -1"
        ),
        differentiable=("input1", "input2"),
        # target is one label per pair (N), not broadcast against the (N, D) inputs.
        work_broadcast=("input1", "input2"),
        broadcast=("input1", "input2", "target"),
        aliases=("CosineEmbeddingLoss",),
    ),
    "margin_ranking_loss": LossOverrides(
        formula=_mean_over("l_i = max(0, -y_i (x1_i - x2_i) + margin)"),
        differentiable=("input1", "input2", "target"),
        broadcast=("input1", "input2", "target"),
        aliases=("MarginRankingLoss",),
    ),
    "triplet_margin_loss": LossOverrides(
        formula=_mean_over(
            "l_n = max(0, d(a_n, p_n) - d(a_n, n_n) + margin), d the p-norm "
            "distance (+ eps); swap uses min(d(a, n), d(p, n))"
        ),
        differentiable=("anchor", "positive", "negative"),
        broadcast=("anchor", "positive", "negative"),
        aliases=("TripletMarginLoss",),
    ),
    "triplet_margin_with_distance_loss": LossOverrides(
        formula=_mean_over(
            "l_n = max(0, d(a_n, p_n) - d(a_n, n_n) + margin), d the named distance: "
            "pairwise = Euclidean (pairwise_distance), cosine = 1 - cosine "
            "similarity"
        ),
        differentiable=("anchor", "positive", "negative"),
        replaced_params={
            "distance_function": (
                "str",
                "pairwise",
                "The distance d(x, y) by name: 'pairwise' (torch.nn.functional."
                "pairwise_distance, PyTorch's default) or 'cosine' (1 - cosine_similarity).",
            )
        },
        choices={"distance_function": tuple(DISTANCE_FUNCTIONS)},
        adapt=_named_distance,
        broadcast=("anchor", "positive", "negative"),
        aliases=("TripletMarginWithDistanceLoss",),
    ),
    "ctc_loss": LossOverrides(
        formula="l_n = -log sum over alignments of targets_n to log_probs[:input_lengths_n, n] "
        "of the product of their probabilities; 'mean' divides each l_n by target_lengths_n, "
        "then averages over the batch",
        roles={"targets": "index", "input_lengths": "index", "target_lengths": "index"},
        differentiable=("log_probs",),
        check=checks.ctc_indices,
        work_broadcast=("log_probs",),
        extra_work=work.ctc_lattice,
        aliases=("CTCLoss",),
    ),
    "generalized_box_iou_loss": LossOverrides(
        formula="l = 1 - GIoU = 1 - (IoU - (|C| - |A u B|) / |C|), boxes (x1, y1, x2, y2), "
        "IoU = |A n B| / (|A u B| + eps), C the smallest box enclosing A and B "
        f"(+ eps in its area's denominator); {BOX_REDUCTION}",
        differentiable=("boxes1", "boxes2"),
        broadcast=("boxes2",),
        aliases=("GIoULoss", "giou_loss"),
        notes=BOX_NOTE,
    ),
    "distance_box_iou_loss": LossOverrides(
        formula="l = 1 - IoU + d^2 / c^2, boxes (x1, y1, x2, y2), IoU = |A n B| / (|A u B| + "
        "eps), d the distance between the boxes' centres, c the diagonal of the smallest box "
        f"enclosing both (c^2 + eps); {BOX_REDUCTION}",
        differentiable=("boxes1", "boxes2"),
        broadcast=("boxes2",),
        aliases=("DIoULoss", "diou_loss"),
        notes=BOX_NOTE,
    ),
    "complete_box_iou_loss": LossOverrides(
        formula="l = 1 - IoU + d^2 / c^2 + alpha v, the DIoU loss plus v = 4 / pi^2 "
        "(atan(w_gt / h_gt) - atan(w / h))^2 with alpha = v / (1 - IoU + v + eps) taken as a "
        f"constant (no gradient flows through alpha); {BOX_REDUCTION}",
        differentiable=("boxes1", "boxes2"),
        broadcast=("boxes2",),
        aliases=("CIoULoss", "ciou_loss"),
        notes=BOX_NOTE,
    ),
    "sigmoid_focal_loss": LossOverrides(
        formula="l_i = alpha_t (1 - p_t)^gamma BCEWithLogits(x_i, y_i), p = sigmoid(x), "
        "p_t = p y + (1 - p)(1 - y), alpha_t = alpha y + (1 - alpha)(1 - y)",
        differentiable=("input", "target"),
        aliases=("SigmoidFocalLoss", "focal_loss"),
    ),
}

GENERIC = LossOverrides(formula="see the PyTorch documentation of this function")
