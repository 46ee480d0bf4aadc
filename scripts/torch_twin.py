#!/usr/bin/env python3
"""PyTorch twin of paca-fer's ViT and MobileNetV2 trunk (issue #19, item 3).

Requirements, pinned (the versions the fixtures and the README's numbers were made with):
    python3 -m pip install torch==2.15.0 numpy==2.4.6 msgpack==1.2.4 pillow==13.0.0

It reads and writes burn 0.21 `NamedMpk` records (`model.mpk`, `embedder.mpk`: named msgpack maps,
each tensor `{id, param: {bytes, shape, dtype}}`, little-endian f32 bytes; burn's `Linear` keeps its
weight as `[d_in, d_out]`), and implements the same functions as `src/model/` and
`src/model/embed/mobilenet.rs`:
  - tokens: `features @ W + b + pos`, an optional class token in front;
  - 6 (`depth`) pre-norm blocks `x + Attn(LN(x))`, `x + MLP(LN(x))`, LayerNorm eps 1e-5, exact GELU,
    stochastic depth per image while training;
  - attention with queries from the (normed) tokens and keys/values from all tokens
    (patch-to-patch), from hard-assignment centroids `A @ LN(x)` (empty clusters masked by -1e9), or
    from learned soft-assignment centroids (`softmax` over the patches of a per-block linear head);
    scores scaled by 1/sqrt(d_head);
  - mean or class-token pooling, LayerNorm, linear head;
  - the trunk: torchvision MobileNetV2 `features[:14]` with BatchNorm folded into the convolutions,
    ReLU6, ImageNet normalisation, one 96-d row per 16x16 patch (row-major 6x6 grid);
  - training: cross-entropy (mean), Adam lr 1e-3, betas (0.9, 0.999), eps 1e-5 (burn's
    `AdamConfig::new()` defaults), no weight decay.

Commands:
    python3 scripts/torch_twin.py fixtures --out tests/fixtures/twin [--data ../shared/data/ferplus]
    python3 scripts/torch_twin.py check --fixtures tests/fixtures/twin   # torch side against them
    python3 scripts/torch_twin.py bench --binary target/release/paca-fer --json

`tests/torch_twin.rs` loads the same weights and inputs through the library and asserts against
the fixtures, each tensor within 1e-4 relative (max |a - b| <= 1e-4 * max |reference|): trunk
features, logits, the loss of one Adam step, and (an ignored test today, see the README) the weights
after that step.
"""

import argparse
import base64
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# OpenMP threads that spin while they wait collapse when the 2 cores are shared (torch with 2 threads
# ran ~10x slower than with 1 under a load of 12); passive waiting is the fair setting there.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
LN_EPS = 1e-5
MASK_BIAS = -1.0e9
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-5, weight_decay=0.0)
N_PATCHES = 36
# torchvision's inverted-residual settings (t, c, n, s) up to the stride-16 stage (features[1..=13]).
MOBILENET_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
TOLERANCE = 1e-4

# ---------------------------------------------------------------------------------------------
# burn NamedMpk records
# ---------------------------------------------------------------------------------------------

METADATA = {
    "float": "f32",
    "int": "i32",
    "format": "burn_core::record::memory::NamedMpkBytesRecorder<"
    "burn_core::record::settings::FullPrecisionSettings>",
    "version": "0.21.0",
    "settings": "FullPrecisionSettings",
}


def read_record(path):
    """The `item` of a burn NamedMpk file, as nested dicts/lists with raw tensor nodes."""
    with open(path, "rb") as f:
        rec = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
    if rec.get("metadata", {}).get("version") != "0.21.0":
        raise SystemExit(f"{path}: not a burn 0.21.0 record ({rec.get('metadata')})")
    return rec["item"]


def is_param(node):
    return isinstance(node, dict) and set(node) == {"id", "param"}


def flatten(node, prefix=""):
    """Dotted path -> numpy array for every tensor of a record item (lists indexed by position)."""
    out = {}
    if is_param(node):
        p = node["param"]
        if p["dtype"] != "F32":
            raise SystemExit(f"{prefix}: dtype {p['dtype']}, expected F32")
        out[prefix] = np.frombuffer(p["bytes"], dtype="<f4").reshape(p["shape"]).copy()
    elif isinstance(node, dict):
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def _new_id(rng):
    """A burn `ParamId`: a u64's little-endian bytes in unpadded lower-case base32hex (DNSSEC)."""
    raw = rng.getrandbits(64).to_bytes(8, "little")
    return base64.b32hexencode(raw).decode().rstrip("=").lower()


def param_node(array, rng):
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"id": _new_id(rng), "param": {"bytes": a.tobytes(), "shape": list(a.shape), "dtype": "F32"}}


def write_record(path, item):
    data = msgpack.packb({"metadata": METADATA, "item": item, "_b": []}, use_bin_type=True)
    Path(path).write_bytes(data)


def vit_item(cfg, params, seed=0):
    """The burn `VitRecord` layout (constants as nil) of `params` (dotted path -> array)."""
    rng = random.Random(seed)
    P = lambda name: param_node(params[name], rng)  # noqa: E731
    lin = lambda name: {"weight": P(name + ".weight"), "bias": P(name + ".bias")}  # noqa: E731
    ln = lambda name: {"gamma": P(name + ".gamma"), "beta": P(name + ".beta"), "epsilon": None}  # noqa: E731
    soft = attention_mode(cfg)[0] == "soft"
    blocks = []
    for i in range(cfg["depth"]):
        b = f"blocks.{i}"
        blocks.append(
            {
                "norm1": ln(b + ".norm1"),
                "attn": {
                    "query": lin(b + ".attn.query"),
                    "key_value": lin(b + ".attn.key_value"),
                    "output": lin(b + ".attn.output"),
                    "assign_head": lin(b + ".attn.assign_head") if soft else None,
                    "dropout": None,
                    "heads": None,
                },
                "norm2": ln(b + ".norm2"),
                "mlp": {"fc1": lin(b + ".mlp.fc1"), "fc2": lin(b + ".mlp.fc2"), "dropout": None},
                "drop_path": None,
            }
        )
    return {
        "embed": {
            "proj": lin("embed.proj"),
            "pos": P("embed.pos"),
            "cls": P("embed.cls") if cfg["pooling"] == "ClassToken" else None,
        },
        "blocks": blocks,
        "norm": ln("norm"),
        "dropout": None,
        "head": lin("head"),
        "n_patches": None,
        "in_dim": None,
        "mode": None,
        "clusters": None,
    }


# ---------------------------------------------------------------------------------------------
# The ViT
# ---------------------------------------------------------------------------------------------


def attention_mode(cfg):
    """('p2p', 36) | ('hard', M) | ('soft', M) from a config.json's `attention`."""
    a = cfg["attention"]
    if a == "PatchToPatch":
        return "p2p", N_PATCHES
    pc = a["PatchToCluster"]
    return ("hard" if pc["assignment"] == "Hard" else "soft"), pc["clusters"]


def mlp_hidden(cfg):
    return int(math.floor(cfg["d_model"] * cfg["mlp_ratio"] + 0.5))


def drop_path_at(cfg, i):
    return cfg["drop_path"] if cfg["depth"] <= 1 else cfg["drop_path"] * i / (cfg["depth"] - 1)


def init_vit_params(cfg, seed, token_scale=1.0):
    """Random parameters in burn's layout (Linear weight [in, out]); `token_scale` shrinks the
    patch projection so token variances are small (makes LayerNorm's epsilon visible in logits)."""
    g = np.random.default_rng(seed)
    d, hid = cfg["d_model"], mlp_hidden(cfg)
    mode, m = attention_mode(cfg)
    p = {}

    def lin(name, i, o, scale=1.0):
        bound = scale / math.sqrt(i)
        p[name + ".weight"] = g.uniform(-bound, bound, (i, o)).astype(np.float32)
        p[name + ".bias"] = g.uniform(-bound, bound, (o,)).astype(np.float32)

    def ln(name):
        p[name + ".gamma"] = (1.0 + 0.1 * g.standard_normal(d)).astype(np.float32)
        p[name + ".beta"] = (0.05 * g.standard_normal(d)).astype(np.float32)

    lin("embed.proj", cfg["in_dim"], d, token_scale)
    p["embed.pos"] = (0.02 * g.standard_normal((cfg["n_patches"], d))).astype(np.float32)
    if cfg["pooling"] == "ClassToken":
        p["embed.cls"] = (0.02 * g.standard_normal((1, d))).astype(np.float32)
    for i in range(cfg["depth"]):
        b = f"blocks.{i}"
        ln(b + ".norm1")
        lin(b + ".attn.query", d, d)
        lin(b + ".attn.key_value", d, 2 * d)
        lin(b + ".attn.output", d, d, token_scale)
        if mode == "soft":
            lin(b + ".attn.assign_head", d, m, 3.0)
        ln(b + ".norm2")
        lin(b + ".mlp.fc1", d, hid)
        lin(b + ".mlp.fc2", hid, d, token_scale)
    ln("norm")
    lin("head", d, cfg["n_classes"], 4.0)
    return p


class Twin:
    """The ViT as a function of a dict of torch parameters named by their burn paths."""

    def __init__(self, cfg, params, eps=LN_EPS, scale=None, sdpa=False):
        self.cfg = cfg
        self.mode, self.m = attention_mode(cfg)
        self.P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        self.eps = eps
        self.scale = scale  # None = 1/sqrt(d_head); a number only to prove the fixtures can fail
        self.sdpa = sdpa

    def parameters(self):
        return list(self.P.values())

    def linear(self, x, name):
        return torch.matmul(x, self.P[name + ".weight"]) + self.P[name + ".bias"]

    def ln(self, x, name):
        d = x.shape[-1]
        return F.layer_norm(x, (d,), self.P[name + ".gamma"], self.P[name + ".beta"], self.eps)

    def attend(self, name, h, src, bias):
        b, t, d = h.shape
        s = src.shape[1]
        heads = self.cfg["heads"]
        dh = d // heads
        q = self.linear(h, name + ".query").view(b, t, heads, dh).transpose(1, 2)
        kv = self.linear(src, name + ".key_value")
        k = kv[..., :d].reshape(b, s, heads, dh).transpose(1, 2)
        v = kv[..., d:].reshape(b, s, heads, dh).transpose(1, 2)
        if self.sdpa and self.scale is None:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            scale = self.scale if self.scale is not None else 1.0 / math.sqrt(dh)
            scores = torch.matmul(q, k.transpose(-1, -2)) * scale
            if bias is not None:
                scores = scores + bias
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        ctx = ctx.transpose(1, 2).reshape(b, t, d)
        return self.linear(ctx, name + ".output")

    @staticmethod
    def with_extra(assign, extra):
        """[B, M, N] -> [B, extra + M, extra + N]: extra tokens become singleton clusters."""
        if extra == 0:
            return assign
        b, m, n = assign.shape
        out = assign.new_zeros(b, extra + m, extra + n)
        out[:, :extra, :extra] = torch.eye(extra, dtype=assign.dtype)
        out[:, extra:, extra:] = assign
        return out

    def forward(self, features, assign=None, train=False, gen=None):
        """Logits [B, n_classes] of patch features [B, 36, in_dim] (+ hard assignment [B, M, 36])."""
        cfg = self.cfg
        b = features.shape[0]
        x = self.linear(features, "embed.proj") + self.P["embed.pos"]
        extra = 0
        if "embed.cls" in self.P:
            extra = 1
            x = torch.cat([self.P["embed.cls"].unsqueeze(0).expand(b, 1, -1), x], dim=1)
        bias = None
        if self.mode == "hard":
            if assign is None:
                raise ValueError("hard patch-to-cluster model needs an assignment")
            assign = self.with_extra(assign, extra)
            empty = assign.abs().sum(2) == 0
            bias = torch.where(empty, MASK_BIAS, 0.0).to(x.dtype).view(b, 1, 1, -1)
        for i in range(cfg["depth"]):
            blk = f"blocks.{i}"
            h = self.ln(x, blk + ".norm1")
            if self.mode == "p2p":
                src = h
            elif self.mode == "hard":
                src = torch.matmul(assign, h)
            else:
                logits = self.linear(h, blk + ".attn.assign_head")[:, extra:, :]
                soft = torch.softmax(logits.transpose(1, 2), dim=2)
                src = torch.matmul(self.with_extra(soft, extra), h)
            a = self.attend(blk + ".attn", h, src, bias)
            p = drop_path_at(cfg, i) if train else 0.0
            x = x + self.drop_path(a, p, gen)
            hm = self.ln(x, blk + ".norm2")
            mo = self.linear(F.gelu(self.linear(hm, blk + ".mlp.fc1")), blk + ".mlp.fc2")
            x = x + self.drop_path(mo, p, gen)
        pooled = x[:, 0] if extra else x.mean(1)
        return self.linear(self.ln(pooled, "norm"), "head")

    @staticmethod
    def drop_path(x, p, gen):
        if p <= 0.0:
            return x
        keep = 1.0 - p
        mask = (torch.rand(x.shape[0], 1, 1, generator=gen) < keep).to(x.dtype) / keep
        return x * mask

    def numpy_params(self):
        return {k: v.detach().numpy().copy() for k, v in self.P.items()}


def hard_assignment(labels, m):
    """[B, 36] cluster ids -> [B, M, 36] with 1/|cluster| on the members (the project's layout)."""
    labels = np.asarray(labels)
    b, n = labels.shape
    a = np.zeros((b, m, n), dtype=np.float32)
    for i in range(b):
        counts = np.bincount(labels[i], minlength=m)
        for p, lab in enumerate(labels[i]):
            a[i, lab, p] = 1.0 / counts[lab]
    return torch.tensor(a)


# ---------------------------------------------------------------------------------------------
# The MobileNetV2 trunk
# ---------------------------------------------------------------------------------------------


class Trunk:
    """MobileNetV2 features[:14] with folded BatchNorm, from a burn `embedder.mpk`."""

    def __init__(self, params, trainable=False):
        self.P = {k: torch.tensor(v, requires_grad=trainable) for k, v in params.items()}
        self.blocks = []
        inp = 32
        for t, c, n, s in MOBILENET_SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                self.blocks.append((t != 1, stride, stride == 1 and inp == c))
                inp = c

    def parameters(self):
        return list(self.P.values())

    def conv(self, x, name, stride=1, groups=1):
        w = self.P[name + ".weight"]
        pad = (w.shape[-1] - 1) // 2
        return F.conv2d(x, w, self.P[name + ".bias"], stride=stride, padding=pad, groups=groups)

    def features(self, x):
        """ImageNet-normalised [B, 3, 96, 96] -> [B, 36, 96] (patch = row * 6 + col)."""
        x = F.hardtanh(self.conv(x, "stem", 2), 0.0, 6.0)
        for i, (expand, stride, residual) in enumerate(self.blocks):
            name = f"blocks.{i}"
            h = F.hardtanh(self.conv(x, name + ".expand"), 0.0, 6.0) if expand else x
            h = F.hardtanh(self.conv(h, name + ".depthwise", stride, groups=h.shape[1]), 0.0, 6.0)
            h = self.conv(h, name + ".project")
            x = h + x if residual else h
        b, c = x.shape[:2]
        return x.reshape(b, c, -1).transpose(1, 2)


def normalize(faces_u8):
    """[B, 96, 96, 3] uint8 RGB -> ImageNet-normalised [B, 3, 96, 96] float32."""
    x = torch.tensor(np.asarray(faces_u8), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_folder(folder):
    cfg = json.loads((Path(folder) / "config.json").read_text())
    params = flatten(read_record(Path(folder) / "model.mpk"))
    return cfg, params


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


def rel_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def write_npy(path, array):
    np.save(path, np.ascontiguousarray(array))


def load_faces(data, per_class):
    """The first `per_class` faces (by name) of each class of FER+ valid, 48 -> 96 bilinear,
    as uint8 gray [n, 96, 96] and labels."""
    from PIL import Image

    faces, labels = [], []
    for ci, cls in enumerate(CLASSES):
        files = sorted((Path(data) / "valid" / cls).glob("*.png"))[:per_class]
        if len(files) < per_class:
            raise SystemExit(f"{data}/valid/{cls}: fewer than {per_class} faces")
        for f in files:
            img = Image.open(f).convert("L").resize((96, 96), Image.BILINEAR)
            faces.append(np.asarray(img, dtype=np.uint8))
            labels.append(ci)
    return np.stack(faces), np.array(labels)


def kmeans_labels(feats, k, seed=0, iters=20):
    """Plain Lloyd k-means per image (any valid labelling will do: both sides read the labels)."""
    g = np.random.default_rng(seed)
    out = []
    for f in feats:
        c = f[g.choice(len(f), k, replace=False)]
        for _ in range(iters):
            lab = np.argmin(((f[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
            c = np.stack([f[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)])
        out.append(lab)
    return np.stack(out).astype(np.int32)


SMALL = {
    "p2p_cls": {"attention": "PatchToPatch", "pooling": "ClassToken"},
    "hard_cls": {"attention": {"PatchToCluster": {"clusters": 4, "assignment": "Hard"}}, "pooling": "ClassToken"},
    "soft_mean": {"attention": {"PatchToCluster": {"clusters": 4, "assignment": "Soft"}}, "pooling": "Mean"},
    "soft_cls": {"attention": {"PatchToCluster": {"clusters": 4, "assignment": "Soft"}}, "pooling": "ClassToken"},
}


def small_config(kind):
    cfg = {
        "in_dim": 96,
        "d_model": 32,
        "heads": 4,
        "depth": 2,
        "mlp_ratio": 2.0,
        "n_patches": N_PATCHES,
        "n_classes": 8,
        "dropout": 0.0,
        "drop_path": 0.0,
    }
    cfg.update(SMALL[kind])
    return cfg


def logits_of(cfg, params, feats, labels, **kw):
    twin = Twin(cfg, params, **kw)
    mode, m = attention_mode(cfg)
    a = hard_assignment(labels, m) if mode == "hard" else None
    with torch.no_grad():
        return twin.forward(torch.tensor(feats), a).numpy()


def adam_step(cfg, params, feats, labels, targets):
    """One Adam step; returns (loss, updated params)."""
    twin = Twin(cfg, params)
    mode, m = attention_mode(cfg)
    a = hard_assignment(labels, m) if mode == "hard" else None
    opt = torch.optim.Adam(twin.parameters(), **ADAM)
    loss = F.cross_entropy(twin.forward(torch.tensor(feats), a), torch.tensor(targets, dtype=torch.long))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()), twin.numpy_params()


def perturbed(cfg, params, feats, labels):
    """Logits under the two changes the fixtures must catch: LayerNorm eps 1e-6, and scores
    scaled by 1/sqrt(d_model) instead of 1/sqrt(d_head)."""
    ref = logits_of(cfg, params, feats, labels)
    eps = logits_of(cfg, params, feats, labels, eps=1e-6)
    scale = logits_of(cfg, params, feats, labels, scale=1.0 / math.sqrt(cfg["d_model"]))
    return ref, eps, scale


def fixtures(args):
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces, targets = load_faces(args.data, 1)
    from PIL import Image

    Image.fromarray(np.concatenate(list(faces), axis=1)).save(out / "faces.png")
    rgb = np.repeat(faces[..., None], 3, axis=-1)
    trunk = Trunk(flatten(read_record(REPO / "models/default/embedder.mpk")))
    with torch.no_grad():
        feats = trunk.features(normalize(rgb)).numpy()
    write_npy(out / "features.npy", feats.astype(np.float32))
    labels = kmeans_labels(feats, 4)
    labels[0] = np.where(labels[0] == 2, 1, labels[0])  # image 0 has an empty cluster (slot 2)
    write_npy(out / "labels_k4.npy", labels)
    summary = {
        "faces": "FER+ valid, first face (by name) of each class, 48x48 -> 96x96 bilinear (PIL)",
        "targets": targets.tolist(),
        "tolerance": TOLERANCE,
        "torch": torch.__version__,
        "models": {},
    }
    trained = {"default": REPO / "models/default", "kmeans_k4": REPO / "models/product/ferplus-mobilenet_v2/kmeans-k4"}
    for name, folder in trained.items():
        cfg, params = load_folder(folder)
        ref, eps, scale = perturbed(cfg, params, feats, labels)
        write_npy(out / f"logits_{name}.npy", ref)
        write_npy(out / f"logits_{name}_eps1e-6.npy", eps)
        write_npy(out / f"logits_{name}_scale_d.npy", scale)
        summary["models"][name] = {
            "folder": str(folder.relative_to(REPO)),
            "rel_diff_eps1e-6": rel_diff(eps, ref),
            "rel_diff_scale_d": rel_diff(scale, ref),
        }
    for i, kind in enumerate(SMALL):
        cfg = small_config(kind)
        params = init_vit_params(cfg, seed=100 + i, token_scale=0.05)
        folder = out / kind
        (folder / "after").mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        write_record(folder / "model.mpk", vit_item(cfg, params, seed=i))
        ref, eps, scale = perturbed(cfg, params, feats, labels)
        write_npy(folder / "logits.npy", ref)
        write_npy(folder / "logits_eps1e-6.npy", eps)
        write_npy(folder / "logits_scale_d.npy", scale)
        loss, after = adam_step(cfg, params, feats, labels, targets)
        (folder / "after" / "config.json").write_text(json.dumps(cfg, indent=2))
        write_record(folder / "after" / "model.mpk", vit_item(cfg, after, seed=50 + i))
        (folder / "loss.json").write_text(json.dumps({"loss": loss}))
        moved = max(float(np.max(np.abs(after[k] - params[k]))) for k in params)
        summary["models"][kind] = {
            "loss": loss,
            "rel_diff_eps1e-6": rel_diff(eps, ref),
            "rel_diff_scale_d": rel_diff(scale, ref),
            "max_update": moved,
        }
    for name, s in summary["models"].items():
        for key in ("rel_diff_eps1e-6", "rel_diff_scale_d"):
            if s[key] < 10 * TOLERANCE:
                print(f"note: {name} {key} = {s[key]:.2e}, under 10x the tolerance: not a control here", file=sys.stderr)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps(summary, indent=2))
    print(f"{total / 1024:.0f} KiB in {out}", file=sys.stderr)


def check(args):
    """Re-runs the torch side against committed fixtures (the Rust test is the real check)."""
    fx = Path(args.fixtures)
    summary = json.loads((fx / "summary.json").read_text())
    feats = np.load(fx / "features.npy")
    labels = np.load(fx / "labels_k4.npy")
    from PIL import Image

    strip = np.asarray(Image.open(fx / "faces.png").convert("L"))
    faces = np.stack(np.split(strip, strip.shape[1] // 96, axis=1))
    trunk = Trunk(flatten(read_record(REPO / "models/default/embedder.mpk")))
    with torch.no_grad():
        got = trunk.features(normalize(np.repeat(faces[..., None], 3, -1))).numpy()
    report = {"features": rel_diff(got, feats)}
    for name, s in summary["models"].items():
        if "folder" in s:
            cfg, params = load_folder(REPO / s["folder"])
            report[name] = rel_diff(logits_of(cfg, params, feats, labels), np.load(fx / f"logits_{name}.npy"))
        else:
            cfg, params = load_folder(fx / name)
            report[name] = rel_diff(logits_of(cfg, params, feats, labels), np.load(fx / name / "logits.npy"))
            loss, after = adam_step(cfg, params, feats, labels, np.array(summary["targets"]))
            want = flatten(read_record(fx / name / "after" / "model.mpk"))
            report[name + "_adam"] = max(rel_diff(after[k], want[k]) for k in want)
            report[name + "_loss"] = abs(loss - s["loss"]) / abs(s["loss"])
    print(json.dumps(report, indent=2))
    bad = {k: v for k, v in report.items() if v > TOLERANCE}
    if bad:
        raise SystemExit(f"outside {TOLERANCE}: {bad}")


# ---------------------------------------------------------------------------------------------
# Bench
# ---------------------------------------------------------------------------------------------


def run_json(cmd, env=None, cwd=REPO):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def torch_vit_train(cfg, batch, steps, k, seed):
    """images/s of forward + backward + Adam steps, and ms per face of batch-1 inference, on
    random features like `paca-fer bench train`."""
    torch.manual_seed(seed)
    params = init_vit_params(cfg, seed)
    twin = Twin(cfg, params, sdpa=True)
    mode, m = attention_mode(cfg)
    labels = np.array([((i * 7 + i // N_PATCHES) % k) for i in range(batch * N_PATCHES)]).reshape(batch, N_PATCHES)
    a = hard_assignment(labels, m) if mode == "hard" else None
    x = torch.randn(batch, N_PATCHES, cfg["in_dim"])
    y = torch.arange(batch) % 8
    opt = torch.optim.Adam(twin.parameters(), **ADAM)
    gen = torch.Generator().manual_seed(seed)
    warmup = 3
    t0 = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        loss = F.cross_entropy(twin.forward(x, a, train=True, gen=gen), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    ips = steps * batch / (time.perf_counter() - t0)
    x1 = torch.randn(1, N_PATCHES, cfg["in_dim"])
    a1 = a[:1] if a is not None else None
    with torch.inference_mode():
        twin.forward(x1, a1)
        t1 = time.perf_counter()
        for _ in range(20):
            twin.forward(x1, a1)
        ms = (time.perf_counter() - t1) * 1e3 / 20
    return ips, ms


def torch_finetune(cfg, params, trunk_params, faces_u8, targets, batch, steps):
    """faces/s of end-to-end steps (trunk + ViT, two Adams as `finetune`), and ms per face of
    trunk + ViT inference on one face."""
    trunk = Trunk(trunk_params, trainable=True)
    twin = Twin(cfg, params, sdpa=True)
    mode, _ = attention_mode(cfg)
    if mode == "hard":
        raise SystemExit("the fine-tune bench runs a patch-to-patch or learned model (no reclustering here)")
    opt_vit = torch.optim.Adam(twin.parameters(), **{**ADAM, "lr": 3e-4})
    opt_embed = torch.optim.Adam(trunk.parameters(), **{**ADAM, "lr": 1e-4})
    gen = torch.Generator().manual_seed(0)
    n = len(faces_u8)
    times = []
    for step in range(steps):
        idx = [(step * batch + i) % n for i in range(batch)]
        t0 = time.perf_counter()
        x = normalize(faces_u8[idx])
        y = torch.tensor(targets[idx], dtype=torch.long)
        loss = F.cross_entropy(twin.forward(trunk.features(x), None, train=True, gen=gen), y, label_smoothing=0.1)
        opt_vit.zero_grad(set_to_none=True)
        opt_embed.zero_grad(set_to_none=True)
        loss.backward()
        opt_embed.step()
        opt_vit.step()
        times.append(time.perf_counter() - t0)
    ips = batch / statistics.median(times[1:] if len(times) > 1 else times)
    x1 = normalize(faces_u8[:1])
    with torch.inference_mode():
        twin.forward(trunk.features(x1))
        runs = []
        for _ in range(7):
            t1 = time.perf_counter()
            twin.forward(trunk.features(x1))
            runs.append((time.perf_counter() - t1) * 1e3)
    return ips, statistics.median(runs)


def ferplus_subset(data, dst, per_class_train, per_class_valid):
    """A small FER+ layout (first faces by name of each class) for `paca-fer finetune`."""
    for split, n in (("train", per_class_train), ("valid", per_class_valid)):
        for cls in CLASSES:
            files = sorted((Path(data) / split / cls).glob("*.png"))[:n]
            (Path(dst) / split / cls).mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy(f, Path(dst) / split / cls / f.name)


def faces_of(folder):
    from PIL import Image

    faces, targets = [], []
    for ci, cls in enumerate(CLASSES):
        for f in sorted((Path(folder) / cls).glob("*.png")):
            img = Image.open(f).convert("RGB").resize((96, 96), Image.BILINEAR)
            faces.append(np.asarray(img, dtype=np.uint8))
            targets.append(ci)
    return np.stack(faces), np.array(targets)


def profile_torch(fn, rows=12):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return table


def bench(args):
    import tomllib

    threads = args.threads
    torch.set_num_threads(threads)
    binary = str(Path(args.binary).resolve())
    env = dict(os.environ)
    conf = tomllib.loads((REPO / "config/default.toml").read_text())
    med = statistics.median
    result = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads,
                    "load_average_at_start": os.getloadavg()[0]},
        "torch_version": torch.__version__,
        "burn_device": args.device,
        "repetitions": args.reps,
    }

    # ViT training on cached features: `paca-fer bench train` against the same model in torch.
    burn_runs = []
    for _ in range(args.reps):
        out = run_json(
            [binary, "bench", "train", "--json", "--batch-size", str(args.batch), "--threads", str(threads),
             "--steps", str(args.steps), "--device", args.device],
            env,
        )
        burn_runs.append(json.loads(out))
    b0 = burn_runs[0]
    method = b0["method"]
    k = b0["k"]
    attention = (
        "PatchToPatch" if method == "none"
        else {"PatchToCluster": {"clusters": k, "assignment": "Soft" if method == "learned" else "Hard"}}
    )
    cfg = {
        "in_dim": b0["in_dim"], "d_model": b0["d_model"], "heads": b0["heads"], "depth": b0["depth"],
        "mlp_ratio": conf["model"]["mlp_ratio"], "n_patches": N_PATCHES, "n_classes": 8,
        "dropout": 0.0, "drop_path": 0.1, "attention": attention, "pooling": "Mean",
    }
    torch_runs = [torch_vit_train(cfg, args.batch, args.steps, k, seed=r) for r in range(args.reps)]
    burn_train = med(r["images_per_s"] for r in burn_runs)
    burn_infer = med(r["infer_ms_batch1"] for r in burn_runs)
    torch_train = med(r[0] for r in torch_runs)
    torch_infer = med(r[1] for r in torch_runs)
    result["vit_train"] = {
        "model": f"ViT d{cfg['d_model']} depth {cfg['depth']} heads {cfg['heads']}, {method} k={k} (hard), batch {args.batch}",
        "batch_size": args.batch,
        "burn": {"train_images_per_s": burn_train, "infer_ms_per_face": burn_infer,
                 "runs": [[r["images_per_s"], r["infer_ms_batch1"]] for r in burn_runs]},
        "torch": {"train_images_per_s": torch_train, "infer_ms_per_face": torch_infer,
                  "runs": [list(r) for r in torch_runs]},
        "ratio_train": burn_train / torch_train,
        "ratio_infer": torch_infer / burn_infer,
    }

    # Fine-tuning (trunk + ViT) of models/default on FER+ faces.
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "fer"
        per_class = math.ceil(args.ft_batch * args.ft_steps / 8)
        ferplus_subset(args.data, sub, per_class, 1)
        out = Path(tmp) / "ft"
        burn_ft = []
        for r in range(args.reps):
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(Path(tmp) / "train", ignore_errors=True)
            # Run in the temporary folder, so the checkpoints (train/runs/finetune/...) land there.
            run_json(
                [binary, "finetune", "--data", str(sub), "--init", str(REPO / "models/default"), "--out",
                 str(out), "--epochs", str(args.ft_epochs), "--batch-size", str(args.ft_batch),
                 "--warmup-steps", "0", "--no-augment", "--seed", str(r), "--device", args.device],
                env,
                cwd=tmp,
            )
            hist = json.loads((out / "finetune.json").read_text())
            burn_ft.append(history_ips(hist))
        # Inference of trunk + ViT for one face through `select`'s timing (median of 7).
        results = Path(tmp) / "results.json"
        src = json.loads((REPO / "train/results/product/ferplus-mobilenet_v2/results.json").read_text())
        cell = dict(src["cells"][0], method="none", k=36, clusters=36, model_dir=str(REPO / "models/default"))
        results.write_text(json.dumps({**src, "cells": [cell]}))
        burn_inf = []
        for _ in range(args.reps):
            sel = json.loads(run_json([binary, "select", "--results", str(results), "--json", "--device", args.device], env))
            burn_inf.append(select_latency(sel))
        faces, targets = faces_of(sub / "train")
    cfg_d, params_d = load_folder(REPO / "models/default")
    trunk_params = flatten(read_record(REPO / "models/default/embedder.mpk"))
    torch_ft = [
        torch_finetune(cfg_d, params_d, trunk_params, faces, targets, args.ft_batch, args.ft_steps)
        for _ in range(args.reps)
    ]
    bt, bi = med(burn_ft), med(burn_inf)
    tt, ti = med(r[0] for r in torch_ft), med(r[1] for r in torch_ft)
    result["finetune"] = {
        "model": f"models/default (MobileNetV2 trunk + ViT d{cfg_d['d_model']} depth {cfg_d['depth']}, patch-to-patch), batch {args.ft_batch}",
        "batch_size": args.ft_batch,
        "burn": {"train_images_per_s": bt, "infer_ms_per_face": bi, "runs": [burn_ft, burn_inf]},
        "torch": {"train_images_per_s": tt, "infer_ms_per_face": ti, "runs": [list(r) for r in torch_ft]},
        "ratio_train": bt / tt,
        "ratio_infer": ti / bi,
    }
    # Compat: the top-level keys name the ViT-on-cached-features comparison.
    for key in ("burn", "torch", "ratio_train", "ratio_infer"):
        result[key] = result["vit_train"][key]
    if args.profile:
        x = torch.randn(args.batch, N_PATCHES, cfg["in_dim"])
        twin = Twin(cfg, init_vit_params(cfg, 0), sdpa=True)
        mode, m = attention_mode(cfg)
        labels = np.array([((i * 7 + i // N_PATCHES) % k) for i in range(args.batch * N_PATCHES)]).reshape(args.batch, N_PATCHES)
        a = hard_assignment(labels, m) if mode == "hard" else None
        y = torch.arange(args.batch) % 8

        def vit_steps():
            for _ in range(3):
                F.cross_entropy(twin.forward(x, a, train=True), y).backward()

        print(profile_torch(vit_steps), file=sys.stderr)
        trunk = Trunk(trunk_params, trainable=True)
        tw = Twin(cfg_d, params_d, sdpa=True)
        xf = normalize(faces[: args.ft_batch])
        yf = torch.tensor(targets[: args.ft_batch])

        def ft_step():
            F.cross_entropy(tw.forward(trunk.features(xf), None, train=True), yf).backward()

        print(profile_torch(ft_step), file=sys.stderr)
    result["machine"]["load_average_at_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


def history_ips(hist):
    """Median faces/s of a finetune.json's epochs after the first (the first warms up)."""
    ips = [e["images_per_s"] for e in hist["history"]]
    return statistics.median(ips[1:] if len(ips) > 1 else ips)


def select_latency(sel):
    cand = sel["candidates"][0]
    if not cand["measured"]:
        raise SystemExit(f"select did not time {cand['model_dir']}")
    return cand["latency_ms"]


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures", help="write the parity fixtures (once)")
    f.add_argument("--out", default="tests/fixtures/twin")
    f.add_argument("--data", default=str(REPO.parent / "shared/data/ferplus"))
    c = sub.add_parser("check", help="re-run the torch side against the fixtures")
    c.add_argument("--fixtures", default="tests/fixtures/twin")
    b = sub.add_parser("bench", help="burn (the project binary) and torch side by side")
    b.add_argument("--binary", required=True)
    b.add_argument("--data", default=str(REPO.parent / "shared/data/ferplus"))
    b.add_argument("--json", action="store_true")
    b.add_argument("--device", default="cpu", choices=["cpu", "flex"],
                   help="the binary's CPU backend: cpu (burn-ndarray) or flex (a --features flex build)")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--batch", type=int, default=64, help="ViT training batch (config train.batch_size)")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--ft-batch", type=int, default=32)
    b.add_argument("--ft-steps", type=int, default=4, help="fine-tune steps per epoch / torch repetition")
    b.add_argument("--ft-epochs", type=int, default=2, help="burn fine-tune epochs (the first warms up)")
    b.add_argument("--reps", type=int, default=5)
    b.add_argument("--profile", action="store_true", help="torch profiler tables on stderr")
    args = ap.parse_args()
    {"fixtures": fixtures, "check": check, "bench": bench}[args.cmd](args)


if __name__ == "__main__":
    main()
