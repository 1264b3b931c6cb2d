"""Colorize a folder of colour photos from their gray versions and measure the result.

    python -m training.evaluate --data ../shared/data/eval --model streamcolor/models/student.onnx \
        --sheet runs/eval_sheet.png --json runs/eval.json

Prints PSNR (sRGB, dB), SSIM (mean over R, G, B), CIEDE2000 (mean per pixel),
colourfulness (Hasler & Suesstrunk 2003) with its ratio to the ground truth, and the
whole-image cast (error of the photo's mean a* and mean b*, CIE units), false colour (the share
of the truth's near-neutral pixels, chroma < 6, painted with chroma > 15) and, with --kid, KID to
the true photos on the pretrained MobileNetV2's pooled features, each beside
the gray baseline (the same L*, a*b* = 0). Uses only the runtime's colorizer on ONNX
Runtime (no PyTorch, no PyAV), so the numbers are those of the default code path users run,
on any machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer
from streamcolor.engines.registry import create_engine
from streamcolor.model import DEFAULT_MODEL, load_card
from training.data import list_images

DEFAULT_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """uint8 images -> PSNR in dB (peak 255)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 SSIM, Gaussian window sigma 1.5, mean over channels; uint8 input."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)

        def blur(v: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(v, (11, 11), 1.5)

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        vals.append(s[5:-5, 5:-5].mean())
    return float(np.mean(vals))


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Sharma, Wu & Dalal (2005) CIEDE2000 between (..., 3) L*a*b* arrays."""
    l1, a1, b1 = (lab1[..., i].astype(np.float64) for i in range(3))
    l2, a2, b2 = (lab2[..., i].astype(np.float64) for i in range(3))
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    cm = (c1 + c2) / 2
    g = 0.5 * (1 - np.sqrt(cm**7 / (cm**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    lm = (l1 + l2) / 2
    cmp_ = (c1p + c2p) / 2
    hsum = h1p + h2p
    hm = np.where(
        c1p * c2p == 0,
        hsum,
        np.where(np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(hm - 30))
        + 0.24 * np.cos(np.radians(2 * hm))
        + 0.32 * np.cos(np.radians(3 * hm + 6))
        - 0.20 * np.cos(np.radians(4 * hm - 63))
    )
    dtheta = 30 * np.exp(-(((hm - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cmp_**7 / (cmp_**7 + 25.0**7))
    sl = 1 + 0.015 * (lm - 50) ** 2 / np.sqrt(20 + (lm - 50) ** 2)
    sc = 1 + 0.045 * cmp_
    sh = 1 + 0.015 * cmp_ * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


# False colour (issue 22): pixels that are truly neutral (white walls, tables, gray hair, overcast
# sky: CIELab chroma below 6) painted with strong colour (chroma above 15): smears and blotches.
NEUTRAL_CHROMA, PAINTED_CHROMA = 6.0, 15.0


def measure(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """uint8 sRGB (H, W, 3) pair -> metrics. cast_a / cast_b: |mean a* - true mean a*| and the
    same for b* over the photo (CIE units), a whole-image colour cast; cast: their Euclidean norm.
    neutral_pixels / false_colour_pixels: the truth's pixels of chroma < NEUTRAL_CHROMA, and those
    of them the prediction paints with chroma > PAINTED_CHROMA (summed over a set, their ratio is
    the false-colour share, evaluate())."""
    lab_p = color.rgb_to_lab(pred.astype(np.float32) / 255.0)
    lab_t = color.rgb_to_lab(truth.astype(np.float32) / 255.0)
    mean_p, mean_t = lab_p[..., 1:].reshape(-1, 2).mean(0), lab_t[..., 1:].reshape(-1, 2).mean(0)
    cast = np.abs(mean_p.astype(np.float64) - mean_t)
    neutral = np.hypot(lab_t[..., 1], lab_t[..., 2]) < NEUTRAL_CHROMA
    painted = np.hypot(lab_p[..., 1], lab_p[..., 2]) > PAINTED_CHROMA
    return {
        "neutral_pixels": float(neutral.sum()),
        "false_colour_pixels": float((neutral & painted).sum()),
        "psnr": psnr(pred, truth),
        "ssim": ssim(pred, truth),
        "ciede2000": float(ciede2000(lab_p, lab_t).mean()),
        "colourfulness": color.colourfulness(pred.astype(np.float32) / 255.0),
        "cast_a": float(cast[0]),
        "cast_b": float(cast[1]),
        "cast": float(np.hypot(cast[0], cast[1])),
    }


def gray_baseline(gray8: np.ndarray) -> np.ndarray:
    return np.repeat(gray8[..., None], 3, axis=2)


def sheet_rows(n_images: int, rows: int = 8) -> list[int]:
    """Indices of the photos shown on the contact sheet: every n-th, up to `rows`."""
    return list(range(0, n_images, max(1, 115 // rows)))[:rows]


def truth_ab_at_grid(truth: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (h, w, 2) float32 its a*b* averaged onto the network's output grid.
    OpenCV's conversion, not color.rgb_to_lab: it is the exact inverse of the Lab -> RGB that
    Colorizer.colorize_luma applies, so the ceiling loses nothing to a mismatch of formulas."""
    lab = cv2.cvtColor(truth.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.ascontiguousarray(cv2.resize(lab[..., 1:], grid[::-1], interpolation=cv2.INTER_AREA))


def evaluate(
    data: Path,
    model: Path,
    sheet: Path | None = None,
    sheet_n: int = 8,
    threads: int | None = None,
    oracle: bool = False,
    kid: bool = False,
    vividness: float | None = None,
) -> dict:
    """Metrics of `model` on the photos in `data` (colorized from their gray versions), beside
    the gray baseline. oracle: in place of the network's a*b*, the truth's own averaged onto
    the network's output grid, through the same guided upsampling and gamut clip: the ceiling
    that the colour path leaves any network of this card's stride (e.g. its colourfulness
    ratio, below 1 because chroma finer than the grid is lost). kid: also the kernel inception
    distance of the colorized photos and of the gray baseline to the true photos (training/kid.py;
    needs PyTorch). vividness: the runtime's chroma gain (streamcolor.colorizer.Colorizer); None: the
    card's default, as the runtime uses it."""
    card = load_card(model)
    colorizer = Colorizer(create_engine("onnx", card, threads), card, vividness=vividness)
    rows = {"ours": [], "gray": [], "truth_colourfulness": []}
    outputs = {"truth": [], "ours": [], "gray": []}  # kept for KID only
    thumbs = []
    photos = list_images(data)
    shown = set(sheet_rows(len(photos), sheet_n))
    for i, path in enumerate(photos):
        truth = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
        gray8 = color.rgb8_to_gray8(truth)
        ab_lo = truth_ab_at_grid(truth, colorizer.output_grid(gray8.shape)) if oracle else None
        ours = colorizer.colorize_luma(gray8, full_range=True, ab_lo=ab_lo)
        gray = gray_baseline(gray8)
        rows["ours"].append(measure(ours, truth))
        rows["gray"].append(measure(gray, truth))
        rows["truth_colourfulness"].append(color.colourfulness(truth.astype(np.float32) / 255.0))
        if kid:
            for k, img in (("truth", truth), ("ours", ours), ("gray", gray)):
                outputs[k].append(img)
        if sheet is not None and i in shown:
            strip = np.concatenate([gray, ours, truth], axis=1)
            thumbs.append(
                cv2.resize(strip, (strip.shape[1] * 200 // strip.shape[0], 200), interpolation=cv2.INTER_AREA)
            )
    n = len(rows["ours"])
    if n == 0:
        raise SystemExit(f"no images in {data}")
    truth_cf = float(np.mean(rows["truth_colourfulness"]))
    summary = {
        "images": n,
        "data": str(data),
        "model": str(model),
        "truth_colourfulness": truth_cf,
        "vividness": colorizer.vividness,
    }
    if oracle:
        summary["oracle"] = "the truth's a*b* at the model's output grid in place of the network's"
    for k in ("ours", "gray"):
        m = {key: float(np.mean([r[key] for r in rows[k]])) for key in rows[k][0]}
        m["colourfulness_ratio"] = m["colourfulness"] / truth_cf
        # pooled over every pixel of the set: the share of all truly neutral pixels painted
        neutral = sum(r["neutral_pixels"] for r in rows[k])
        m["false_colour"] = sum(r["false_colour_pixels"] for r in rows[k]) / max(neutral, 1.0)
        del m["neutral_pixels"], m["false_colour_pixels"]
        summary[k] = m
    if kid:
        from training.kid import kid as kid_score

        summary["ours"]["kid"], summary["gray"]["kid"] = kid_score(outputs["truth"], [outputs["ours"], outputs["gray"]])
    if sheet is not None and thumbs:
        width = max(t.shape[1] for t in thumbs)
        pad = [np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0))) for t in thumbs]
        sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet), np.concatenate(pad, axis=0)[..., ::-1])
    return summary


def format_table(s: dict) -> str:
    lines = [f"{s['images']} images from {s['data']}", f"{'metric':<22}{'gray (a*b*=0)':>15}{'ours':>10}"]
    for key, label in [
        ("psnr", "PSNR dB (higher)"),
        ("ssim", "SSIM (higher)"),
        ("ciede2000", "CIEDE2000 (lower)"),
        ("colourfulness", "colourfulness"),
        ("colourfulness_ratio", "colourfulness / truth"),
        ("cast", "cast |mean a*b*| err"),
        ("false_colour", "false colour (lower)"),
        ("kid", "KID x1000 (lower)"),
    ]:
        if key not in s["ours"]:
            continue
        scale = 1000.0 if key == "kid" else 1.0
        lines.append(f"{label:<22}{s['gray'][key] * scale:>15.3f}{s['ours'][key] * scale:>10.3f}")
    lines.append(f"{'truth colourfulness':<22}{s['truth_colourfulness']:>15.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--sheet", type=Path, help="write a contact sheet PNG (gray | ours | truth)")
    ap.add_argument("--json", type=Path, help="write the summary as JSON")
    ap.add_argument("--threads", type=int, help="ONNX Runtime threads (default: the runtime's choice)")
    ap.add_argument(
        "--oracle",
        action="store_true",
        help="the colour path's ceiling: the truth's a*b* at the model's output grid instead of the network's",
    )
    ap.add_argument("--kid", action="store_true", help="also KID to the true photos (needs PyTorch)")
    ap.add_argument("--vividness", type=float, default=None, help="chroma gain (default: the card's)")
    a = ap.parse_args(argv)
    s = evaluate(a.data, a.model, a.sheet, threads=a.threads, oracle=a.oracle, kid=a.kid, vividness=a.vividness)
    print(format_table(s))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(s, indent=2) + "\n")


if __name__ == "__main__":
    main()
