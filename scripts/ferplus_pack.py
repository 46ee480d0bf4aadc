#!/usr/bin/env python3
"""Packs FER+ (48x48 grey PNGs in <root>/{train,valid}/<class>/) into one lossless mosaic PNG per
split plus an index, and unpacks it again, byte-for-byte the same pixels.

Used to carry the data set to a GPU machine whose upload limit is smaller than 25,000 loose files
(the mosaic is ~40 MB for train instead of ~61 MB of PNGs):

    python3 scripts/ferplus_pack.py pack ../shared/data/ferplus gpu/
    python3 scripts/ferplus_pack.py unpack gpu/ /tmp/ferplus        # on the GPU machine
"""
import os
import sys

import numpy as np
from PIL import Image

SIDE = 48
COLS = 128


def pack(root, out):
    os.makedirs(out, exist_ok=True)
    for split in ("train", "valid"):
        base = os.path.join(root, split)
        if not os.path.isdir(base):
            continue
        entries = []
        for cls in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, cls))):
                img = Image.open(os.path.join(base, cls, name)).convert("L")
                if img.size != (SIDE, SIDE):
                    sys.exit(f"{cls}/{name}: expected {SIDE}x{SIDE}, got {img.size}")
                entries.append((cls, name, np.asarray(img)))
        rows = (len(entries) + COLS - 1) // COLS
        mosaic = np.zeros((rows * SIDE, COLS * SIDE), np.uint8)
        for i, (_, _, a) in enumerate(entries):
            r, c = divmod(i, COLS)
            mosaic[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE] = a
        Image.fromarray(mosaic).save(os.path.join(out, f"{split}.png"), optimize=True)
        with open(os.path.join(out, f"{split}.txt"), "w") as f:
            for cls, name, _ in entries:
                f.write(f"{cls}/{name}\n")
        print(f"{split}: {len(entries)} faces")


def unpack(src, dest):
    for split in ("train", "valid"):
        index = os.path.join(src, f"{split}.txt")
        if not os.path.isfile(index):
            continue
        mosaic = np.asarray(Image.open(os.path.join(src, f"{split}.png")).convert("L"))
        with open(index) as f:
            names = [line.strip() for line in f if line.strip()]
        for i, rel in enumerate(names):
            r, c = divmod(i, COLS)
            path = os.path.join(dest, split, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(mosaic[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE]).save(path)
        print(f"{split}: {len(names)} faces")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2], sys.argv[3])
