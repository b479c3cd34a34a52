"""PyTorch side of `deno task bench ceiling`: the HRNet-like branch stack of bench/ceiling_tf.py, trained in
fp32 + channels_last and in bf16 autocast + channels_last (what a PyTorch user picks on a bf16 CPU).

  argv[1]: JSON {"n": 2, "h": 256, "w": 512, "width": 18, "blocks": 4, "steps": 8, "threads": 2}
  stdout (last line): JSON {"versions": {...}, "seconds": {"pytorch fp32+CL": [...], "pytorch bf16+CL": [...]}}

The network (identical in bench/ceiling_tf.py): stem conv3x3 s2 3->64, conv3x3 s2 64->64, conv1x1 64->width
(each + BN + ReLU); four branches of `blocks` basic blocks (conv3x3-BN-ReLU-conv3x3-BN + identity, ReLU) at
width x 1, 2, 4, 8 channels and 1/4 .. 1/32 resolution, joined by conv3x3 s2 + BN + ReLU transitions; the three
lower branches upsampled (bilinear) to 1/4, concatenated, a 1x1 conv to 19 classes, upsampled x4, cross-entropy;
SGD momentum 0.9. HRNet-W18-Small's and HRNet-W48's branch convolutions, without their exchange units.
"""
import json, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

job = json.loads(sys.argv[1])
torch.set_num_threads(int(job["threads"]))
N, H, W, WIDTH, BLOCKS = job["n"], job["h"], job["w"], job["width"], job["blocks"]


def cbr(cin, cout, k=3, s=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*(layers + [nn.ReLU()] if relu else layers))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = cbr(c, c), cbr(c, c, relu=False)

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        cs = [WIDTH * 2**i for i in range(4)]
        self.stem = nn.Sequential(cbr(3, 64, s=2), cbr(64, 64, s=2), cbr(64, WIDTH, k=1))
        self.branches = nn.ModuleList(nn.Sequential(*[Block(c) for _ in range(BLOCKS)]) for c in cs)
        self.trans = nn.ModuleList(cbr(cs[i], cs[i + 1], s=2) for i in range(3))
        self.head = nn.Conv2d(sum(cs), 19, 1)

    def forward(self, x):
        x, outs = self.stem(x), []
        for i, branch in enumerate(self.branches):
            x = branch(x)
            outs.append(x)
            if i < 3:
                x = self.trans[i](x)
        size = outs[0].shape[-2:]
        up = [F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in outs[1:]]
        return F.interpolate(self.head(torch.cat([outs[0]] + up, 1)), size=(H, W), mode="bilinear",
                             align_corners=False)


seconds = {}
for mode in ["fp32+CL", "bf16+CL"]:
    torch.manual_seed(0)
    net = Net().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(N, 3, H, W).to(memory_format=torch.channels_last)
    y = torch.randint(0, 19, (N, H, W))
    ts = []
    for _ in range(int(job["steps"])):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        ts.append(time.perf_counter() - t0)
    seconds[f"pytorch {mode}"] = ts
print(json.dumps({"versions": {"torch": torch.__version__}, "seconds": seconds}))
