"""PaddleSeg's side of the agreement tests (tests/export/paddleseg_test.ts), on an exported folder.

Builds everything from DIR/config.yml with `Config` + `SegBuilder` (the model starts from model.pretrained,
i.e. DIR/model.pdparams) and runs STEPS training steps exactly as `paddleseg.core.train` does one:
forward in train mode, `loss_computation`, sum, backward, optimizer.step, lr_scheduler.step,
clear_gradients. Batches are fixed instead of shuffled: step k uses images 2k mod n and 2k+1 mod n of
the train dataset in its (sorted) order, so the caller can feed ours the same ones.

PaddleSeg's anchor sampler draws with `paddle.randperm`; it is replaced by the identity (the first k hard
and easy pixels), as in tests/fixtures/paddle_loss/make_fixture.py, so that our sampler with
`draw: "identity"` picks the same anchors.

With `eval` as third argument, BatchNorm runs on its running statistics (model.eval(), so also no
dropout and no projection head) and the loss is the CE term alone: BN on batch statistics makes the
first steps chaotic (a 1e-7 nudge of the weights moves PaddleSeg's own loss curve by ~1e-3 within a few
steps), which would hide the comparison under round-off.

    python paddle_train_steps.py DIR STEPS [train|eval]   -> one JSON line: per step the weighted terms
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "paddleseg"))
import _compat  # noqa: E402,F401  (cv2 before paddle)
import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddleseg.core.train import loss_computation  # noqa: E402
from paddleseg.cvlibs import Config, SegBuilder  # noqa: E402
from paddleseg.models.losses import pixel_contrast_cross_entropy_loss as pcl  # noqa: E402


def main():
    out_dir, steps = sys.argv[1], int(sys.argv[2])
    bn = sys.argv[3] if len(sys.argv) > 3 else "train"
    paddle.set_device("cpu")
    pcl.paddle.randperm = lambda n, dtype="int64", name=None: paddle.arange(n, dtype=dtype)
    cfg = Config(os.path.join(out_dir, "config.yml"))
    builder = SegBuilder(cfg)
    model, losses, opt = builder.model, builder.loss, builder.optimizer
    ds = builder.train_dataset
    n, bs = len(ds), cfg.batch_size
    model.train() if bn == "train" else model.eval()
    out = {"images": [os.path.basename(p[0]) for p in ds.file_list], "steps": []}
    for k in range(steps):
        items = [ds[(bs * k + j) % n] for j in range(bs)]
        images = paddle.to_tensor(np.stack([it["img"] for it in items]))
        labels = paddle.to_tensor(np.stack([it["label"] for it in items]).astype("int64"))
        if labels.ndim == 4:
            labels = labels.squeeze(1)
        logits_list = model(images)
        if bn == "train":
            loss_list = loss_computation(logits_list, labels, None, losses)
        else:  # eval mode: [logits] only; the CE term
            loss_list = [losses["coef"][0] * losses["types"][0](logits_list[0], labels)]
        loss = sum(loss_list)
        lr = float(opt.get_lr())
        loss.backward()
        opt.step()
        opt._learning_rate.step()
        model.clear_gradients()
        out["steps"].append({"terms": [float(t) for t in loss_list], "total": float(loss),
                             "lr": lr})
    out["coef"] = [float(c) for c in losses["coef"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
