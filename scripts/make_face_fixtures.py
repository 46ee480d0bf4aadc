#!/usr/bin/env python3
"""Generate the committed face-detection test fixtures for paca-fer.

Writes
- tests/fixtures/face/astronaut.png: scikit-image's `astronaut` sample (Eileen Collins, NASA
  photo, public domain), 512x512 RGB, unchanged;
- tests/fixtures/face/not_centerface.onnx: a valid but unrelated ONNX model (one 3->4 channel
  1x1 convolution), so the loader's "not CenterFace" path is tested.

Usage: pip install scikit-image pillow onnx && python3 scripts/make_face_fixtures.py
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "face"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    img = data.astronaut()  # (512, 512, 3) uint8 RGB
    Image.fromarray(img).save(OUT / "astronaut.png", optimize=True)
    print(f"wrote {OUT / 'astronaut.png'} {img.shape}")

    weight = numpy_helper.from_array(np.full((4, 3, 1, 1), 0.5, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input.1", "w"], ["out"], name="conv")],
        "not_centerface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 32, 32])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, OUT / "not_centerface.onnx")
    print(f"wrote {OUT / 'not_centerface.onnx'}")


if __name__ == "__main__":
    main()
