#!/usr/bin/env python3
"""PyTorch baseline for `deno task bench train|eval|gpu` (bench/train.ts, bench/eval.ts, bench/gpu.ts).

The same model as lib/models' HRNetW48Contrast: timm's HRNet features (strides 4-32, `feature_location=''`,
no ImageNet head) upsampled and concatenated, then PaddleSeg's heads: cls_head = conv3x3(+bias) BN ReLU
Dropout2d(0.1) conv1x1(no bias), proj_head = conv1x1(+bias) BN ReLU conv1x1(+bias), L2-normalised. Loss =
CE(ignore 255) on the bilinearly upsampled logits + 0.1 x the pixel contrast loss with ContrastiveSeg's
hard-anchor sampler (max_samples 1024, max_views 100, temperature 0.1, base temperature 0.07), written here
from the paper's algorithm. SGD momentum 0.9, weight decay 2e-4 (coupled, as Paddle's Momentum).

A line protocol on stdin/stdout, so the Deno side can interleave its steps with ours repeat by repeat:

  in:  {"model": "HRNet_W48", "n": 1, "h": 512, "w": 1024, "threads": 2, "device": "cpu",
        "inputs": "bench/out/train_inputs_....bin",                  (image float32 NCHW-free: NHWC, labels uint8)
        "channels_last": false, "autocast": null}                    (optional: "autocast": "bf16")
  out: {"torch": "...", "timm": "...", "params": 65.9e6, "threads": 2, "device": "cpu", "mode": "fp32",
        "bf16_supported": true}

Modes, as a user trains on a CPU today: fp32; fp32 with `channels_last` (model and input in NHWC memory
format, oneDNN's preferred layout); `torch.autocast(device, dtype=torch.bfloat16)` around forward and loss
with channels_last (convolutions and matmuls in bf16, weights and optimizer in fp32).
  in:  {"step": 1}                       -> {"seconds": s, "loss": l}     one timed train step
  in:  {"step": 1, "ce_only": 1}         -> the same with the CE loss alone (no projection head)
  in:  {"infer": "whole"|"slide", "crop": [w, h], "stride": [w, h]}  -> {"seconds": s}   eval forward
  in:  {"quit": 1}                       -> {"max_rss": bytes, "cuda_peak": bytes|null}

If torch or timm cannot be imported, the first reply is {"error": "..."}.
"""
import json
import os
import sys
import time

from _proto import peak_rss, reply


def main() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        import numpy as np
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        import timm
    except Exception as e:  # noqa: BLE001 - any import problem goes back to the caller
        reply({"error": f"cannot import torch/timm: {e.__class__.__name__}: {e}"})
        return

    device = torch.device(job.get("device", "cpu"))
    threads = int(job.get("threads", 0)) or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(int(job.get("seed", 0)))
    timm_name = {"HRNet_W48": "hrnet_w48", "HRNet_W18_Small_V2": "hrnet_w18_small_v2",
                 "HRNet_W18": "hrnet_w18", "HRNet_W18_Small_V1": "hrnet_w18_small"}[job["model"]]
    num_classes, proj_dim, ignore = int(job.get("classes", 19)), int(job.get("proj", 720)), 255

    class ContrastModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = timm.create_model(timm_name, pretrained=False, features_only=True,
                                              feature_location="", out_indices=(1, 2, 3, 4))
            ch = sum(self.backbone.feature_info.channels())
            self.cls_head = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=True), nn.BatchNorm2d(ch),
                                          nn.ReLU(inplace=True), nn.Dropout2d(0.1),
                                          nn.Conv2d(ch, num_classes, 1, bias=False))
            self.proj_head = nn.Sequential(nn.Conv2d(ch, ch, 1, bias=True), nn.BatchNorm2d(ch),
                                           nn.ReLU(inplace=True), nn.Conv2d(ch, proj_dim, 1, bias=True))

        def forward(self, x, embed=True):
            fs = self.backbone(x)
            h, w = fs[0].shape[2:]
            feats = torch.cat([fs[0]] + [F.interpolate(f, (h, w), mode="bilinear", align_corners=False)
                                         for f in fs[1:]], 1)
            seg = self.cls_head(feats)
            up = F.interpolate(seg, x.shape[2:], mode="bilinear", align_corners=False)
            if not embed:
                return up
            return up, seg, F.normalize(self.proj_head(feats), p=2, dim=1)

    def hard_anchor_sampling(X, y_hat, y, max_samples=1024, max_views=100):
        """ContrastiveSeg's sampler: per image, classes with > max_views pixels; half hard, half easy."""
        batch, dim = X.shape[0], X.shape[-1]
        classes = []
        for i in range(batch):
            cs = [c for c in torch.unique(y_hat[i]).tolist() if c != ignore]
            classes.append([c for c in cs if int((y_hat[i] == c).sum()) > max_views])
        total = sum(len(c) for c in classes)
        if total == 0:
            return None, None
        n_view = min(max_samples // total, max_views)
        X_ = torch.zeros((total, n_view, dim), dtype=X.dtype, device=X.device)
        y_ = torch.zeros((total,), dtype=torch.float, device=X.device)
        k = 0
        for i in range(batch):
            for c in classes[i]:
                hard = ((y_hat[i] == c) & (y[i] != c)).nonzero().squeeze(1)
                easy = ((y_hat[i] == c) & (y[i] == c)).nonzero().squeeze(1)
                nh, ne = hard.shape[0], easy.shape[0]
                if nh >= n_view / 2 and ne >= n_view / 2:
                    kh = n_view // 2
                    ke = n_view - kh
                elif nh >= n_view / 2:
                    ke = ne
                    kh = n_view - ke
                else:
                    kh = nh
                    ke = n_view - kh
                hard = hard[torch.randperm(nh, device=X.device)[:kh]]
                easy = easy[torch.randperm(ne, device=X.device)[:ke]]
                X_[k] = X[i, torch.cat((hard, easy))]
                y_[k] = c
                k += 1
        return X_, y_

    def contrastive(feats_, labels_, temperature=0.1, base_temperature=0.07):
        anchors, n_view = feats_.shape[0], feats_.shape[1]
        labels_ = labels_.view(-1, 1)
        mask = torch.eq(labels_, labels_.T).float()
        feat = torch.cat(torch.unbind(feats_, dim=1), dim=0)
        logits = feat @ feat.T / temperature
        logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
        mask = mask.repeat(n_view, n_view)
        neg_mask = 1 - mask
        eye = torch.ones_like(mask).scatter_(1, torch.arange(anchors * n_view, device=mask.device).view(-1, 1), 0)
        mask = mask * eye
        exp_logits = torch.exp(logits)
        neg = (exp_logits * neg_mask).sum(1, keepdim=True)
        log_prob = logits - torch.log(exp_logits + neg)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
        return (-(temperature / base_temperature) * mean_log_prob_pos).mean()

    def contrast_loss(emb, labels, seg):
        n, d, h, w = emb.shape
        lab = F.interpolate(labels.unsqueeze(1).float(), (h, w), mode="nearest").squeeze(1).long().view(n, -1)
        pred = seg.argmax(1).view(n, -1)
        X = emb.permute(0, 2, 3, 1).reshape(n, -1, d)
        X_, y_ = hard_anchor_sampling(X, lab, pred)
        return emb.sum() * 0 if X_ is None else contrastive(X_, y_)

    channels_last = bool(job.get("channels_last"))
    amp = job.get("autocast")
    if amp not in (None, "bf16"):
        reply({"error": f"unknown autocast dtype {amp!r} (only bf16)"})
        return
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    mode = ("bf16" if amp else "fp32") + ("+CL" if channels_last else "")
    bf16_supported = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()) \
        if device.type == "cpu" else True

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")

    model = ContrastModel().to(device, memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    n, h, w = int(job["n"]), int(job["h"]), int(job["w"])
    with open(job["inputs"], "rb") as f:
        img = np.frombuffer(f.read(4 * n * h * w * 3), dtype="<f4").reshape(n, h, w, 3)
        lab = np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h, w)
    x = torch.from_numpy(img.transpose(0, 3, 1, 2).copy()).to(device).contiguous(memory_format=fmt)
    y = torch.from_numpy(lab.astype(np.int64)).to(device)
    reply({"torch": torch.__version__, "timm": timm.__version__, "params": params,
           "threads": torch.get_num_threads(), "device": str(device), "mode": mode,
           "bf16_supported": bf16_supported,
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None})

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(ce_only=False):
        model.train()
        opt.zero_grad(set_to_none=True)
        if ce_only:  # the seg branch alone (what bench gpu can time on WebGPU), projection head skipped
            with autocast():
                loss = F.cross_entropy(model(x, embed=False), y, ignore_index=ignore)
            loss.backward()
            opt.step()
            return float(loss.item())
        with autocast():
            up, seg, emb = model(x)
            loss = F.cross_entropy(up, y, ignore_index=ignore) + 0.1 * contrast_loss(emb, y, seg)
        loss.backward()
        opt.step()
        return float(loss.item())

    def infer(mode, crop, stride):
        model.eval()
        with torch.no_grad():
            if mode == "whole":
                out = model(x, embed=False)
            else:  # PaddleSeg's slide_inference grid
                cw, ch = crop
                sw, sh = stride
                rows = max(-(-(h - ch) // sh), 0) + 1
                cols = max(-(-(w - cw) // sw), 0) + 1
                out = torch.zeros((n, num_classes, h, w), device=device)
                count = torch.zeros((1, 1, h, w), device=device)
                for r in range(rows):
                    for c in range(cols):
                        h1, w1 = r * sh, c * sw
                        h2, w2 = min(h1 + ch, h), min(w1 + cw, w)
                        h1, w1 = max(h2 - ch, 0), max(w2 - cw, 0)
                        out[:, :, h1:h2, w1:w2] += model(x[:, :, h1:h2, w1:w2], embed=False)
                        count[:, :, h1:h2, w1:w2] += 1
                out = out / count
            out.argmax(1).cpu()

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        sync()
        t0 = time.perf_counter()
        if "step" in cmd:
            loss = step(bool(cmd.get("ce_only")))
            sync()
            reply({"seconds": time.perf_counter() - t0, "loss": loss})
        elif "infer" in cmd:
            infer(cmd["infer"], cmd.get("crop"), cmd.get("stride"))
            sync()
            reply({"seconds": time.perf_counter() - t0})
        else:
            reply({"error": f"unknown command {cmd}"})
    reply({"max_rss": peak_rss(),
           "cuda_peak": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None})


if __name__ == "__main__":
    main()
