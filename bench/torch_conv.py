#!/usr/bin/env python3
"""PyTorch CPU baseline for `deno task bench backends` (bench/backends.ts): conv2d forward + backward.

A small line protocol on stdin/stdout, so the Deno side can interleave PyTorch steps with its own backends'
steps repeat by repeat (the machine's load then affects both sides alike):

  in:  {"shapes": [{"n": 1, "h": 128, "w": 256, "cin": 48, "cout": 48, "k": 3, "stride": 1, "pad": 1}, ...]}
  out: {"torch": "1.13.0a0", "mkldnn": true, "max_threads": 2}
  in:  {"shape": 0, "threads": 1}          -> out: {"seconds": 0.0123}   (one timed step, after its warm-up)
  in:  {"quit": true}

One step: y = conv2d(x, w) with a fresh weight tensor (as after an optimizer update), then y.backward(dy),
which computes dx and dW. NCHW float32, no bias (HRNet's convs are followed by batch norm).
If torch cannot be imported, the first output line is {"error": "..."} and the script exits.
"""
import json
import sys
import time

from _proto import reply


def main() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        import torch
    except ImportError as e:
        reply({"error": f"cannot import torch: {e}"})
        return
    torch.manual_seed(0)
    max_threads = torch.get_num_threads()
    try:
        import os

        max_threads = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    reply({"torch": torch.__version__, "mkldnn": bool(torch.backends.mkldnn.is_available()),
           "max_threads": max_threads})

    cases = []
    for s in job["shapes"]:
        x = torch.randn(s["n"], s["cin"], s["h"], s["w"], requires_grad=True)
        w0 = torch.randn(s["cout"], s["cin"], s["k"], s["k"]) * 0.05
        ho = (s["h"] + 2 * s["pad"] - s["k"]) // s["stride"] + 1
        wo = (s["w"] + 2 * s["pad"] - s["k"]) // s["stride"] + 1
        cases.append((s, x, w0, torch.randn(s["n"], s["cout"], ho, wo)))
    warmed = set()

    def step(i: int) -> None:
        s, x, w0, dy = cases[i]
        w = w0.clone().requires_grad_(True)
        y = torch.nn.functional.conv2d(x, w, stride=s["stride"], padding=s["pad"])
        y.backward(dy)
        x.grad = None

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        i, threads = int(cmd["shape"]), int(cmd["threads"])
        torch.set_num_threads(threads)
        if (i, threads) not in warmed:
            for _ in range(2):
                step(i)
            warmed.add((i, threads))
        t0 = time.perf_counter()
        step(i)
        reply({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
