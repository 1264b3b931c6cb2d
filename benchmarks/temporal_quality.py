"""Flicker and colour consistency of each temporal mode on real colour clips.

    python -m benchmarks.temporal_quality                # shared clips, 120 frames each
    python -m benchmarks.temporal_quality --frames 60 --clips dog_720p_audio.mp4

Each clip is decoded, scaled to at most 854x480, turned gray (luminance-preserving) and
colorized with --temporal off, causal and bidirectional. Reported per mode, averaged
over clips:
  warp error (Lai et al. 2018): mean squared RGB difference in [0, 1] between frame t and
      frame t-1 warped onto it, with flow computed on the *original* colour video (DIS,
      medium preset) and occluded pixels (forward-backward check) masked out. The ground
      truth's own warp error is the floor.
  CDC: Jensen-Shannon divergence of per-channel colour histograms (64 bins) between
      frames t and t+1, t+2, t+4, averaged.
  Both also on a*b* alone ("_ab"): the output's luma is the input's, so the RGB figures
  carry the video's own luminance changes (the truth's floor), while the a*b* figures
  isolate what the colorizer and its filter add.
  PSNR to the original colour frames.
  filter cost: milliseconds per frame spent in the temporal filter alone.
  edge a*b* error: a*b* distance to the truth within 3 px of strong luminance edges
      (colour bleeding), also for plain bilinear upsampling ("off/bilinear") to compare.
Results: benchmarks/results/temporal_quality_<date>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.common import SHARED, save_result
from streamcolor import color
from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.pipeline import FrameSequencer, StageTimes

DEFAULT_CLIPS = ["dog_720p_audio.mp4", "cups_720p_audio.mp4", "juggle_720p.mp4", "bikes_scenecuts.mp4"]
MODES = ("off", "causal", "bidirectional", "causal/k2", "bidirectional/k2", "bidirectional/k3", "off/bilinear")


def load_clip(path: Path, frames: int, max_h: int = 480) -> list[np.ndarray]:
    """-> list of (H, W, 3) uint8 RGB, scaled so H <= max_h, even sizes."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            if h > max_h:
                w2 = int(round(w * max_h / h / 2)) * 2
                rgb = cv2.resize(rgb, (w2, max_h), interpolation=cv2.INTER_AREA)
            out.append(rgb)
            if len(out) >= frames:
                break
    return out


def colorize_sequence(
    frames: list[np.ndarray], colorizer, mode: str, keyframe_interval: int = 1, upsample: str = "guided"
) -> tuple[list[np.ndarray], dict]:
    """Gray versions of frames -> colorized RGB frames (the runtime's FrameSequencer),
    and the filter's cost per frame and the share of frames the network ran on."""
    grays = [color.rgb8_to_gray8(f) for f in frames]
    times = StageTimes()
    seq = FrameSequencer(colorizer, True, mode, keyframe_interval, batch=4, times=times)
    filtered: list = [None] * len(grays)
    for i, g in enumerate(grays):
        for j, ab, _ in seq.push(i, g):
            filtered[j] = ab
    for j, ab, _ in seq.flush():
        filtered[j] = ab
    if upsample == "guided":
        labs = [colorizer._lab_at(g, ab, g.shape, True) for g, ab in zip(grays, filtered)]
    else:  # plain bilinear a*b*, the comparison for colour bleeding
        labs = [
            np.dstack([color.L_FROM_GRAY8[g], cv2.resize(ab, g.shape[::-1], interpolation=cv2.INTER_LINEAR)])
            for g, ab in zip(grays, filtered)
        ]
    outs = [cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB) for lab in labs]
    stats = {"filter_ms_per_frame": 1000 * times.temporal / len(grays), "network_share": seq.network_runs / len(grays)}
    return [(np.clip(o, 0, 1) * 255 + 0.5).astype(np.uint8) for o in outs], stats


def flows_and_masks(frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For t >= 1: remap maps taking frame t-1 onto frame t, and the non-occlusion mask."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = grays[0].shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = []
    for t in range(1, len(frames)):
        back = dis.calc(grays[t], grays[t - 1], None)  # t -> t-1
        fwd = dis.calc(grays[t - 1], grays[t], None)  # t-1 -> t
        mx, my = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = np.sum((back + fwd_at) ** 2, axis=2)
        mag = np.sum(back**2, axis=2) + np.sum(fwd_at**2, axis=2)
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        mask = (err < 0.01 * mag + 0.5) & inside
        out.append((mx, my, mask))
    return out


def to_ab(frames: list[np.ndarray]) -> list[np.ndarray]:
    """RGB uint8 -> (H, W, 2) float32 a*b* / 100."""
    return [cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:] / 100 for f in frames]


def edge_bands(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Pixels within 3 px of a strong luminance edge of the original (Canny 100/200)."""
    kernel = np.ones((7, 7), np.uint8)
    return [cv2.dilate(cv2.Canny(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), 100, 200), kernel) > 0 for f in frames]


def edge_error(ab: list[np.ndarray], truth_ab: list[np.ndarray], bands: list[np.ndarray]) -> float:
    """Mean a*b* distance to the truth (CIE units) next to strong edges: colour bleeding."""
    vals = [np.linalg.norm(x[m] - y[m], axis=1).mean() * 100 for x, y, m in zip(ab, truth_ab, bands) if m.any()]
    return float(np.mean(vals)) if vals else 0.0


def warp_error(frames: list[np.ndarray], flows) -> float:
    """frames: uint8 RGB (scaled to [0, 1]) or float a*b*/100."""
    errs = []
    as_float = [f.astype(np.float32) / 255 if f.dtype == np.uint8 else f for f in frames]
    for t, (mx, my, mask) in enumerate(flows, start=1):
        prev = cv2.remap(as_float[t - 1], mx, my, cv2.INTER_LINEAR)
        d = ((as_float[t] - prev) ** 2).sum(axis=2)
        if mask.any():
            errs.append(float(d[mask].mean()))
    return float(np.mean(errs))


def _hist(img: np.ndarray, bins: int = 64) -> np.ndarray:
    """Per-channel histograms: uint8 RGB over [0, 256), float a*b*/100 over [-1.1, 1.1)."""
    if img.dtype == np.uint8:
        idx = img // (256 // bins)
    else:
        idx = np.clip(((img + 1.1) / 2.2 * bins).astype(np.int64), 0, bins - 1)
    return np.stack([np.bincount(idx[..., c].ravel(), minlength=bins) for c in range(img.shape[2])]).astype(np.float64)


def _js(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, b, out=np.ones_like(a), where=a > 0)  # 0 * log(0) = 0
        return np.sum(a * np.log2(ratio), axis=1)

    return float(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)))


def cdc(frames: list[np.ndarray]) -> float:
    hists = [_hist(f) for f in frames]
    per_gap = []
    for k in (1, 2, 4):
        per_gap.append(np.mean([_js(hists[t], hists[t + k]) for t in range(len(hists) - k)]))
    return float(np.mean(per_gap))


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((x.astype(np.float64) - y) ** 2) for x, y in zip(a, b)])
    return float(10 * np.log10(255.0**2 / mse))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video-dir", type=Path, default=SHARED / "video")
    ap.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    colorizer = make_colorizer(ColorizeConfig())
    per_clip = {}
    for name in a.clips:
        frames = load_clip(a.video_dir / name, a.frames)
        flows = flows_and_masks(frames)
        truth_ab = to_ab(frames)
        bands = edge_bands(frames)
        row = {
            "frames": len(frames),
            "size": list(frames[0].shape[1::-1]),
            "truth": {
                "warp_error": warp_error(frames, flows),
                "cdc": cdc(frames),
                "warp_error_ab": warp_error(truth_ab, flows),
                "cdc_ab": cdc(truth_ab),
            },
        }
        for mode in MODES:
            if mode == "off/bilinear":
                outs, stats = colorize_sequence(frames, colorizer, "off", upsample="bilinear")
            else:
                filt, _, k = mode.partition("/k")
                outs, stats = colorize_sequence(frames, colorizer, filt, int(k or 1))
            ab = to_ab(outs)
            row[mode] = {
                "warp_error": warp_error(outs, flows),
                "cdc": cdc(outs),
                "psnr": psnr(outs, frames),
                "warp_error_ab": warp_error(ab, flows),
                "cdc_ab": cdc(ab),
                "edge_ab_error": edge_error(ab, truth_ab, bands),
                **stats,
            }
        per_clip[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k not in ("frames", "size")}), flush=True)
    summary = {}
    for mode in ("truth", *MODES):
        keys = per_clip[a.clips[0]][mode].keys()
        summary[mode] = {k: float(np.mean([per_clip[c][mode][k] for c in a.clips])) for k in keys}
    for mode in MODES[1:]:
        for k in ("warp_error", "cdc", "warp_error_ab", "cdc_ab", "edge_ab_error"):
            summary[mode][f"{k}_vs_off"] = summary[mode][k] / summary["off"][k]
        summary[mode]["psnr_minus_off"] = summary[mode]["psnr"] - summary["off"]["psnr"]
    result = {"clips": per_clip, "summary": summary}
    out = save_result("temporal_quality", result, a.out)
    print(f"{'mode':<18}{'warp err':>10}{'CDC':>10}{'warp ab':>10}{'CDC ab':>10}{'PSNR':>8}{'ms/frame':>10}{'net':>6}")
    for mode, s in summary.items():
        print(
            f"{mode:<18}{s['warp_error']:>10.5f}{s['cdc']:>10.5f}{s['warp_error_ab']:>10.5f}{s['cdc_ab']:>10.5f}"
            f"{s.get('psnr', float('nan')):>8.2f}{s.get('filter_ms_per_frame', 0):>10.2f}"
            f"{s.get('network_share', 1.0):>6.2f}{s.get('edge_ab_error', float('nan')):>9.2f}"
        )
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
