"""What our PaddleSeg drivers (train.py, val.py) and the agreement scripts (tests/export/) share.

1. cv2 is imported before paddle: the other order crashes in zlib (inflateReset2) with these wheels.
2. PaddleSeg 2.8.0, the newest PaddleSeg wheel on PyPI, predates PaddleSeg's fixes for the 0-D tensors of
   Paddle >= 2.5 (Paddle 2.6.2 is the oldest Paddle on PyPI), which break it twice:
   - `paddleseg.core.train` reads every loss as a one-element array (`l[0]`) when it logs, and stops with
     "IndexError: too many indices for array: array is 0-dimensional" at the first log line;
   - `paddleseg.utils.metrics.calculate_area` concatenates 0-D per-class sums, and evaluation stops with
     "The axis is expected to be in range of [0, 0)".
   PaddleSeg's release/2.8 branch fixed both (PRs #3505 and #3356); a checkout of that branch needs none of
   this. `apply_fixes` makes the wheel behave like it when, and only when, Paddle returns 0-D tensors; no
   value changes (losses keep their value in a [1]-shaped tensor; the areas are the same counts).
"""
import cv2  # noqa: F401  (must precede paddle, see above)
import numpy as np
import paddle

_SPECIAL_LOSSES = ("BCELoss", "MixedLoss", "KLLoss")  # core.train dispatches on these class names


def paddle_has_0d_tensors():
    return paddle.sum(paddle.ones([2])).ndim == 0


class OneElementLoss(paddle.nn.Layer):
    """A loss whose value is returned as a [1]-shaped tensor, as PaddleSeg 2.8.0's trainer indexes it."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, *args):
        return self.loss(*args).reshape([1])


def one_element_losses(losses):
    """`losses` as SegBuilder.loss makes it ({'types': [...], 'coef': [...]}), each type wrapped."""
    types = [
        t if t.__class__.__name__ in _SPECIAL_LOSSES else OneElementLoss(t)
        for t in losses["types"]
    ]
    return {**losses, "types": types}


def calculate_area(pred, label, num_classes, ignore_index=255):
    """paddleseg.utils.metrics.calculate_area without the concat of 0-D tensors: per-class pixel counts of
    the prediction (where the label is not ignored), of the label, and of their intersection, int64."""
    p = pred.numpy().astype(np.int64).reshape(-1)
    lab = label.numpy().astype(np.int64).reshape(-1)
    if p.shape != lab.shape:
        raise ValueError("Shape of `pred` and `label should be equal, but there are {} and {}.".format(
            pred.shape, label.shape))
    valid = lab != ignore_index
    p_ok = valid & (p >= 0) & (p < num_classes)
    lab_ok = (lab >= 0) & (lab < num_classes)
    pred_area = np.bincount(p[p_ok], minlength=num_classes)[:num_classes]
    label_area = np.bincount(lab[lab_ok], minlength=num_classes)[:num_classes]
    intersect_area = np.bincount(p[p_ok & lab_ok & (p == lab)], minlength=num_classes)[:num_classes]
    as_tensor = lambda a: paddle.to_tensor(a.astype(np.int64))  # noqa: E731
    return as_tensor(intersect_area), as_tensor(pred_area), as_tensor(label_area)


def apply_fixes():
    """Installs the metrics fix when Paddle has 0-D tensors; returns whether it did (losses: see above)."""
    if not paddle_has_0d_tensors():
        return False
    from paddleseg.utils import metrics
    metrics.calculate_area = calculate_area
    return True
