#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures for paca-fer's patch embedders (tests/embed_parity.rs).

Needs: torch, numpy, safetensors. torchvision is optional: when importable, the script also checks
that its own plain-torch.nn MobileNetV2 / ResNet-50 definitions below match torchvision's (same
state-dict names and shapes, same outputs); without it, the plain definitions are used alone.

Usage (from the project root):
    python3 scripts/make_embed_fixtures.py [--shared ../shared] [--out tests/fixtures/embed]

Writes:
  embed_parity.safetensors            inputs and expected outputs (float32):
      input                      [2,3,96,96]  ImageNet-normalised: seeded random image, synthetic image
      pixels                     [2,36,768]   F.unfold(input, 16, stride=16), transposed
      mobilenet_v2               [2,36,96]    MobileNetV2 features[:14] (shipped ImageNet weights)
      mobilenet_v2_ferplus_face  [1,36,96]    same, for the FER+ face named in the metadata (the
                                              face itself is not stored: shared data stays out of
                                              the repository; the test reads it from ../shared)
      resnet_small_feature_map   [2,36,128]   ResNet-50 / 8 widths, layer3 map
      resnet_small_per_patch     [2,36,256]   ResNet-50 / 8 widths, patches upsampled to 64, layer4, avg-pool
  resnet50_div8_random_f16.safetensors   the random ResNet weights (torchvision names, float16)

References are computed in float64 from the float32 inputs (and the float16-rounded ResNet weights).
"""

import argparse
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file
from safetensors.torch import load_file

SEED = 20240611
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
RESNET_DIV = 8
PATCH_RESIZE = 64
FACE = "data/ferplus/valid/happy/fer0028642.png"


# ---------------------------------------------------------------- plain torch.nn architectures
class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + optional ReLU6, indexed .0/.1/.2 like torchvision."""

    def __init__(self, inp, out, k, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU6(),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, t):
        super().__init__()
        hidden = inp * t
        layers = [] if t == 1 else [ConvBNAct(inp, hidden, 1)]
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and inp == out

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.res else y


class MobileNetV2(nn.Module):
    """Full torchvision MobileNetV2 (width 1.0) so the shipped state dict loads strictly."""

    def __init__(self):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        feats = [ConvBNAct(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in settings:
            for i in range(n):
                feats.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        feats.append(ConvBNAct(inp, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def stride16(self, x):
        return self.features[:14](x)


class Bottleneck(nn.Module):
    def __init__(self, inp, width, stride):
        super().__init__()
        out = width * 4
        self.conv1 = nn.Conv2d(inp, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(y + idt)


class ResNet50(nn.Module):
    """torchvision ResNet-50 (v1.5) with every channel count divided by `div`; no fc."""

    def __init__(self, div=1):
        super().__init__()
        c = 64 // div
        self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = c
        for s, n in enumerate([3, 4, 6, 3]):
            width = (64 << s) // div
            blocks = []
            for i in range(n):
                blocks.append(Bottleneck(inp, width, 2 if (i == 0 and s > 0) else 1))
                inp = width * 4
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))

    def forward_to(self, x, last_layer):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, last_layer + 1):
            x = getattr(self, f"layer{i}")(x)
        return x


# ---------------------------------------------------------------- helpers
def read_gray_png(path):
    """Minimal decoder for 8-bit grayscale, non-interlaced PNG (the FER+ files)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color == 0 and interlace == 0, (depth, color, interlace)
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    img = np.zeros((h, w), dtype=np.int32)
    prev = np.zeros(w, dtype=np.int32)
    for y in range(h):
        f, line = raw[y * (w + 1)], np.frombuffer(raw[y * (w + 1) + 1:(y + 1) * (w + 1)], np.uint8)
        cur = np.zeros(w, dtype=np.int32)
        for x in range(w):
            a = cur[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (int(line[x]) + p) & 0xFF
        img[y], prev = cur, cur
    return img.astype(np.uint8)


def normalise(rgb01):
    """[N,3,H,W] RGB in [0,1] -> ImageNet-normalised float32."""
    return ((rgb01 - MEAN[None, :, None, None]) / STD[None, :, None, None]).astype(np.float32)


def face_input(gray48):
    """48x48 uint8 gray -> 2x nearest upsample -> RGB -> [0,1] -> normalised [1,3,96,96]."""
    g = np.repeat(np.repeat(gray48.astype(np.float32) / 255.0, 2, axis=0), 2, axis=1)
    return normalise(np.broadcast_to(g, (1, 3, 96, 96)).copy())


def synthetic_input():
    """A smooth, colourful [1,3,96,96] pattern in [0,1] (blobs + gradients)."""
    yy, xx = np.meshgrid(np.arange(96), np.arange(96), indexing="ij")
    chans = []
    for c in range(3):
        v = 0.5 + 0.3 * np.sin(xx / (7.0 + 3 * c)) * np.cos(yy / (11.0 - 2 * c))
        v += 0.4 * np.exp(-((xx - 30 - 15 * c) ** 2 + (yy - 48) ** 2) / 300.0)
        chans.append(np.clip(v, 0, 1))
    return np.stack(chans)[None].astype(np.float32)


def to_bsc(fmap):
    """[B,C,6,6] -> [B,36,C], patch = row*6+col."""
    return fmap.flatten(2).transpose(1, 2)


def randomise_(model, gen):
    """Deterministic random conv weights and BatchNorm statistics (well-scaled activations)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            scale = 0.3 if name.endswith("bn3") or name.endswith("downsample.1") else 1.0
            m.weight.copy_((0.5 + torch.rand(n, generator=gen)) * scale)
            m.bias.copy_(0.1 * torch.randn(n, generator=gen))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))


def check_against_torchvision(mnet, x):
    """Cross-check the plain definitions against torchvision when it is importable."""
    try:
        import torchvision
    except Exception as e:  # noqa: BLE001 - any import failure means "absent"
        print(f"torchvision not available ({type(e).__name__}); plain torch.nn definitions only")
        return
    tv_m = torchvision.models.mobilenet_v2()
    tv_m.load_state_dict(mnet.state_dict())
    tv_m = tv_m.double().eval()
    d = (tv_m.features[:14](x) - mnet.stride16(x)).abs().max().item()
    print(f"torchvision {torchvision.__version__}: MobileNetV2 features[:14] max |diff| = {d:.3g}")
    assert d == 0.0

    gen = torch.Generator().manual_seed(SEED + 1)
    mine = ResNet50(div=1)
    with torch.no_grad():
        randomise_(mine, gen)
    tv_r = torchvision.models.resnet50()
    tv_sd = {k: v for k, v in tv_r.state_dict().items() if not k.startswith("fc.")}
    my_sd = mine.state_dict()
    assert {k: tuple(v.shape) for k, v in tv_sd.items()} == {k: tuple(v.shape) for k, v in my_sd.items()}
    tv_r.load_state_dict(my_sd, strict=False)
    tv_r, mine = tv_r.double().eval(), mine.double().eval()
    xs = x[:1]
    with torch.no_grad():
        ref = tv_r.layer4(tv_r.layer3(tv_r.layer2(tv_r.layer1(
            tv_r.maxpool(tv_r.relu(tv_r.bn1(tv_r.conv1(xs))))))))
        d = (ref - mine.forward_to(xs, 4)).abs().max().item()
    print(f"torchvision ResNet-50: {len(my_sd)} tensors match names/shapes; layer4 max |diff| = {d:.3g}")
    assert d == 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--out", default="tests/fixtures/embed")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    rng = np.random.default_rng(SEED)
    inp = normalise(np.concatenate([rng.random((1, 3, 96, 96), dtype=np.float32), synthetic_input()]))
    x = torch.from_numpy(inp).double()
    tensors = {"input": inp}

    # Pixels: F.unfold is channel-major (c, ky, kx) and row-major over blocks.
    tensors["pixels"] = F.unfold(x, 16, stride=16).transpose(1, 2).float().numpy()

    # MobileNetV2 with the shipped ImageNet weights.
    mnet = MobileNetV2()
    sd = load_file(str(shared / "weights/mobilenet_v2_imagenet_torchvision.safetensors"))
    mnet.load_state_dict(sd, strict=True)
    mnet = mnet.double().eval()
    mv2 = to_bsc(mnet.stride16(x))
    assert mv2.shape == (2, 36, 96)
    tensors["mobilenet_v2"] = mv2.float().numpy()
    face = torch.from_numpy(face_input(read_gray_png(shared / FACE))).double()
    tensors["mobilenet_v2_ferplus_face"] = to_bsc(mnet.stride16(face)).float().numpy()
    check_against_torchvision(mnet, x)

    # Small random ResNet (same code path, widths / RESNET_DIV), float16 weights.
    gen = torch.Generator().manual_seed(SEED)
    rnet = ResNet50(div=RESNET_DIV)
    randomise_(rnet, gen)
    sd16 = {k: v.half().contiguous() for k, v in rnet.state_dict().items() if v.is_floating_point()}
    rnet.load_state_dict({k: v.float() for k, v in sd16.items()}, strict=False)
    rnet = rnet.double().eval()
    tensors["resnet_small_feature_map"] = to_bsc(rnet.forward_to(x, 3)).float().numpy()
    patches = F.unfold(x, 16, stride=16).transpose(1, 2).reshape(-1, 3, 16, 16)
    up = F.interpolate(patches, size=(PATCH_RESIZE, PATCH_RESIZE), mode="bilinear", align_corners=False)
    pooled = F.adaptive_avg_pool2d(rnet.forward_to(up, 4), 1).flatten(1)
    tensors["resnet_small_per_patch"] = pooled.reshape(2, 36, -1).float().numpy()

    meta = {
        "seed": str(SEED),
        "torch": torch.__version__,
        "ferplus_face": FACE,
        "resnet_width_divisor": str(RESNET_DIV),
        "resnet_patch_resize": str(PATCH_RESIZE),
    }
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "embed_parity.safetensors"), meta)
    save_file({k: v.numpy() for k, v in sd16.items()}, str(out / "resnet50_div8_random_f16.safetensors"),
              {"seed": str(SEED), "width_divisor": str(RESNET_DIV)})
    for k, v in tensors.items():
        print(f"{k:28s} {str(v.shape):18s} max|x| = {np.abs(v).max():.4g}")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
