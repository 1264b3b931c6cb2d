"""Turn the stored results into benchmarks/README.md (tables) and a PNG plot of frames/s
against resolution for each system.

    python -m benchmarks.report              # after running the benchmarks

Reads the newest benchmarks/results/<name>_*.json of each benchmark; every number in the
README comes from those files (machine, versions and date are in each). The plot shows
measured end-to-end rates for streamcolor and the transcode-only floor; for the published
networks, which are not video pipelines, it shows an upper bound computed from measured
parts: 1 / (transcode-only time per frame + the network's model-only time per frame),
i.e. as if decode, encode and the network were all they cost (no colour conversion, no
upsampling, no overlap).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import RESULTS

HERE = Path(__file__).resolve().parent


def newest(name: str, results: Path) -> dict | None:
    files = sorted(results.glob(f"{name}_*.json"))
    return json.loads(files[-1].read_text()) if files else None


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def gpu_tables(g: dict) -> list[str]:
    """benchmarks.gpu_speed's JSON -> model-only and end-to-end tables."""
    info, mo = g["device_info"], g["model_only"]
    md = [
        f"`python -m benchmarks.gpu_speed` on {info.get('device')} (driver {info.get('driver')}, torch "
        f"{info.get('torch')}, TensorRT {info.get('tensorrt') or 'not installed'}), {g['machine']['date'][:10]}.",
        "",
        f"Model only, network input {mo['input'][0]}x{mo['input'][1]} (a {mo['frame'][1]}x{mo['frame'][0]} frame), "
        "median of CUDA-event timings:",
        "",
        "| engine | max error vs ONNX Runtime FP32 (rel.) | batch 1 ms | batch 1 fps | batch 8 ms | batch 8 fps |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in mo["engines"].items():
        if "error" in r:
            md.append(_row([name, r["error"], "", "", "", ""]))
            continue
        b1, b8 = r["batch1"], r["batch8"]
        md.append(_row([name, r["rel_error_vs_onnx_fp32"], b1["median_ms"], b1["fps"], b8["median_ms"], b8["fps"]]))
    e2e = g.get("end_to_end") or []
    if e2e:
        md += [
            "",
            "End to end (`streamcolor video`, batch 8, libx264 veryfast on the CPU; synthetic textured clip, 300 "
            "frames; compiled engines warmed first), beside transcode-only on the same machine:",
            "",
            "| size | backend | fps | transcode-only fps | ratio | decode / model / temporal / upsample / encode ms |",
            "|---|---|---|---|---|---|",
        ]
        for r in e2e:
            st = r["stage_ms_per_frame"]
            stages = " / ".join(str(round(st[k], 2)) for k in ("decode", "model", "temporal", "upsample", "encode"))
            md.append(
                _row(
                    [f"{r['size'][0]}x{r['size'][1]}", r["backend"], r["streamcolor_fps"]]
                    + [r["transcode_only_fps"], r["ratio_to_transcode"], stages]
                )
            )
    return md + [""]


def model_table(m: dict) -> list[str]:
    nets = m["nets"]
    tags = [t for t in ("nospin", "spin") if any(f"batch1_{t}" in v for v in nets.values() if isinstance(v, dict))]
    head = [
        "network",
        "input",
        *[f"median ms ({'runtime settings' if t == 'nospin' else 'ORT default'})" for t in tags],
    ]
    head += ["p99 ms (runtime)", "frames/s (runtime)", "x student time"]
    lines = [_row(head), _row(["---"] * len(head))]
    student = nets.get("student", {}).get("batch1_nospin", {}).get("median_ms")
    for name, v in nets.items():
        if not isinstance(v, dict) or "what" not in v:
            continue
        r = v.get("batch1_nospin") or v.get(f"batch1_{tags[0]}")
        cells = [f"{name}: {v['what']}", "×".join(str(d) for d in r["input"][2:])]
        cells += [v[f"batch1_{t}"]["median_ms"] for t in tags]
        cells += [r["p99_ms"], r["fps"], f"{r['median_ms'] / student:.1f}" if student else "-"]
        lines.append(_row(cells))
        if name.startswith("student") and "batch4_nospin" in v:
            b4 = v["batch4_nospin"]
            lines.append(
                _row(
                    [f"{name}, per frame at batch 4 (the pipeline's default)", "×".join(map(str, b4["input"][2:]))]
                    + [round(v[f"batch4_{t}"]["median_ms"] / 4, 3) for t in tags]
                    + ["-", round(b4["fps"], 1), "-"]
                )
            )
    speed = nets.get("student_speedup_vs_zhang2016")
    if speed:
        lines.append("")
        for t, s in speed.items():
            setting = "the runtime's settings (spinning off)" if t == "nospin" else "ONNX Runtime's defaults (spinning)"
            lines.append(
                f"- Student vs Zhang et al. 2016 with {setting}: **{s['batch1']}×** faster at batch 1, "
                f"**{s['per_frame_at_batch4']}×** per frame at batch 4."
            )
    return lines


def video_table(v: dict) -> list[str]:
    head = ["clip", "size", "streamcolor fps", "transcode-only fps", "ratio"]
    head += ["decode", "model", "temporal", "upsample", "encode"]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in v["runs"]:
        st = r["stage_ms_per_frame"]
        size = f"{r['size'][0]}×{r['size'][1]}"
        cells = [r["clip"], size, r["streamcolor_fps"], r["transcode_only_fps"], r["ratio_to_transcode"]]
        lines.append(_row(cells + [st[k] for k in ("decode", "model", "temporal", "upsample", "encode")]))
    return lines


BATCH_MODES = {
    "loop_cli": "loop of `streamcolor video` commands",
    "loop_api": "loop of colorize_video in one process (one engine)",
    "ray": "`streamcolor batch --ray` (local Ray, 1 CPU per task)",
}


def _loads(values: list[float] | None) -> str:
    return " / ".join(f"{v:.1f}" for v in values) if values else "not recorded"


def batch_section(b: dict) -> list[str]:
    bm = b["machine"]
    md = [
        "## Many files: `streamcolor batch`",
        "",
        f"{bm['cpu']}, {bm['cores']} cores, {bm['date'][:10]}; {b['clips']} clips, {b['frames']} frames in all "
        f"({b['height']}p H.264 from {', '.join(b['sources'])}), default settings. Best of {b['repeats']} "
        "repeats, modes alternating in a rotated order; the wall time of the whole set, process start and "
        f"engine load included. Load average (1/5/15 min) at the start {_loads(b['load_average_at_start'])}, at "
        f"the end {_loads(b['load_average_at_end'])}: other work (training runs) shared the cores, so compare "
        "the rows with each other, not with the tables above.",
        "",
        "| mode | seconds | files/hour | frames/s | × best single loop | all repeats (s) |",
        "|---|---|---|---|---|---|",
    ]
    for mode, r in b["modes"].items():
        name = BATCH_MODES.get(mode) or f"`streamcolor batch --workers {mode.split(':')[1]}`"
        md.append(_row([name, r["seconds"], r["files_per_hour"], r["fps"], r["x_best_single_loop"], r["all_seconds"]]))
    return md + [
        "",
        "Scaling to N machines is reasoned, not measured (one machine here): each file is an independent "
        "Ray task that reads its input and writes its output on shared storage, so throughput grows with the "
        "nodes' cores or GPUs until that storage's bandwidth or the number of files runs out; a batch "
        "with fewer files than task slots leaves slots idle (one file runs on one task).",
        "",
    ]


def by_height(v: dict) -> list[dict]:
    """Median over clips of each height's fps: one point per resolution for the plot."""
    import statistics

    out = []
    for h in sorted({r["size"][1] for r in v["runs"]}):
        rows = [r for r in v["runs"] if r["size"][1] == h]
        out.append(
            {
                "size": rows[0]["size"],
                "streamcolor_fps": statistics.median(r["streamcolor_fps"] for r in rows),
                "transcode_only_fps": statistics.median(r["transcode_only_fps"] for r in rows),
            }
        )
    return out


def plot(video: dict, model: dict | None, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = by_height(video)  # median over the clips at each height
    heights = [r["size"][1] for r in runs]
    fig, ax = plt.subplots(figsize=(10.5, 5), dpi=110)
    ax.plot(heights, [r["transcode_only_fps"] for r in runs], "k--o", label="transcode only (the floor), measured")
    ax.plot(
        heights, [r["streamcolor_fps"] for r in runs], "-o", lw=2.5, label="streamcolor, measured (median of clips)"
    )
    if model:
        for name, v in model["nets"].items():
            if name.startswith("student") or not isinstance(v, dict) or "batch1_nospin" not in v:
                continue
            ms = v["batch1_nospin"]["median_ms"]
            bound = [1000 / (1000 / r["transcode_only_fps"] + ms) for r in runs]
            ax.plot(heights, bound, ":s", label=f"{name} + transcode, upper bound")
    ax.axhline(30, color="grey", lw=0.8)
    ax.text(heights[0], 31, "real time (30 fps)", color="grey", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(heights, [f"{r['size'][0]}×{r['size'][1]}" for r in runs])
    ax.set_xlabel("frame size")
    ax.set_ylabel("frames per second (log)")
    m = video["machine"]
    ax.set_title(f"End to end on {m['cores']} CPU cores ({m['cpu']}), {m['date'][:10]}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def write_readme(results: Path, out: Path, plot_path: Path | None) -> str:
    model, video = newest("model_speed", results), newest("video_speed", results)
    live, mem = newest("live_latency", results), newest("memory", results)
    temporal, deflicker = newest("temporal_quality", results), newest("deflicker", results)
    gpu = newest("gpu_speed", results)
    batch = newest("batch_speed", results)
    md = [
        "# Benchmarks",
        "",
        "Every number below is read from `benchmarks/results/*.json` by `python -m benchmarks.report`;",
        "each JSON records the machine (CPU, cores), library versions and date. Rerun any of them:",
        "",
        "```bash",
        "python -m benchmarks.model_speed        # model only, our student beside the published networks",
        "python -m benchmarks.video_speed --repeats 3 --height 480 720 1080   # end to end vs transcode-only",
        "python -m benchmarks.live_latency       # live: UDP in, UDP out, per-stage latency",
        "python -m benchmarks.memory --minutes 60 --height 1080              # peak RSS, hour-long input",
        "python -m benchmarks.temporal_quality   # flicker filter quality and cost",
        "python -m benchmarks.deflicker_archival # brightness deflicker on archival film",
        "python -m benchmarks.gpu_speed          # NVIDIA GPU: FP16 vs FP32, model-only and end to end",
        "python -m benchmarks.batch_speed        # many files: batch workers and Ray beside single runs",
        "python -m benchmarks.report             # this file and the plot",
        "streamcolor bench                       # the short version, on your machine, < 1 minute",
        "```",
        "",
    ]
    if model:
        mm = model["machine"]
        md += [
            "## Model only (CPU, ONNX Runtime)",
            "",
            f"{mm['cpu']}, {mm['cores']} cores, onnxruntime {mm['onnxruntime']}, {model['threads']} threads, "
            f"{mm['date'][:10]}. Each network at its native input size with random weights (speed does not "
            "depend on them), batch 1, warm-up excluded. *Runtime settings* are the pipeline's (idle ONNX "
            "Runtime workers sleep, so decode and encode keep their cores; denormals flushed to zero); "
            "*ORT default* lets workers spin.",
            "",
            *model_table(model),
            "",
        ]
    if video:
        vm = video["machine"]
        md += [
            "## End to end: `streamcolor video` beside transcode-only",
            "",
            f"{vm['cpu']}, {vm['cores']} cores, {vm['date'][:10]}; each clip turned gray and scaled, H.264 "
            f"veryfast crf 18 both ways, median of {video['runs'][0]['repeats']} alternating runs. Stage "
            "columns: ms of each stage's own work per frame (stages overlap in threads).",
            "",
            *video_table(video),
            "",
        ]
        if plot_path:
            md += [
                f"![frames/s against resolution]({plot_path.relative_to(out.parent).as_posix()})",
                "",
                "Solid lines are measured. The published networks are not video pipelines, so their dotted lines "
                "are upper bounds computed from measured parts: 1 / (transcode-only time per frame + the "
                "network's model-only time), as if decode, encode and one network run per frame were all they "
                "cost (no colour conversion, no upsampling, no overlap between them).",
                "",
            ]
    if batch:
        md += batch_section(batch)
    if live:
        md += ["## Live latency", "", "| network every | frames out / sent | dropped in steady state | "
               "p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in live["runs"]:
            t = r["latency_ms"]["total"]
            md.append(
                _row(
                    [f"{r['keyframe_interval']} frame(s)", f"{r['frames_out']} / {r['sent_frames']}"]
                    + [r["dropped_steady_state"], t["p50_ms"], t["p99_ms"], t["max_ms"]]
                )
            )
        md += [
            "",
            f"{live['size'][0]}×{live['size'][1]} at {live['fps']} fps over UDP on 127.0.0.1 for {live['seconds']} s "
            "of steady state (first 2 s left out): from a packet's arrival to its colorized frame leaving the "
            "encoder. The sender runs on the same cores.",
            "",
        ]
    if mem:
        r = mem["run"]
        md += [
            "## Memory",
            "",
            f"{r['size'][0]}×{r['size'][1]}, {r['frames']} frames piped in (never stored): peak RSS "
            f"**{r['peak_rss_mb']} MB**; {r['rss_first_10pct_mb']} MB over the first 10 % of frames, "
            f"{r['rss_last_10pct_mb']} MB over the last 10 %.",
            "",
        ]
    if temporal:
        s = temporal["summary"]
        md += ["## Temporal filter", "", "| mode | warp error × off | CDC × off | PSNR − off (dB) | ms/frame |",
               "|---|---|---|---|---|"]  # fmt: skip
        for mode, v in s.items():
            if mode in ("truth", "off"):
                continue
            md.append(
                _row(
                    [mode, round(v["warp_error_vs_off"], 3), round(v["cdc_vs_off"], 3)]
                    + [round(v["psnr_minus_off"], 2), round(v["filter_ms_per_frame"], 2)]
                )
            )
        md.append("")
    if deflicker:
        md += ["## Deflicker (`--deflicker`)", "", "| clip | frames | mean luma step, raw | deflickered | ms/frame |",
               "|---|---|---|---|---|"]  # fmt: skip
        for clip, r in deflicker["clips"].items():
            md.append(
                _row(
                    [clip, r["frames"], round(r["mean_abs_luma_step_raw"], 2)]
                    + [round(r["mean_abs_luma_step_deflickered"], 2), round(r["ms_per_frame"], 2)]
                )
            )
        md.append("")
    md += ["## NVIDIA GPU", ""]
    if gpu:
        md += gpu_tables(gpu)
    else:
        md += [
            "`python -m benchmarks.gpu_speed` has not been run on a GPU for the shipped model yet. An earlier "
            "run of `training/gpu_model_speed.py` on an H200 (depth-4 students, not shipped) is in "
            "`results/gpu_model_speed_h200.json`.",
            "",
        ]
    text = "\n".join(md)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, default=HERE / "README.md")
    a = ap.parse_args(argv)
    video = newest("video_speed", a.results)
    png = None
    if video:
        png = plot(video, newest("model_speed", a.results), a.out.parent / "results" / "fps_vs_resolution.png")
    write_readme(a.results, a.out, png)
    print(f"wrote {a.out}" + (f" and {png}" if png else ""))
    return a.out


if __name__ == "__main__":
    main()
