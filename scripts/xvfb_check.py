#!/usr/bin/env python3
"""See the `paca-fer run` window, not assume it: start a virtual X display (Xvfb), run the
runtime in window mode on recorded frames, grab the screen with `xwd`, and check that the
overlay is on screen (face box and label in an emotion colour, the status plate, the bar chart).

Usage: scripts/xvfb_check.py [--bin PATH] [--model DIR] [--input DIR|IMAGE] [--out shot.png]
Needs the apt packages xvfb and x11-apps (scripts/setup.sh --x11 installs them) and numpy + Pillow.
Exit status 0 when the overlay is seen, 1 otherwise; the screenshot is written either way.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
from PIL import Image

# Box/label colours of the 8 emotions (src/pipeline/overlay.rs EMOTION_COLORS).
EMOTION_COLORS = [
    (230, 60, 50), (150, 90, 200), (110, 170, 60), (240, 150, 40),
    (250, 215, 50), (200, 200, 200), (70, 120, 230), (60, 210, 210),
]


def read_xwd(path):
    """Decodes a 24/32-bit TrueColor ZPixmap XWD screen dump into an RGB array."""
    data = open(path, "rb").read()
    (header_size, _version, _fmt, depth, width, height, _xoff, byte_order, _unit, _bit_order,
     _pad, bpp, bytes_per_line, _visual, red_mask, green_mask, blue_mask, _bits_rgb, _cmap_entries,
     ncolors) = struct.unpack(">20I", data[:80])
    if bpp != 32 or depth < 24:
        sys.exit(f"unsupported XWD: depth {depth}, {bpp} bits per pixel")
    offset = header_size + ncolors * 12
    rows = np.frombuffer(data, dtype=np.uint8, count=bytes_per_line * height, offset=offset)
    rows = rows.reshape(height, bytes_per_line)[:, : width * 4]
    px = rows.reshape(height, width, 4).view(">u4" if byte_order == 1 else "<u4")[..., 0]

    def channel(mask):
        shift = (mask & -mask).bit_length() - 1
        return ((px & mask) >> shift).astype(np.uint8)

    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")), "release", "paca-fer"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--input", default=os.path.join(root, "tests/fixtures/face/astronaut.png"))
    ap.add_argument("--out", default="xvfb_window.png")
    ap.add_argument("--display", default=":99")
    args = ap.parse_args()
    for tool in ("Xvfb", "xwd"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install the apt packages xvfb and x11-apps")

    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = None
    try:
        time.sleep(1.0)
        env = dict(os.environ, DISPLAY=args.display)
        cmd = [args.bin, "run", "--input", args.input, "--loops", "0", "--detect-width", "320"]
        if args.model:
            cmd += ["--model", args.model]
        run = subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE)
        time.sleep(12.0)  # model loading, then frames on screen
        if run.poll() is not None:
            sys.exit(f"paca-fer run exited early:\n{run.stderr.read().decode()}")
        dump = args.out + ".xwd"
        subprocess.run(["xwd", "-root", "-silent", "-display", args.display, "-out", dump], check=True)
        img = read_xwd(dump)
        os.remove(dump)
        Image.fromarray(img).save(args.out)
    finally:
        if run is not None and run.poll() is None:
            run.terminate()
            run.wait(timeout=10)
        xvfb.terminate()

    flat = img.reshape(-1, 3)
    found = {i: int(np.all(flat == c, axis=1).sum()) for i, c in enumerate(EMOTION_COLORS)}
    white = int(np.all(flat == (255, 255, 255), axis=1).sum())
    nonblack = int(np.any(flat > 0, axis=1).sum())
    print(f"screenshot {args.out}: {img.shape[1]}x{img.shape[0]}, non-black pixels {nonblack}, "
          f"white (status text) {white}, emotion-colour pixels {found}")
    ok = nonblack > 10_000 and white > 50 and sum(found.values()) > 200
    print("overlay seen" if ok else "overlay NOT seen")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
