"""Does a hint stay on its object? The "leak" of one hint (issue 24).

    python -m benchmarks.hint_leak --model streamcolor/models/student_hints.onnx [--objects 80]
    python -m benchmarks.hint_leak ... --source composite --onto ../shared/data/eval
    python -m benchmarks.hint_leak ... --source generated      # made-up objects (the test's input)

For each object whose pixel mask is known, one hint of a random saturated colour (HSV hue
uniform, S = V = 1; its a*b* placed at the L* under it, as a hints file's colour is) at the
object's most interior pixel (the maximum of the mask's distance transform), radius 1 % of
the short side (the hints file's default). The change it makes is |delta a*b*| (Euclidean, CIE
units) of the picture against the same model's automatic picture, both at the photo's size
(a*b* upsampled on L* as `streamcolor image` does): its mean inside the mask, its mean outside
the mask more than 24 px from it, and leak = outside / inside. Summarised as the mean of the
per-object ratios and the ratio of the means; for the network alone and for the network plus
the spreading after it (propagate_corrections: what `streamcolor video --hints` does).

Beside it, PSNR with 0/1/2/5/10 hints from the truth on the same photos (hints_quality.photos).

Masks (--source):
  ccp        Clothing Co-Parsing (github bearpaw/clothing-co-parsing), read from a bare git
             mirror (--mirror): photo i's pixel-level annotation (a .mat of label indices,
             label_list.mat names them), its largest garment (any label but null, skin, hair)
             covering at least MIN_SHARE of the photo. Research data: never committed.
  composite  the same garments cut from their photo and pasted onto another scene (--onto, a
             folder of photos, each resized to the garment photo's size): a background that
             is not the garment's own.
  generated  a textured ellipse pasted onto a smooth random background (no data needed).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import save_result
from benchmarks.hints_quality import _colorizer, photo_inputs, photos
from streamcolor.hints.planes import HintPoint, ab_at_lightness, hint_planes
from streamcolor.hints.tracker import propagate_corrections

MIRROR = Path("/work/.mirror/bearpaw+clothing-co-parsing/repo")
FAR = 24  # pixels: "outside" starts this far from the object
MIN_SHARE = 0.03  # an object covers at least this share of the photo
NOT_OBJECTS = ("null", "skin", "hair")
COUNTS = (0, 1, 2, 5, 10)


def _git_blob(mirror: Path, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(mirror), "show", f"HEAD:{path}"], capture_output=True, check=True).stdout


def _loadmat(data: bytes) -> dict:
    try:
        import scipy.io
    except ImportError:  # not a streamcolor dependency: only this benchmark's ccp source reads .mat
        raise SystemExit("the ccp source reads MATLAB files: pip install scipy") from None
    return scipy.io.loadmat(io.BytesIO(data))


def _fit(rgb: np.ndarray, mask: np.ndarray, max_h: int) -> tuple[np.ndarray, np.ndarray]:
    if rgb.shape[0] <= max_h:
        return rgb, mask
    size = (int(round(rgb.shape[1] * max_h / rgb.shape[0])), max_h)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.resize(
        mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
    ).astype(bool)


def ccp_objects(
    mirror: Path, n: int, max_h: int = 320, seed: int = 0, skip_first: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """-> (name, photo (H, W, 3) uint8 RGB, mask (H, W) bool) for up to n annotated photos,
    in a seeded random order, after the first `skip_first` usable ones (a tuning set apart from
    the measured one); each photo's largest garment (module docstring)."""
    names = [str(v[0]) for v in _loadmat(_git_blob(mirror, "label_list.mat"))["label_list"][0]]
    skip = {names.index(s) for s in NOT_OBJECTS if s in names}
    listing = subprocess.run(
        ["git", "-C", str(mirror), "ls-tree", "--name-only", "HEAD", "annotations/pixel-level/"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    order = np.random.default_rng(seed).permutation(len(listing))
    found = 0
    for i in order:
        if found >= n + skip_first:
            return
        ann = listing[i]
        labels = _loadmat(_git_blob(mirror, ann))["groundtruth"]
        ids, counts = np.unique(labels, return_counts=True)
        keep = [(c, k) for k, c in zip(ids, counts) if k not in skip and c >= MIN_SHARE * labels.size]
        if not keep:
            continue
        label = max(keep)[1]
        stem = Path(ann).stem
        bgr = cv2.imdecode(np.frombuffer(_git_blob(mirror, f"photos/{stem}.jpg"), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape[:2] != labels.shape:
            continue
        rgb, mask = _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels == label, max_h)
        found += 1
        if found > skip_first:
            yield f"{stem}:{names[label]}", rgb, mask


def composite(obj_rgb: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The masked object pasted onto background (resized to the object photo's size)."""
    h, w = mask.shape
    bg = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    return np.where(mask[..., None], obj_rgb, bg)


def composite_objects(
    objects: Iterator[tuple[str, np.ndarray, np.ndarray]], onto: Path
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    from training.data import list_images

    backgrounds = list_images(onto)
    if not backgrounds:
        raise SystemExit(f"no photos in {onto}")
    for k, (name, rgb, mask) in enumerate(objects):
        f = backgrounds[k % len(backgrounds)]
        bg = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        yield f"{name} on {f.name}", composite(rgb, mask, bg), mask


def generated_objects(n: int, size: tuple[int, int] = (96, 128), seed: int = 0):
    """Made-up objects: a textured ellipse of one colour pasted onto a smooth background of
    another. -> (name, rgb (H, W, 3) uint8, mask (H, W) bool)."""
    rng = np.random.default_rng(seed)
    h, w = size
    for k in range(n):
        bg = cv2.resize(rng.uniform(40, 220, (3, 4, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        mask = np.zeros((h, w), np.uint8)
        centre = (int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3)))
        cv2.ellipse(mask, centre, (w // 6, h // 5), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        obj = rng.uniform(30, 230, 3).astype(np.float32) * (0.8 + 0.2 * rng.random((h, w, 1), np.float32))
        rgb = np.where(mask[..., None] > 0, obj, bg)
        yield f"generated{k}", np.clip(rgb, 0, 255).astype(np.uint8), mask.astype(bool)


def saturated_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    hsv = np.array([[[rng.uniform(0, 180), 255, 255]]], np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def leak_of(c, rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> dict:
    """One hint of a random saturated colour in the object -> its change inside, far outside."""
    gray8, x, _, l_lo = photo_inputs(c, rgb)
    h, w = mask.shape
    depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    py, px = np.unravel_index(int(np.argmax(depth)), depth.shape)
    hint_rgb = saturated_rgb(rng)
    lightness = float(cv2.cvtColor(rgb[py : py + 1, px : px + 1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0, 0])
    ab_hint = ab_at_lightness(np.array([hint_rgb]), np.array([lightness]))[0]
    point = HintPoint((px + 0.5) / w, (py + 0.5) / h, ab_hint, 0.01)
    auto = c.predict_features([x])[0][0]
    ab, feats = c.predict_features([x], [hint_planes([point], x.shape[1:])])
    spread = propagate_corrections(ab[0], l_lo, feats[0], [point])

    def full(ab_lo: np.ndarray) -> np.ndarray:
        return c._lab_at(gray8, ab_lo, (h, w), True, l_lo)[..., 1:]

    base = full(auto)
    far = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5) > FAR
    row = {"hint": [int(px), int(py)], "color": "#{:02x}{:02x}{:02x}".format(*hint_rgb), "far_share": float(far.mean())}
    for what, ab_lo in (("network", ab[0]), ("spread", spread)):
        d = np.linalg.norm(full(ab_lo) - base, axis=2)
        inside, outside = float(d[mask].mean()), float(d[far].mean()) if far.any() else float("nan")
        row[what] = {"inside": inside, "outside": outside, "leak": outside / max(inside, 1e-6)}
    return row


def summarise(rows: list[dict]) -> dict:
    out = {}
    for what in ("network", "spread"):
        ok = [r[what] for r in rows if np.isfinite(r[what]["outside"])]
        inside, outside = float(np.mean([r["inside"] for r in ok])), float(np.mean([r["outside"] for r in ok]))
        out[what] = {
            "objects": len(ok),
            "inside": inside,
            "outside": outside,
            "leak_of_means": outside / max(inside, 1e-6),
            "leak_mean": float(np.mean([r["leak"] for r in ok])),
            "leak_median": float(np.median([r["leak"] for r in ok])),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a hint model")
    ap.add_argument("--source", choices=("ccp", "composite", "generated"), default="ccp")
    ap.add_argument("--mirror", type=Path, default=MIRROR, help="bare git dir of bearpaw/clothing-co-parsing")
    ap.add_argument("--onto", type=Path, help="composite: a folder of background photos")
    ap.add_argument("--objects", type=int, default=80)
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="ccp/composite: leave out the first N objects (tune on others than you report)",
    )
    ap.add_argument("--max-height", type=int, default=320, help="photos are scaled down to this height")
    ap.add_argument("--no-psnr", action="store_true", help="skip PSNR with hints from the truth")
    ap.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/hint_leak_<date>.json)")
    a = ap.parse_args(argv)
    t0 = time.time()
    c = _colorizer(a.model, threads=1)
    if a.source == "generated":
        objects = generated_objects(a.objects)
    else:
        objects = ccp_objects(a.mirror, a.objects, a.max_height, skip_first=a.skip)
        if a.source == "composite":
            if a.onto is None:
                ap.error("--source composite needs --onto DIR")
            objects = composite_objects(objects, a.onto)
    rng = np.random.default_rng(24)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for k, (name, rgb, mask) in enumerate(objects):
            rows.append({"object": name, "share": float(mask.mean()), **leak_of(c, rgb, mask, rng)})
            cv2.imwrite(str(Path(d) / f"{k:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        res = {"model": str(a.model), "source": a.source, "far_px": FAR, "summary": summarise(rows)}
        print(json.dumps(res["summary"], indent=1), flush=True)
        if not a.no_psnr:  # the same photos, hints drawn from the truth as hints_quality does
            p = photos(Path(d), [a.model], counts=COUNTS)
            res["psnr_hints_from_truth"] = p["models"][str(a.model)]
    res["objects"] = rows
    res["command"] = "python -m benchmarks.hint_leak " + " ".join(argv or __import__("sys").argv[1:])
    res["wall_seconds"] = round(time.time() - t0, 1)
    save_result("hint_leak", res, a.out)
    return res


if __name__ == "__main__":
    main()
