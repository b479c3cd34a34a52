"""PaddleSeg's tools/train.py for installs without a PaddleSeg checkout (the `paddleseg` wheel has the
library but not the repository's tools/): the same flags and the same calls (`Config`, `SegBuilder`,
`paddleseg.core.train`), plus _compat.py's fixes for the PaddleSeg 2.8.0 wheel on Paddle >= 2.5.

    python scripts/paddleseg/train.py --config DIR/config.yml --do_eval --save_dir DIR/output
    python -m paddle.distributed.launch --gpus 0,1,2,3 scripts/paddleseg/train.py --config DIR/config.yml ...
    # several CPU processes (collective backend gloo):
    PADDLE_DISTRI_BACKEND=gloo python -m paddle.distributed.launch --nproc_per_node 2 \\
        scripts/paddleseg/train.py --config DIR/config.yml --device cpu ...

As tools/train.py, BatchNorm becomes SyncBatchNorm when several GPUs train (not on CPU), checkpoints go to
SAVE_DIR/iter_N/model.pdparams (+ model.pdopt) and, with --do_eval, SAVE_DIR/best_model/model.pdparams.
"""
import argparse

import _compat  # noqa: F401  (cv2 before paddle)
from paddleseg.core import train
from paddleseg.cvlibs import Config, SegBuilder
from paddleseg.utils import utils


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Model training (PaddleSeg tools/train.py flags)")
    p.add_argument("--config", required=True, help="the config file (yml)")
    p.add_argument("--device", default="gpu", choices=["cpu", "gpu", "xpu", "npu", "mlu"],
                   help="device; falls back to cpu when Paddle has no GPU")
    p.add_argument("--save_dir", default="./output", help="where iter_N/ and best_model/ are written")
    p.add_argument("--num_workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--do_eval", action="store_true", help="evaluate at every save_interval")
    p.add_argument("--use_vdl", action="store_true", help="log to VisualDL")
    p.add_argument("--resume_model", help="a PaddleSeg iter_N folder to resume from")
    p.add_argument("--iters", type=int, help="overrides the config's iters")
    p.add_argument("--batch_size", type=int, help="overrides the config's batch_size (per GPU)")
    p.add_argument("--learning_rate", type=float, help="overrides lr_scheduler.learning_rate")
    p.add_argument("--save_interval", type=int, default=1000, help="checkpoint (and evaluate) every N iters")
    p.add_argument("--log_iters", type=int, default=10, help="log every N iters")
    p.add_argument("--keep_checkpoint_max", type=int, default=5, help="iter_N folders kept")
    p.add_argument("--seed", type=int, default=None, help="seeds paddle, numpy and random")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"], help="fp16: automatic mixed precision")
    p.add_argument("--amp_level", default="O1", choices=["O1", "O2"], help="AMP level with --precision fp16")
    p.add_argument("--profiler_options", default=None, help="paddleseg train profiler options")
    p.add_argument("--opts", nargs="+", help="key=value config overrides")
    return p.parse_args(argv)


def main(args):
    _compat.apply_fixes()
    cfg = Config(args.config, learning_rate=args.learning_rate, iters=args.iters,
                 batch_size=args.batch_size, opts=args.opts)
    builder = SegBuilder(cfg)
    utils.show_env_info()
    utils.show_cfg_info(cfg)
    utils.set_seed(args.seed)
    utils.set_device(args.device)
    utils.set_cv2_num_threads(args.num_workers)
    model = utils.convert_sync_batchnorm(builder.model, args.device)
    losses = builder.loss
    if _compat.paddle_has_0d_tensors():
        losses = _compat.one_element_losses(losses)
    train(
        model,
        builder.train_dataset,
        val_dataset=builder.val_dataset if args.do_eval else None,
        optimizer=builder.optimizer,
        save_dir=args.save_dir,
        iters=cfg.iters,
        batch_size=cfg.batch_size,
        resume_model=args.resume_model,
        save_interval=args.save_interval,
        log_iters=args.log_iters,
        num_workers=args.num_workers,
        use_vdl=args.use_vdl,
        losses=losses,
        keep_checkpoint_max=args.keep_checkpoint_max,
        test_config=cfg.test_config,
        precision=args.precision,
        amp_level=args.amp_level,
        profiler_options=args.profiler_options,
        to_static_training=cfg.to_static_training,
    )


if __name__ == "__main__":
    main(parse_args())
