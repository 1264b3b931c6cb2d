"""Cached features: the frozen pretrained encoder run once per training crop, stored as float16.

    python -m training.feature_cache build --out /work/cache/feat_mnv2 \\
        --train ../shared/data/train --extra ~/extra --encoder mobilenet_v2 --views 2
    python -m training.feature_cache validation --out /work/cache/val --train ../shared/data/train --extra ~/extra

Why: on a 2-core CPU the student's step was mostly the encoder (forward, and backward through
its upper layers): about 26 photos/s (issue 22). With the encoder fixed, its features of a crop
never change, so they are computed once (`--views` random crops of each photo, flipped and
rescaled as training.data.random_crops does, a share of them with archival degradations of the
lightness, training.degrade) and the colour decoders train on the stored features.

Layout of OUT (a folder outside the repository; numpy .npy files read memory-mapped):
    meta.json        encoder, its weights' provenance, crop size, views, photos done
    names.txt        one photo per line (`train/<folder>/<file>` or `extra/<folder>/<file>`)
    f4.npy, f8.npy, f16.npy[, f32.npy]
                     (N * views, C_s, size/s, size/s) float16 encoder features at stride s;
                     row i * views + v is view v of photo i
    ab.npy           (N * views, 2, size/4, size/4) float16 CIE a*b* of the clean crop, averaged
                     over 4x4 pixels (the decoder's output grid); NaN rows: no ground truth
    lum.npy          (N * views, 1, size/4, size/4) float16 L* of the (possibly degraded) input

`build` is resumable: photos are written in fixed chunks and meta.json's `done` advances after
each chunk is flushed, so a killed run continues where it stopped (rerun the same command). The
crops depend only on (seed, chunk index), so two encoders cached with the same seed, size,
views and list see exactly the same crops: a teacher's predictions line up with a student's rows.

Which photos: ../shared/data/train (train.txt) and the `train`-role sources of
../shared/data/extra (sources.json), never its eval_ood sources; the fixed validation split
(training.data.is_validation) is kept out of the cache (`--split val` caches it alone, for the
validation cross-entropy while training) and written as a folder of links by `validation`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from training.data import is_validation

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_WEIGHTS = SHARED.parent / "weights" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
ENCODER_BATCH = 16
CHUNK = 256  # photos per chunk: fixed, so that crops are the same across runs and encoders


def list_photos(train: Path | None, extra: Path | None) -> list[tuple[str, Path]]:
    """-> [(name, path)] of every training photo: train.txt's photos, then the extra photos of
    sources whose role is `train` in ../shared/data/extra/sources.json (never by globbing the
    extra folder: it may hold eval_ood sources built with --role all)."""
    out: list[tuple[str, Path]] = []
    if train is not None:
        listing = train.parent / "train.txt"
        names = listing.read_text().split() if listing.exists() else None
        if names is None:
            names = sorted(str(p.relative_to(train)) for p in train.rglob("*.jpg"))
        out += [(f"train/{n}", train / n) for n in names]
    if extra is not None:
        sources = json.loads((SHARED / "extra" / "sources.json").read_text())
        for folder in sorted(k for k, v in sources.items() if v["role"] == "train"):
            for p in sorted((extra / folder).glob("*.webp")):
                out.append((f"extra/{folder}/{p.name}", p))
    return out


def split_name(name: str) -> str:
    """The name is_validation judges: `folder/file` inside train/ (the split every earlier
    model was chosen on), `extra/folder/file` for the extra photos (3 % of them by hash)."""
    return name.split("/", 1)[1] if name.startswith("train/") else name


def load_square(path: Path, size: int) -> np.ndarray:
    """A photo as (size, size, 3) uint8 RGB: short side scaled to `size`, centre crop."""
    from training.pack import centre_crop

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path}")
    return np.ascontiguousarray(centre_crop(bgr, size)[..., ::-1])


class Encoder:
    """A frozen pretrained encoder by name: `stages(x)` maps (N, 1, H, W) (L* - 50) / 50 to
    {stride: (N, C, H/s, W/s) float32}. Registry: ENCODERS."""

    def __init__(self, name: str, weights: Path | None, strides: tuple[int, ...]):
        if name not in ENCODERS:
            raise SystemExit(f"unknown encoder '{name}': choose one of {', '.join(ENCODERS)}")
        self.name, self.strides = name, strides
        self.net, self.to_input, self.provenance = ENCODERS[name](weights, max(strides))
        self.net.eval().requires_grad_(False)
        self.session = None

    @torch.no_grad()
    def stages(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        if self.session is not None:
            outs = self.session.run(None, {"x": self.to_input(x).numpy()})
            return {s: torch.from_numpy(o) for s, o in zip(self.strides, outs)}
        e = self.net.forward_stages(self.to_input(x))
        return {s: e[s] for s in self.strides}

    @torch.no_grad()
    def stages_float64(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """stages() computed in float64 by PyTorch: the reference the ONNX graph is checked on."""
        net = copy.deepcopy(self.net).double()
        e = net.forward_stages(self.to_input(x.double()))
        return {s: e[s] for s in self.strides}

    def use_onnxruntime(self, folder: Path, threads: int = 0) -> None:
        """Run the encoder in ONNX Runtime: its depthwise convolutions are several times faster
        than PyTorch's on a CPU (MobileNetV2 to stride 16 on 128-px crops, 2 cores: about 40
        crops/s in PyTorch). The graph is exported once into `folder`; outputs agree with
        PyTorch's within float32 rounding (checked on the first batch, build())."""
        import onnxruntime as ort

        strides = self.strides

        class Stages(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                e = self.net.forward_stages(x)
                return tuple(e[s] for s in strides)

        net = copy.deepcopy(self.net)  # the exporter changed EfficientNet-Lite's batch norms in place
        if hasattr(net, "fold_same_padding"):
            net.fold_same_padding()
        path = folder / "encoder.onnx"
        c = 1
        torch.onnx.export(
            Stages(net),
            torch.zeros(2, c, 64, 64),
            str(path),
            input_names=["x"],
            output_names=[f"f{s}" for s in strides],
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}},
            opset_version=17,
            dynamo=False,
        )
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _mobilenet_v2(weights: Path | None, stages: int):
    from training.mobilenet import MobileNetV2, l_to_gray_rgb, load_tflite_weights

    net = MobileNetV2(stages, head=False, in_channels=1)
    prov = load_tflite_weights(net, weights or DEFAULT_WEIGHTS)
    return net, l_to_gray_rgb, prov


def _efficientnet_lite(variant: str):
    def make(weights: Path | None, stages: int):
        from training.efficientnet_lite import l_to_gray_input, pretrained_efficientnet_lite

        net = pretrained_efficientnet_lite(variant, stages=stages, head=False, in_channels=1)
        # the gray sRGB of the lightness, on the network's (x - 127) / 128 scale for 0..255
        return net, l_to_gray_input, net.provenance

    return make


ENCODERS = {
    "mobilenet_v2": _mobilenet_v2,
    "efficientnet_lite0": _efficientnet_lite("lite0"),
    "efficientnet_lite2": _efficientnet_lite("lite2"),
}


def chunk_crops(imgs: np.ndarray, chunk: int, views: int, size: int, degrade: float, seed: int):
    """uint8 (n, S, S, 3) RGB photos of chunk `chunk` -> for each view: (L* input (n, 1, size, size)
    float32, degraded with probability `degrade`, and the clean crop's a*b* (n, 2, size/4, size/4)).

    Each crop is training.data.random_crops' augmentation (a square of 0.6-1.0 of the side at a
    random place, flipped half the time, resampled to `size`), done with OpenCV per photo: the
    same Lab conversion as streamcolor.color (OpenCV's float sRGB -> CIE L*a*b*, D65) at a
    tenth of the cost of the torch version on a CPU. Deterministic in (seed, chunk)."""
    from training.degrade import degrade_l

    gen = torch.Generator().manual_seed(seed * 1_000_003 + chunk)
    n, side = imgs.shape[0], imgs.shape[1]
    out = []
    for _ in range(views):
        r = torch.rand(n, 4, generator=gen).numpy()
        lab = np.empty((n, size, size, 3), np.float32)
        for i in range(n):
            w = max(1, int(round((0.6 + 0.4 * r[i, 0]) * side)))
            y0, x0 = int(r[i, 1] * (side - w)), int(r[i, 2] * (side - w))
            crop = imgs[i, y0 : y0 + w, x0 : x0 + w]
            if r[i, 3] < 0.5:
                crop = crop[:, ::-1]
            crop = cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_LINEAR)
            lab[i] = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        t = torch.from_numpy(lab).permute(0, 3, 1, 2)
        lum = degrade_l(t[:, :1].contiguous(), gen, p=degrade) if degrade > 0 else t[:, :1].contiguous()
        out.append((lum, F.avg_pool2d(t[:, 1:], 4)))
    return out


def build(a: argparse.Namespace) -> None:
    want_val = a.split == "val"
    photos = [(n, p) for n, p in list_photos(a.train, a.extra) if is_validation(split_name(n)) == want_val]
    if a.limit:
        photos = photos[: a.limit]
    strides = tuple(int(s) for s in a.strides.split(","))
    enc = Encoder(a.encoder, a.weights, strides)
    a.out.mkdir(parents=True, exist_ok=True)
    meta_path = a.out / "meta.json"
    names = [n for n, _ in photos]
    want = {
        "encoder": a.encoder,
        "size": a.size,
        "views": a.views,
        "degrade": a.degrade,
        "seed": a.seed,
        "strides": list(strides),
        "photos": len(photos),
        "chunk": CHUNK,
        "split": a.split,
    }
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta.setdefault("split", "train")  # caches written before --split existed
        if {k: meta.get(k) for k in want} != want:
            raise SystemExit(f"{a.out} holds another cache ({meta_path}); choose another --out or delete it")
        if (a.out / "names.txt").read_text().splitlines() != names:
            raise SystemExit(f"{a.out} was built from another photo list; choose another --out or delete it")
    else:
        meta = dict(want, done=0, provenance=enc.provenance, started=time.strftime("%Y-%m-%d %H:%M"))
        (a.out / "names.txt").write_text("\n".join(names) + "\n")
    rows = len(photos) * a.views
    probe_x = torch.linspace(-1, 1, a.size * a.size).reshape(1, 1, a.size, a.size)
    reference = enc.stages(probe_x)
    enc.use_onnxruntime(a.out, a.threads)
    probe = enc.stages(probe_x)
    # a wrong graph, not float32 rounding: the mean error relative to the features' mean size,
    # allowed up to 10x what float32 itself loses against float64 in PyTorch (a network with
    # untrained weights can amplify rounding through its ReLU6 edges; the ImageNet one gives 2e-6)
    exact = enc.stages_float64(probe_x)

    def rel(a: dict, b: dict) -> float:
        return max(float((a[s].double() - b[s].double()).abs().mean() / b[s].double().abs().mean()) for s in strides)

    diff, rounding = rel(probe, exact), rel(reference, exact)
    if diff > 10 * rounding + 1e-4:
        raise SystemExit(
            f"the encoder's ONNX graph differs from PyTorch by {diff:.2e} (float32 rounding: {rounding:.2e})"
        )
    print(f"encoder in ONNX Runtime: mean relative difference {diff:.2e} (PyTorch float32: {rounding:.2e})", flush=True)
    shapes = {f"f{s}": (rows, *probe[s].shape[1:]) for s in strides}
    q = a.size // 4
    shapes.update({"ab": (rows, 2, q, q), "lum": (rows, 1, q, q)})
    mode = "r+" if meta["done"] else "w+"
    arrays = {
        k: np.lib.format.open_memmap(a.out / f"{k}.npy", mode=mode, dtype=np.float16, shape=v)
        for k, v in shapes.items()
    }
    meta["channels"] = {str(s): int(probe[s].shape[1]) for s in strides}
    t0, start_done = time.time(), meta["done"]
    for c0 in range(meta["done"], len(photos), CHUNK):
        batch = photos[c0 : c0 + CHUNK]
        imgs = np.stack([load_square(p, a.load_size) for _, p in batch])
        r0, k = c0 * a.views, len(batch)
        for v, (lum, ab) in enumerate(chunk_crops(imgs, c0 // CHUNK, a.views, a.size, a.degrade, a.seed)):
            rows_v = slice(r0 + v, r0 + k * a.views, a.views)
            # small batches: 2-3x faster per crop than 64 at once in ONNX Runtime on one thread
            # (the activations stay in the CPU's caches; training/encoder_speed.py)
            parts = [enc.stages((lum[i : i + ENCODER_BATCH] - 50.0) / 50.0) for i in range(0, k, ENCODER_BATCH)]
            for s in strides:
                arrays[f"f{s}"][rows_v] = torch.cat([p[s] for p in parts]).half().numpy()
            arrays["ab"][rows_v] = ab.half().numpy()
            arrays["lum"][rows_v] = F.avg_pool2d(lum, 4).half().numpy()
        for arr in arrays.values():
            arr.flush()
        meta["done"] = c0 + k
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)  # written after the arrays are flushed: `done` never runs ahead
        rate = (meta["done"] - start_done) * a.views / (time.time() - t0)
        print(f"{meta['done']}/{len(photos)} photos, {rate:.0f} crops/s", flush=True)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M")
    meta_path.write_text(json.dumps(meta, indent=1))
    print(f"cache complete: {rows} crops in {a.out}")


class Cache:
    """A finished cache, memory-mapped: `batch(idx)` -> ({stride: float32 features}, a*b*, L*)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        if self.meta["done"] < self.meta["photos"]:
            raise SystemExit(f"{folder} is unfinished ({self.meta['done']}/{self.meta['photos']}): rerun build")
        self.strides = tuple(self.meta["strides"])
        self.f = {s: np.load(self.folder / f"f{s}.npy", mmap_mode="r") for s in self.strides}
        self.ab = np.load(self.folder / "ab.npy", mmap_mode="r")
        self.lum = np.load(self.folder / "lum.npy", mmap_mode="r")
        self.names = (self.folder / "names.txt").read_text().splitlines()

    def __len__(self) -> int:
        return self.ab.shape[0]

    def rows_without(self, sources: tuple[str, ...]) -> np.ndarray:
        """The row indices of every photo not from the extra `sources` (folder names of
        ../shared/data/extra, e.g. 'pedestrian_streets'): whole collections held out, so that a
        choice made on them is a choice on photos from nowhere the model saw (a random 3 % of
        each source shares its photographers and places with the training rows)."""
        views = len(self) // max(len(self.names), 1)
        prefixes = tuple(f"extra/{s}/" for s in sources)
        keep = np.array([not n.startswith(prefixes) for n in self.names], bool) if prefixes else None
        if keep is None:
            return np.arange(len(self))
        return (np.flatnonzero(keep)[:, None] * views + np.arange(views)[None]).ravel()

    def batch(self, idx: np.ndarray) -> tuple[dict[int, torch.Tensor], torch.Tensor, torch.Tensor]:
        idx = np.sort(idx)  # sequential reads of the memory map
        e = {s: torch.from_numpy(np.ascontiguousarray(self.f[s][idx])).float() for s in self.strides}
        ab = torch.from_numpy(np.ascontiguousarray(self.ab[idx])).float()
        lum = torch.from_numpy(np.ascontiguousarray(self.lum[idx])).float()
        return e, ab, lum


def write_validation(a: argparse.Namespace) -> None:
    """The validation photos as a folder of symbolic links (for training.evaluate/select):
    the fixed split, or with --hold-out-sources up to --per-source photos (seeded) of each of
    those extra sources, which train_cached --hold-out-sources never trains on."""
    a.out.mkdir(parents=True, exist_ok=True)
    held = tuple(x for x in a.hold_out_sources.split(",") if x)
    if held:
        rng = np.random.default_rng(0)
        chosen = []
        for src in held:
            mine = [(n, p) for n, p in list_photos(None, a.extra) if n.startswith(f"extra/{src}/")]
            if not mine:
                sys.exit(f"no photos of extra source '{src}' in {a.extra}")
            pick = rng.choice(len(mine), min(a.per_source, len(mine)), replace=False)
            chosen += [mine[i] for i in sorted(pick)]
    else:
        chosen = [(n, p) for n, p in list_photos(a.train, a.extra) if is_validation(split_name(n))]
    for name, path in chosen:
        link = a.out / name.replace("/", "__")
        if not link.exists():
            link.symlink_to(path.resolve())
    print(f"{len(chosen)} validation photos linked in {a.out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compute and store the encoder's features (resumable)")
    v = sub.add_parser("validation", help="link the validation photos into a folder")
    for p in (b, v):
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--train", type=Path, default=SHARED / "train")
        p.add_argument("--extra", type=Path, help="the folder build_extra.py wrote (its train/ inside)")
    v.add_argument("--hold-out-sources", default="", help="extra sources (comma-separated) to link instead")
    v.add_argument("--per-source", type=int, default=150, help="photos of each held-out source")
    b.add_argument("--encoder", default="mobilenet_v2", help=f"one of {', '.join(ENCODERS)}")
    b.add_argument("--weights", type=Path, help="MobileNetV2 TFLite file (default: ../shared/weights)")
    b.add_argument("--strides", default="4,8,16")
    b.add_argument("--size", type=int, default=128, help="crop side in pixels (multiple of 32)")
    b.add_argument("--load-size", type=int, default=144, help="photos are first centre-cropped to this square")
    b.add_argument("--views", type=int, default=2, help="random crops per photo")
    b.add_argument("--degrade", type=float, default=0.5, help="share of crops with archival degradations")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--split", choices=("train", "val"), default="train", help="val: the validation photos")
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--limit", type=int, default=0, help="only the first N photos (tests)")
    a = ap.parse_args(argv)
    if a.cmd == "validation":
        write_validation(a)
        return
    if a.size % 32:
        raise SystemExit(f"--size must be a multiple of 32, got {a.size}")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.extra is not None and not (a.extra / "intel_scenes").is_dir():
        sys.exit(f"--extra {a.extra}: no intel_scenes folder there; give build_extra.py's OUT/train")
    build(a)


if __name__ == "__main__":
    main()
