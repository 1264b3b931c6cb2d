"""How much user hints and reference photos help, and what they cost (issue 16).

    python -m benchmarks.hints_quality photos --data ../shared/data/eval --models M_HINTS [M_AUTO ...]
    python -m benchmarks.hints_quality clips --model M_HINTS [--auto M_AUTO] [--frames 96]
    python -m benchmarks.hints_quality thresholds --data <validation photos> --model M_HINTS
    python -m benchmarks.hints_quality speed --model M_HINTS --auto M_AUTO [--frames 240]

photos: PSNR and CIEDE2000 against the number of hints drawn from the truth (0, 1, 2, 5, 10,
        20, 50 points; Zhang et al. 2017, fig. 5): each point a 3x3 patch at the network's
        input size at a uniform random place (seeded per photo), coloured with the truth's
        mean a*b* there. Models without hint inputs are measured at 0 hints only.
clips:  the colour clips of ../shared/data/video, grayed: 10 hints from the truth on the first
        frame of each shot (shots cut by the temporal filter's own test; three draws of the
        points, PSNR averaged), carried along the flow (bidirectional filter, as `streamcolor
        video`); PSNR per frame along the shot against automatic; and with the clip's first
        colour frame as the reference photo.
thresholds: matching of pinned hints and reference photos on photos and a changed view of them
        (a random 70-90 % crop scaled back, gamma 0.8-1.25): for each cosine threshold, the
        share of pinned hints found at the right cell (within one cell), the share of false
        matches on other photos, the PSNR gain the photo gives as a reference for its changed
        view, and the gain (a loss, if any) from the previous photo as a reference, which does
        not show this one. Run on validation photos.
speed:  `streamcolor video` end to end at 480p on one gray clip: the automatic model, the hint
        model with no hints, with a hints file of 10 hints, with a reference photo; side by side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import save_result
from streamcolor import color
from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.errors import ConfigError
from streamcolor.hints.file import Hint, HintFile, Reference
from streamcolor.hints.planes import HintPoint, hint_planes
from streamcolor.hints.reference import load_reference, reference_points
from streamcolor.hints.tracker import HintTracker, best_cell, descriptor_at, propagate_corrections, reference_correction
from streamcolor.pipeline import FrameSequencer
from streamcolor.temporal import TemporalConfig, _Flow, _warp, is_cut, is_cut_after_motion

COUNTS = (0, 1, 2, 5, 10, 20, 50)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = ["dog_720p_audio.mp4", "cups_720p_audio.mp4", "juggle_720p.mp4", "bikes_scenecuts.mp4"]


def _colorizer(model: Path, threads: int | None = None):
    return make_colorizer(ColorizeConfig(model=Path(model), backend="onnx", threads=threads))


def _to_rgb8(colorizer, gray8: np.ndarray, ab_lo: np.ndarray) -> np.ndarray:
    lab = colorizer._lab_at(gray8, ab_lo, gray8.shape, True)
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1) * 255 + 0.5).astype(np.uint8)


def photo_inputs(c, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A colour photo (H, W, 3) uint8 -> its gray codes, the network input (1, h, w), the
    truth's L*a*b* at the network input's size (h, w, 3) and the L* guide at the output grid."""
    gray8 = color.rgb8_to_gray8(rgb)
    x = c.network_input(gray8, True)
    h, w = x.shape[1:]
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return gray8, x, cv2.cvtColor(small, cv2.COLOR_RGB2Lab), c.guide_lo(gray8, c.output_grid(gray8.shape), True)


def truth_points(lab_small: np.ndarray, n: int, rng: np.random.Generator, patch: int = 3) -> list[HintPoint]:
    """n hints from the truth: lab_small (h, w, 3) L*a*b* at the network input's size."""
    h, w = lab_small.shape[:2]
    pts = []
    for _ in range(n):
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        ab = lab_small[y : y + patch, x : x + patch, 1:].reshape(-1, 2).mean(0)
        pts.append(HintPoint((x + patch / 2) / w, (y + patch / 2) / h, ab, patch / 2 / min(h, w)))
    return pts


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def hints_sheet(data: Path, model: Path, out: Path, n_photos: int = 6, n_hints: int = 10) -> Path:
    """A contact sheet (PNG): per photo, gray | automatic | n_hints hints from the truth (the
    hint places ringed in the hint's colour) | truth."""
    from training.data import list_images

    c = _colorizer(model)
    rows = []
    for i, f in enumerate(list_images(data)[:n_photos]):
        rgb = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        scale = 240 / rgb.shape[0]
        rgb = cv2.resize(rgb, (int(round(rgb.shape[1] * scale)), 240), interpolation=cv2.INTER_AREA)
        gray8, x, lab, l_lo = photo_inputs(c, rgb)
        h, w = x.shape[1:]
        pts = truth_points(lab, n_hints, np.random.default_rng(1000 + i))
        auto = _to_rgb8(c, gray8, c.predict_features([x])[0][0])
        ab, feats = c.predict_features([x], [hint_planes(pts, (h, w))])
        hinted = _to_rgb8(c, gray8, propagate_corrections(ab[0], l_lo, feats[0], pts))
        marked = hinted.copy()
        for p in pts:
            cx, cy = int(p.x * rgb.shape[1]), int(p.y * rgb.shape[0])
            lab1 = np.array([[[float(l_lo.mean() * 100), *p.ab]]], np.float32)
            col = tuple(int(v) for v in (np.clip(cv2.cvtColor(lab1, cv2.COLOR_Lab2RGB)[0, 0], 0, 1) * 255))
            cv2.circle(marked, (cx, cy), 5, (255, 255, 255), 2)
            cv2.circle(marked, (cx, cy), 3, col, -1)
        g3 = np.repeat(gray8[..., None], 3, axis=2)
        rows.append(
            np.hstack(
                [
                    _label(g3, "gray"),
                    _label(auto, "automatic"),
                    _label(marked, f"{n_hints} hints"),
                    _label(rgb, "truth"),
                ]
            )
        )
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def photos(data: Path, models: list[Path], counts=COUNTS, limit: int = 0) -> dict:
    from training.data import list_images
    from training.evaluate import measure, psnr

    files = list_images(data)[: limit or None]
    out = {"data": str(data), "photos": len(files), "counts": list(counts), "models": {}}
    for model in models:
        c = _colorizer(model)
        ns = counts if c.card.hints else (0,)
        rows = {n: [] for n in ns}
        net_only = {n: [] for n in ns}
        for i, f in enumerate(files):
            rgb = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            gray8, x, lab, l_lo = photo_inputs(c, rgb)
            h, w = x.shape[1:]
            for n in ns:
                if not c.card.hints:
                    m = measure(_to_rgb8(c, gray8, c.predict([x])[0]), rgb)
                    rows[n].append((m["psnr"], m["ciede2000"]))
                    continue
                rng = np.random.default_rng(1000 + i)  # the same points for every model
                pts = truth_points(lab, n, rng)
                ab, feats = c.predict_features([x], [hint_planes(pts, (h, w)) if n else None])
                m = measure(_to_rgb8(c, gray8, propagate_corrections(ab[0], l_lo, feats[0], pts)), rgb)
                rows[n].append((m["psnr"], m["ciede2000"]))
                net_only[n].append(psnr(_to_rgb8(c, gray8, ab[0]), rgb))
        out["models"][str(model)] = {
            str(n): {
                "psnr": float(np.mean([r[0] for r in v])),
                "ciede2000": float(np.mean([r[1] for r in v])),
                **({"psnr_network_only": float(np.mean(net_only[n]))} if net_only[n] else {}),
            }
            for n, v in rows.items()
        }
        print(Path(model).name, json.dumps(out["models"][str(model)]), flush=True)
    return out


def load_clip(path: Path, frames: int, max_h: int = 360) -> list[np.ndarray]:
    from benchmarks.temporal_quality import load_clip as load

    return load(path, frames, max_h)


def shot_starts(colorizer, grays: list[np.ndarray]) -> list[int]:
    """Frame indices where a shot starts, by the temporal filters' cut test."""
    cfg, flow = TemporalConfig(), _Flow(2)
    starts, prev = [0], None
    for i, g in enumerate(grays):
        lo = colorizer.guide_lo(g, colorizer.output_grid(g.shape), True)
        if prev is not None and (
            is_cut(lo, prev, cfg) or is_cut_after_motion(lo, _warp(prev, flow.maps(lo, prev)), cfg)
        ):
            starts.append(i)
        prev = lo
    return starts


def run_sequence(colorizer, grays: list[np.ndarray], hints: HintFile | None, mode: str = "bidirectional"):
    """-> list of RGB frames, as `streamcolor video` makes them (its FrameSequencer)."""
    h, w = grays[0].shape
    tracker = HintTracker(hints, colorizer, w, h, True) if hints is not None else None
    seq = FrameSequencer(colorizer, True, mode, 1, batch=4, tracker=tracker, seconds_of=lambda i: i / 25.0)
    abs_: list = [None] * len(grays)
    for i, g in enumerate(grays):
        for j, ab, _ in seq.push(i, g):
            abs_[j] = ab
    for j, ab, _ in seq.flush():
        abs_[j] = ab
    return [_to_rgb8(colorizer, g, ab) for g, ab in zip(grays, abs_)], tracker


def clip_hints(frames: list[np.ndarray], starts: list[int], n: int, seed: int) -> HintFile:
    """n hints from the truth on the first frame of each shot (5x5-pixel mean sRGB)."""
    rng = np.random.default_rng(seed)
    hints = []
    for s in starts:
        rgb = frames[s]
        h, w = rgb.shape[:2]
        for _ in range(n):
            x, y = int(rng.integers(2, w - 2)), int(rng.integers(2, h - 2))
            mean = rgb[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).mean(0)
            hints.append(Hint((x + 0.5) / w, (y + 0.5) / h, tuple(int(round(v)) for v in mean), time=None, frame=s))
    return HintFile(tuple(hints))


def clip_sheet(rows: list[list[np.ndarray]], labels: list[str], out: Path) -> Path:
    """Frames side by side (one row per frame time), each scaled to 180 px high, labelled."""
    lines = []
    for row in rows:
        cells = []
        for img, text in zip(row, labels):
            h = 180
            img = cv2.resize(img, (int(round(img.shape[1] * h / img.shape[0])), h), interpolation=cv2.INTER_AREA)
            cells.append(_label(img, text))
        lines.append(np.hstack(cells))
    sheet = np.vstack([np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in lines])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def clips(
    model: Path, auto: Path | None, names: list[str], frames: int, n: int = 10, sheets: Path | None = None
) -> dict:
    from training.evaluate import psnr

    c = _colorizer(model)
    ca = _colorizer(auto) if auto else None
    out = {"model": str(model), "auto": str(auto) if auto else None, "hints_per_shot": n, "clips": {}}
    for name in names:
        rgbs = load_clip(DATA / "video" / name, frames)
        grays = [color.rgb8_to_gray8(f) for f in rgbs]
        starts = shot_starts(c, grays)
        res = {"frames": len(rgbs), "shot_starts": starts}
        auto_h, _ = run_sequence(c, grays, None)
        res["psnr_hint_model_no_hints"] = [psnr(a, b) for a, b in zip(auto_h, rgbs)]
        if ca is not None:
            auto_d, _ = run_sequence(ca, grays, None)
            res["psnr_automatic_model"] = [psnr(a, b) for a, b in zip(auto_d, rgbs)]
        # three draws of the 10 points (one draw alone moved a clip's gain by 3 dB)
        per_seed = []
        for seed in (7, 8, 9):
            hinted, tr = run_sequence(c, grays, clip_hints(rgbs, starts, n, seed=seed))
            per_seed.append([psnr(a, b) for a, b in zip(hinted, rgbs)])
        res["psnr_first_frame_hints"] = [float(v) for v in np.mean(per_seed, axis=0)]
        res["psnr_first_frame_hints_by_draw"] = [float(np.mean(v)) for v in per_seed]
        with tempfile.TemporaryDirectory() as d:
            ref = Path(d) / "ref.png"
            cv2.imwrite(str(ref), cv2.cvtColor(rgbs[0], cv2.COLOR_RGB2BGR))
            refd, tr2 = run_sequence(c, grays, HintFile((), (Reference(ref),)))
        res["psnr_reference"] = [psnr(a, b) for a, b in zip(refd, rgbs)]
        res["reference_cells_per_frame"] = tr2.stats.reference_cells / len(rgbs)
        if sheets is not None:
            picks = sorted({0, len(rgbs) // 3, 2 * len(rgbs) // 3, len(rgbs) - 1})
            res["sheet"] = str(
                clip_sheet(
                    [[auto_h[i], hinted[i], refd[i], rgbs[i]] for i in picks],
                    ["automatic", f"{n} hints on frame 0", "reference: frame 0", "truth"],
                    sheets / f"hints_clip_{Path(name).stem}.png",
                )
            )
        summary = {k: float(np.mean(v)) for k, v in res.items() if k.startswith("psnr_")}
        # along the shot: mean PSNR gain by frames since the shot's first frame
        bounds = starts + [len(rgbs)]
        offs = np.zeros(len(rgbs), int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            offs[a:b] = np.arange(b - a)
        gain = np.array(res["psnr_first_frame_hints"]) - np.array(res["psnr_hint_model_no_hints"])
        summary["gain_by_offset"] = {
            f"{lo}-{hi}": float(gain[(offs >= lo) & (offs < hi)].mean())
            for lo, hi in ((0, 1), (1, 10), (10, 25), (25, 50), (50, 100), (100, 10**6))
            if ((offs >= lo) & (offs < hi)).any()
        }
        res["summary"] = summary
        out["clips"][name] = res
        print(name, json.dumps(summary), flush=True)
    keys = [k for k in next(iter(out["clips"].values()))["summary"] if k.startswith("psnr_")]
    out["mean"] = {k: float(np.mean([v["summary"][k] for v in out["clips"].values()])) for k in keys}
    print("mean", json.dumps(out["mean"]), flush=True)
    return out


def changed_view(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A random 70-90 % crop scaled back to the size, gamma 0.8-1.25; -> (photo, crop box as
    fractions x0, y0, x1, y1)."""
    h, w = rgb.shape[:2]
    s = rng.uniform(0.7, 0.9)
    cw, ch = int(w * s), int(h * s)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = cv2.resize(rgb[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    g = rng.uniform(0.8, 1.25)
    crop = (255 * (crop / 255.0) ** g + 0.5).astype(np.uint8)
    return crop, (x0 / w, y0 / h, (x0 + cw) / w, (y0 + ch) / h)


def thresholds(data: Path, model: Path, limit: int = 200, grid=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)) -> dict:
    from training.data import list_images
    from training.evaluate import psnr

    c = _colorizer(model)
    files = list_images(data)[: limit or None]
    rng = np.random.default_rng(5)
    feats, views = [], []
    true_sims, true_ok, false_sims = [], [], []
    psnr_by_t = {t: [] for t in grid}
    psnr_other = {t: [] for t in grid}
    psnr_auto, psnr_auto_other, prev_ref, skipped = [], [], None, 0
    with tempfile.TemporaryDirectory() as d:
        for i, f in enumerate(files):
            rgb = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            view, box = changed_view(rgb, rng)
            g0, g1 = color.rgb8_to_gray8(rgb), color.rgb8_to_gray8(view)
            x0, x1 = c.network_input(g0, True), c.network_input(g1, True)
            f0 = c.predict_features([x0])[1][0]
            ab1, fl1 = c.predict_features([x1])
            f1 = fl1[0]
            feats.append(f0)
            views.append(f1)
            # pinned hints: 5 random points inside the crop, where they are in the view
            for _ in range(5):
                px, py = rng.uniform(box[0] + 0.05, box[2] - 0.05), rng.uniform(box[1] + 0.05, box[3] - 0.05)
                desc = descriptor_at(f0, px, py)
                sim, fx, fy = best_cell(f1, desc)
                ex, ey = (px - box[0]) / (box[2] - box[0]), (py - box[1]) / (box[3] - box[1])
                gh, gw = f1.shape[:2]
                true_sims.append(sim)
                true_ok.append(abs(fx - ex) * gw <= 1.0 and abs(fy - ey) * gh <= 1.0)
                if i > 0:  # the same descriptor against another photo's view: a false match
                    false_sims.append(best_cell(views[i - 1], desc)[0])
            # reference: the photo itself (its colours) on the changed view; and the previous
            # photo as a reference that does not show this one (it should change little)
            ref = Path(d) / f"ref{i % 2}.png"
            cv2.imwrite(str(ref), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            try:
                refc = load_reference(Reference(ref), c)
            except ConfigError:  # a nearly gray photo gives no reference (refused as in use)
                skipped += 1
                continue
            psnr_auto.append(psnr(_to_rgb8(c, g1, ab1[0]), view))
            l_lo = c.guide_lo(g1, c.output_grid(g1.shape), True)
            for t in grid:
                for r, into in ((refc, psnr_by_t[t]), (prev_ref, psnr_other[t])):
                    if r is None:
                        continue
                    pts = reference_points(f1, r, t)
                    planes = hint_planes(pts, x1.shape[1:]) if pts else None
                    ab = c.predict([x1], [planes])[0] if planes is not None else ab1[0]
                    into.append(psnr(_to_rgb8(c, g1, reference_correction(ab, l_lo, f1, [r], t)), view))
            if prev_ref is not None:
                psnr_auto_other.append(psnr_auto[-1])
            prev_ref = refc
    ts, ok, fs = np.array(true_sims), np.array(true_ok), np.array(false_sims)
    rows = {
        str(t): {
            "pin_found_right": float(np.mean((ts >= t) & ok)),
            "pin_found_wrong": float(np.mean((ts >= t) & ~ok)),
            "pin_false_match_other_photo": float(np.mean(fs >= t)),
            "reference_psnr": float(np.mean(psnr_by_t[t])),
            "reference_psnr_gain": float(np.mean(psnr_by_t[t]) - np.mean(psnr_auto)),
            "other_photo_reference_psnr_gain": float(np.mean(psnr_other[t]) - np.mean(psnr_auto_other)),
        }
        for t in grid
    }
    out = {
        "data": str(data),
        "photos": len(files),
        "photos_without_colour_for_a_reference": skipped,
        "reference_psnr_automatic": float(np.mean(psnr_auto)),
        "by_threshold": rows,
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def speed(model: Path, auto: Path, frames: int, repeats: int = 2, baseline: Path | None = None) -> dict:
    """Side by side, same clip and settings: `colorize_video` with the automatic model; the hint
    model with no hints; with 1 hint and with 10 hints from the first frame; with 10 hints one
    every 0.5 s (until the cut: the decode-only backward pass runs); with a reference photo (the
    clip's first colour frame). baseline: another hint model run the same ways beside it (the
    runs alternate), e.g. the previous one."""
    from benchmarks.video_speed import make_gray_input
    from streamcolor.api import colorize_video
    from streamcolor.hints.file import load_hints

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = make_gray_input(DATA / "video" / "dog_720p_audio.mp4", d / "gray.mp4", 480, frames)
        rgb0 = load_clip(DATA / "video" / "dog_720p_audio.mp4", 1, 480)[0]
        ref = d / "ref.png"
        cv2.imwrite(str(ref), cv2.cvtColor(rgb0, cv2.COLOR_RGB2BGR))
        rng = np.random.default_rng(3)
        lines = []
        for i in range(10):  # every half second: most start mid-shot, so the backward pass runs too
            lines += [
                "[[hint]]",
                f"time = {0.5 * i}",
                f"at = [{rng.uniform(0.1, 0.9):.3f}, {rng.uniform(0.1, 0.9):.3f}]",
                'color = "#a04030"',
                "",
            ]
        (d / "hints.toml").write_text("\n".join(lines))
        (d / "hints0.toml").write_text("\n".join(v for v in lines if not v.startswith("time")))
        (d / "hint1.toml").write_text("\n".join(v for v in lines[:5] if not v.startswith("time")))
        runs = {"automatic": ColorizeConfig(model=auto)}
        for tag, m in (("", model), *((("previous: ", baseline),) if baseline else ())):
            runs.update(
                {
                    tag + "hint model, no hints": ColorizeConfig(model=m),
                    tag + "1 hint from the start": ColorizeConfig(model=m, hints=load_hints(d / "hint1.toml")),
                    tag + "10 hints from the start": ColorizeConfig(model=m, hints=load_hints(d / "hints0.toml")),
                    tag + "10 hints": ColorizeConfig(model=m, hints=load_hints(d / "hints.toml")),
                    tag + "reference": ColorizeConfig(model=m, hints=HintFile((), (Reference(ref),))),
                }
            )
        best = {k: float("inf") for k in runs}
        for _ in range(repeats):
            for name, cfg in runs.items():
                t = time.perf_counter()
                s = colorize_video(src, d / "out.mp4", cfg, warn=lambda m: None, overwrite=True)
                best[name] = min(best[name], time.perf_counter() - t)
                n = s.frames
        out = {"frames": n, "height": 480, "seconds": best, "fps": {k: n / v for k, v in best.items()}}
        out["slower_than_automatic"] = {k: best[k] / best["automatic"] - 1 for k in runs}
    print(json.dumps(out, indent=1), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/hints_<what>_<date>.json)")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("photos", parents=[common])
    p.add_argument("--data", type=Path, default=DATA / "eval")
    p.add_argument("--models", type=Path, nargs="+", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--sheet", type=Path, help="also draw a contact sheet (PNG) with the first model")
    p = sub.add_parser("clips", parents=[common])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--auto", type=Path)
    p.add_argument("--clips", nargs="+", default=CLIPS)
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--sheets", type=Path, help="a folder for one contact sheet (PNG) per clip")
    p = sub.add_parser("thresholds", parents=[common])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--limit", type=int, default=200)
    p = sub.add_parser("speed", parents=[common])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--auto", type=Path, required=True)
    p.add_argument("--frames", type=int, default=240)
    p.add_argument("--repeats", type=int, default=3, help="runs of each; the best counts")
    p.add_argument("--baseline", type=Path, help="another hint model (e.g. the previous one) run beside it")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.what == "photos":
        res = photos(a.data, a.models, limit=a.limit)
        if a.sheet:
            res["sheet"] = str(hints_sheet(a.data, a.models[0], a.sheet))
    elif a.what == "clips":
        res = clips(a.model, a.auto, a.clips, a.frames, sheets=a.sheets)
    elif a.what == "thresholds":
        res = thresholds(a.data, a.model, a.limit)
    else:
        res = speed(a.model, a.auto, a.frames, a.repeats, a.baseline)
    res["command"] = "python -m benchmarks.hints_quality " + " ".join(argv or __import__("sys").argv[1:])
    res["wall_seconds"] = round(time.time() - t0, 1)
    save_result(f"hints_{a.what}", res, a.out)
    return res


if __name__ == "__main__":
    main()
