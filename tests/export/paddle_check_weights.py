"""Checks an exported folder with PaddleSeg itself (run by tests/export/paddleseg_test.ts):

1. `Config` + `SegBuilder` accept DIR/config.yml unchanged and build the model, loss, optimizer, schedule and
   datasets (each is built here);
2. `paddle.load(DIR/model.pdparams)` + `model.set_state_dict` match every key: no missing, no unexpected,
   same shapes, float32, and the model's tensors afterwards equal the file's exactly (BN statistics too);
3. the eval-mode logits of the model on INPUT (float32 NCHW) are written to DIR/paddle_logits.f32 for the
   caller to compare with ours.

    python paddle_check_weights.py INPUT N C H W DIR [DIR ...]   -> one JSON line: a report per DIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "paddleseg"))
import _compat  # noqa: E402,F401  (cv2 before paddle)
import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddleseg.cvlibs import Config, SegBuilder  # noqa: E402


def check(out_dir, x):
    cfg = Config(os.path.join(out_dir, "config.yml"))
    pretrained = cfg.dic["model"].pop("pretrained", None)  # loaded explicitly below, strictly
    builder = SegBuilder(cfg)
    model = builder.model
    built = {
        "loss": [type(t).__name__ for t in builder.loss["types"]],
        "optimizer": type(builder.optimizer).__name__,
        "lr": type(builder.lr_scheduler).__name__,
        "train_images": len(builder.train_dataset),
        "val_images": len(builder.val_dataset),
    }
    path = os.path.join(out_dir, "model.pdparams")
    state = paddle.load(path)
    model_state = model.state_dict()
    file_keys, model_keys = set(state), set(model_state)
    shapes = [k for k in file_keys & model_keys if list(state[k].shape) != list(model_state[k].shape)]
    dtypes = sorted({str(v.dtype) for v in state.values()})
    missing, unexpected = model.set_state_dict(state)
    after = model.state_dict()
    differ = [k for k in file_keys & model_keys
              if k not in shapes and not np.array_equal(after[k].numpy(), state[k].numpy())]
    model.eval()
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x))[0].numpy()
    logits.astype("<f4").tofile(os.path.join(out_dir, "paddle_logits.f32"))
    return {
        "pretrained": pretrained, "built": built, "tensors": len(file_keys), "model_tensors": len(model_keys),
        "missing": sorted(missing), "unexpected": sorted(unexpected), "shape_mismatch": sorted(shapes),
        "value_mismatch": sorted(differ), "dtypes": dtypes,
        "bn_stats": sum(1 for k in file_keys if k.endswith("._mean") or k.endswith("._variance")),
        "logits_shape": list(logits.shape),
    }


def main():
    inp, n, c, h, w = sys.argv[1:6]
    paddle.set_device("cpu")
    x = np.fromfile(inp, dtype="<f4").reshape(int(n), int(c), int(h), int(w))
    print(json.dumps({"reports": [check(d, x) for d in sys.argv[6:]]}))


if __name__ == "__main__":
    main()
