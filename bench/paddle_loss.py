"""Baseline for `deno task bench loss`: PaddleSeg's PixelContrastCrossEntropyLoss on CPU.

Reads the labels and stride-4 logits that bench/loss.ts wrote (so both sides sample from the same label
maps and predictions), makes random unit embeddings, and times forward + backward (gradient w.r.t. the
embeddings) per call. Prints one JSON object on stdout; on any failure prints {"error": "..."}.

    <venv>/bin/python bench/paddle_loss.py --inputs bench/out/loss_inputs.bin --dims 720,256 --iters 10
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--dims", default="720,256")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    try:
        import numpy as np
        import paddle
        import paddleseg
        from paddleseg.models.losses import PixelContrastCrossEntropyLoss
    except Exception as e:  # noqa: BLE001 - report any import problem to the caller
        print(json.dumps({"error": f"import failed: {e.__class__.__name__}: {e}"}))
        return
    paddle.set_device("cpu")
    with open(a.inputs, "rb") as f:
        head = json.loads(f.readline())
        n, H, W, h, w, C = (head[k] for k in ("n", "H", "W", "h", "w", "C"))
        labels = np.frombuffer(f.read(n * H * W), dtype=np.uint8).reshape(n, H, W).astype(np.int64)
        logits = np.frombuffer(f.read(4 * n * h * w * C), dtype="<f4").reshape(n, h, w, C)
    label_t = paddle.to_tensor(labels)
    seg_t = paddle.to_tensor(logits.transpose(0, 3, 1, 2).copy())
    crit = PixelContrastCrossEntropyLoss()  # seed defaults
    rs = np.random.RandomState(0)
    out = {"paddlepaddle": paddle.__version__, "paddleseg": paddleseg.__version__,
           "threads": os.cpu_count(), "ms": {}, "loss": {}}
    for d in (int(x) for x in a.dims.split(",")):
        e = rs.randn(n, d, h, w).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        emb = paddle.to_tensor(e, stop_gradient=False)
        times = []
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            loss = crit({"seg": seg_t, "embed": emb}, label_t)
            loss.backward()
            _ = emb.grad.numpy()[0, 0, 0, 0]  # materialise
            dt = (time.perf_counter() - t0) * 1000
            emb.clear_gradient()
            if i >= a.warmup:
                times.append(dt)
        times.sort()
        out["ms"][str(d)] = times[len(times) // 2]
        out["loss"][str(d)] = float(loss.numpy())
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"error": f"{e.__class__.__name__}: {e}"}))
        sys.exit(0)
