#!/usr/bin/env python3
"""PaddleSeg baseline for `deno task bench train|eval` (bench/train.ts, bench/eval.ts), on CPU.

PaddleSeg's own `HRNetW48Contrast` (any HRNet width as backbone) with the losses of the seed config,
`CrossEntropyLoss` on the upsampled logits and `PixelContrastCrossEntropyLoss` on {seg, embed}, combined as
PaddleSeg's `loss_computation` does (coef [1, 0.1]), and `paddle.optimizer.Momentum(0.01, 0.9,
weight_decay=2e-4)`. Inference uses PaddleSeg's `core.infer.inference` (whole or slide).

Same line protocol as bench/torch_train.py:
  in:  {"model": "HRNet_W48", "n": 1, "h": 512, "w": 1024, "threads": 2, "inputs": "..."}
  out: {"paddlepaddle": "...", "paddleseg": "...", "params": ..., "threads": 2}
  in:  {"step": 1}  -> {"seconds": s, "loss": l}
  in:  {"infer": "whole"|"slide", "crop": [w, h], "stride": [w, h]}  -> {"seconds": s}
  in:  {"quit": 1}  -> {"max_rss": bytes}
"""
import json
import os
import sys
import time

from _proto import peak_rss, reply


def main() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        import cv2  # noqa: F401 - must come before paddle (zlib clash: segfault in inflateReset2 otherwise)
        import numpy as np
        import paddle
        import paddleseg
        from paddleseg.core.infer import inference
        from paddleseg.core.train import loss_computation
        from paddleseg.models import HRNetW48Contrast
        from paddleseg.models import backbones
        from paddleseg.models.losses import CrossEntropyLoss, PixelContrastCrossEntropyLoss
    except Exception as e:  # noqa: BLE001 - any import problem goes back to the caller
        reply({"error": f"cannot import paddle/paddleseg: {e.__class__.__name__}: {e}"})
        return
    paddle.set_device("cpu")
    threads = int(job.get("threads", 0)) or len(os.sched_getaffinity(0))
    try:
        paddle.set_num_threads(threads)  # absent in some versions; OMP_NUM_THREADS is set by the caller too
    except AttributeError:
        pass
    paddle.seed(int(job.get("seed", 0)))
    backbone = getattr(backbones, job["model"])()
    model = HRNetW48Contrast(bb_channels=sum(backbone.feat_channels), num_classes=int(job.get("classes", 19)),
                             backbone=backbone, drop_prob=0.1, proj_dim=int(job.get("proj", 720)))
    params = sum(int(np.prod(p.shape)) for p in model.parameters())
    losses = {"types": [CrossEntropyLoss(), PixelContrastCrossEntropyLoss(temperature=0.1, base_temperature=0.07,
                                                                             ignore_index=255, max_samples=1024,
                                                                             max_views=100)],
              "coef": [1, 0.1]}
    opt = paddle.optimizer.Momentum(learning_rate=0.01, momentum=0.9, weight_decay=2e-4,
                                    parameters=model.parameters())
    n, h, w = int(job["n"]), int(job["h"]), int(job["w"])
    with open(job["inputs"], "rb") as f:
        img = np.frombuffer(f.read(4 * n * h * w * 3), dtype="<f4").reshape(n, h, w, 3)
        lab = np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h, w)
    x = paddle.to_tensor(img.transpose(0, 3, 1, 2).copy())
    y = paddle.to_tensor(lab.astype(np.int64))
    reply({"paddlepaddle": paddle.__version__, "paddleseg": paddleseg.__version__, "params": params,
           "threads": threads})

    def step():
        model.train()
        logits_list = model(x)
        loss = sum(loss_computation(logits_list, y, None, losses))
        loss.backward()
        opt.step()
        opt.clear_grad()
        return float(loss.numpy())

    def infer(mode, crop, stride):
        model.eval()
        with paddle.no_grad():
            logit = inference(model, x, is_slide=mode == "slide", crop_size=crop, stride=stride)
            paddle.argmax(logit, axis=1).numpy()

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        t0 = time.perf_counter()
        if "step" in cmd:
            loss = step()
            reply({"seconds": time.perf_counter() - t0, "loss": loss})
        elif "infer" in cmd:
            infer(cmd["infer"], cmd.get("crop"), cmd.get("stride"))
            reply({"seconds": time.perf_counter() - t0})
        else:
            reply({"error": f"unknown command {cmd}"})
    reply({"max_rss": peak_rss()})


if __name__ == "__main__":
    main()
