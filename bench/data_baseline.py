"""Baseline for bench/data.ts: PaddleSeg's training pipeline in Python, single process, same steps as
paddleseg/transforms (cv2 read + BGR->RGB, ResizeStepScaling, RandomPaddingCrop, RandomHorizontalFlip,
RandomDistort through PIL, Normalize, HWC->CHW). Uses cv2 when importable (as PaddleSeg), else PIL for
reading and resizing (then it says so).

usage: python bench/data_baseline.py LIST_FILE CROP_W CROP_H N   (LIST_FILE: "image label" per line)
prints one JSON line: {"images_per_s": ..., "backend": "cv2"|"pil", "n": N}
"""
import json
import random
import sys
import time

import numpy as np
from PIL import Image, ImageEnhance

try:
    import cv2

    HAVE_CV2 = True
except ImportError:
    HAVE_CV2 = False


def read(im_path):
    if HAVE_CV2:
        im = cv2.imread(im_path).astype("float32")
        return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    return np.asarray(Image.open(im_path).convert("RGB")).astype("float32")


def resize(im, size, nearest):
    if HAVE_CV2:
        return cv2.resize(im, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
    if nearest:
        return np.asarray(Image.fromarray(im).resize(size, Image.NEAREST))
    return np.stack([np.asarray(Image.fromarray(im[:, :, c]).resize(size, Image.BILINEAR)) for c in range(3)], -1)


def pipeline(im_path, label_path, cw, ch):
    im = read(im_path)
    label = np.asarray(Image.open(label_path))
    # ResizeStepScaling(0.5, 2.0, 0.25)
    factors = np.linspace(0.5, 2.0, 7).tolist()
    np.random.shuffle(factors)
    f = factors[0]
    w, h = int(round(f * im.shape[1])), int(round(f * im.shape[0]))
    im = resize(im, (w, h), False)
    label = resize(label, (w, h), True)
    # RandomPaddingCrop
    ph, pw = max(ch - h, 0), max(cw - w, 0)
    if ph or pw:
        im = np.pad(im, ((0, ph), (0, pw), (0, 0)), constant_values=127.5)
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=255)
    H, W = label.shape
    ho, wo = np.random.randint(H - ch + 1), np.random.randint(W - cw + 1)
    im, label = im[ho:ho + ch, wo:wo + cw], label[ho:ho + ch, wo:wo + cw]
    # RandomHorizontalFlip
    if random.random() < 0.5:
        im, label = im[:, ::-1], label[:, ::-1]
    # RandomDistort(0.4, 0.4, 0.4), hue 18
    pim = Image.fromarray(im.astype("uint8"))
    ops = ["brightness", "contrast", "saturation", "hue"]
    random.shuffle(ops)
    for op in ops:
        if np.random.uniform(0, 1) < 0.5:
            if op == "brightness":
                pim = ImageEnhance.Brightness(pim).enhance(np.random.uniform(0.6, 1.4))
            elif op == "contrast":
                pim = ImageEnhance.Contrast(pim).enhance(np.random.uniform(0.6, 1.4))
            elif op == "saturation":
                pim = ImageEnhance.Color(pim).enhance(np.random.uniform(0.6, 1.4))
            else:
                hsv = np.array(pim.convert("HSV"))
                hsv[:, :, 0] = hsv[:, :, 0] + np.random.uniform(-18, 18)
                pim = Image.fromarray(hsv, mode="HSV").convert("RGB")
    im = np.asarray(pim).astype("float32")
    # Normalize, HWC -> CHW
    im = (im / 255.0 - 0.5) / 0.5
    return np.transpose(im, (2, 0, 1)), label


def main():
    list_file, cw, ch, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    pairs = [line.split() for line in open(list_file) if line.strip()]
    np.random.seed(0)
    random.seed(0)
    pipeline(*pairs[0], cw, ch)  # warm-up
    t0 = time.perf_counter()
    for k in range(n):
        pipeline(*pairs[k % len(pairs)], cw, ch)
    dt = time.perf_counter() - t0
    print(json.dumps({"images_per_s": n / dt, "backend": "cv2" if HAVE_CV2 else "pil", "n": n}))


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    main()
