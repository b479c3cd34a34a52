"""PaddleSeg's tools/val.py for installs without a PaddleSeg checkout: builds the model and val_dataset of
a config (`Config`, `SegBuilder`), loads the weights with `utils.load_entire_model` and runs
`paddleseg.core.evaluate`, which prints `[EVAL] #Images: N mIoU: ... Acc: ... Kappa: ... Dice: ...`.
The mode comes from the config's test_config; the flags below override it, as tools/val.py's do.
Ours: --save_metrics writes the returned values unrounded (JSON), for comparisons.

    python scripts/paddleseg/val.py --config DIR/config.yml --model_path DIR/output/best_model/model.pdparams
"""
import argparse
import json

import _compat  # noqa: F401  (cv2 before paddle)
from paddleseg.core import evaluate
from paddleseg.cvlibs import Config, SegBuilder
from paddleseg.utils import logger, utils


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Model evaluation (PaddleSeg tools/val.py flags)")
    p.add_argument("--config", required=True, help="the config file (yml)")
    p.add_argument("--model_path", help="weights (.pdparams) to evaluate")
    p.add_argument("--device", default="gpu", choices=["cpu", "gpu", "xpu", "npu", "mlu"],
                   help="device; falls back to cpu when Paddle has no GPU")
    p.add_argument("--num_workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--aug_eval", action="store_true", help="multi-scale and flip evaluation")
    p.add_argument("--scales", nargs="+", type=float, default=None, help="scales for --aug_eval")
    p.add_argument("--flip_horizontal", action="store_true", help="horizontal flip for --aug_eval")
    p.add_argument("--flip_vertical", action="store_true", help="vertical flip for --aug_eval")
    p.add_argument("--is_slide", action="store_true", help="sliding-window evaluation")
    p.add_argument("--crop_size", nargs=2, type=int, default=None, help="sliding window W H")
    p.add_argument("--stride", nargs=2, type=int, default=None, help="sliding-window stride W H")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    p.add_argument("--amp_level", default="O1", choices=["O1", "O2"])
    p.add_argument("--opts", nargs="+", help="key=value config overrides")
    p.add_argument("--save_metrics", help="ours: write mIoU, Acc, Kappa and class IoU unrounded to this JSON file")
    return p.parse_args(argv)


def test_config(cfg, args):
    t = dict(cfg.test_config)
    if args.aug_eval:
        t.update(aug_eval=True, flip_horizontal=args.flip_horizontal, flip_vertical=args.flip_vertical)
        if args.scales:
            t["scales"] = args.scales
    if args.is_slide:
        t.update(is_slide=True, crop_size=args.crop_size, stride=args.stride)
    return t


def main(args):
    _compat.apply_fixes()
    cfg = Config(args.config, opts=args.opts)
    builder = SegBuilder(cfg)
    utils.show_env_info()
    utils.show_cfg_info(cfg)
    utils.set_device(args.device)
    model = builder.model
    if args.model_path:
        utils.load_entire_model(model, args.model_path)
        logger.info("Loaded trained weights successfully.")
    val_dataset = builder.val_dataset
    miou, acc, class_iou, _, kappa = evaluate(
        model, val_dataset, num_workers=args.num_workers, precision=args.precision,
        amp_level=args.amp_level, **test_config(cfg, args))
    if args.save_metrics:
        with open(args.save_metrics, "w") as f:
            json.dump({"mIoU": float(miou), "Acc": float(acc), "Kappa": float(kappa),
                       "classIoU": [float(v) for v in class_iou], "images": len(val_dataset)}, f)


if __name__ == "__main__":
    main(parse_args())
