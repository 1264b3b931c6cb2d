"""`streamcolor batch` on a folder of tiny generated clips: mirrored outputs equal to
`streamcolor video` on each file, a broken file recorded and the rest done, reruns that
skip, an interrupted or killed batch that resumes, and the same outputs on Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import make_shots_video, make_video, read_video, scene
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.batch import BatchConfig, run_batch
from streamcolor.batch_inputs import plan_jobs
from streamcolor.batch_jobs import RECORD_NAME
from streamcolor.cli import app
from streamcolor.errors import ConfigError, InputError
from streamcolor.output_plan import EncodeOptions, partial_path

LOSSLESS = ColorizeConfig(threads=2, encode=EncodeOptions(crf=0))
# what --split-shots pieces amount to: no shot memory across them (make_shots_video's third shot
# is its first, recurring)
PIECES_ALIKE = ColorizeConfig(threads=2, encode=EncodeOptions(crf=0), shot_memory=False)
VIDEOS = ("a.mp4", "sub/b.mp4", "sub/deeper/c.mp4")  # outputs, relative to OUTDIR


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> Path:
    """Three clips (one VFR in MKV), a photo, a broken 'video' and a text file to ignore."""
    d = tmp_path_factory.mktemp("reels")
    (d / "sub" / "deeper").mkdir(parents=True)
    make_video(d / "a.mp4", frames=12)
    make_video(d / "sub" / "b.mkv", frames=10, vfr=True)
    make_video(d / "sub" / "deeper" / "c.mp4", width=80, height=48, frames=8, audio=False)
    cv2.imwrite(str(d / "sub" / "photo.png"), scene(64, 96, 3)[..., ::-1])
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated and nothing else")
    (d / "notes.txt").write_text("not a reel\n")
    return d


@pytest.fixture(scope="module")
def local_run(reels, tmp_path_factory) -> tuple[Path, object]:
    """The batch through the CLI, lossless, one worker with 2 threads: (OUTDIR, result)."""
    out = tmp_path_factory.mktemp("batch") / "out"
    result = CliRunner().invoke(app, ["batch", str(reels), str(out), "--crf", "0", "--threads", "2", "--workers", "1"])
    return out, result


def records(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / RECORD_NAME).read_text().splitlines()]


def partials(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.rglob("*") if ".partial." in p.name)


def tags(path: Path) -> tuple[str | None, str | None]:
    """The container's title and the audio stream's language."""
    import av

    with av.open(str(path)) as c:
        return c.metadata.get("title"), c.streams.audio[0].metadata.get("language")


def assert_same_video(a: Path, b: Path) -> None:
    """Frames, every timestamp, audio packets and decoded pictures identical."""
    va, vb = read_video(a), read_video(b)
    assert va["times"] == vb["times"]
    assert va["audio_packets"] == vb["audio_packets"]
    assert len(va["rgb"]) == len(vb["rgb"])
    for x, y in zip(va["rgb"], vb["rgb"]):
        np.testing.assert_array_equal(x, y)


def test_batch_mirrors_folder_records_and_isolates_a_broken_file(reels, local_run):
    out, result = local_run
    assert result.exit_code == 1, result.output  # one input failed
    assert "4 done, 0 skipped, 1 failed" in result.output  # 3 clips and a photo
    assert "failed: " in result.output and "broken.mp4: cannot open" in result.output
    assert "Traceback" not in result.output
    for rel in VIDEOS:
        assert (out / rel).is_file()
    assert (out / "sub" / "photo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "notes.txt").exists() and not partials(out)
    lines = {Path(r["input"]).name: r for r in records(out)}
    assert set(lines) == {"a.mp4", "b.mkv", "c.mp4", "photo.png", "broken.mp4"}
    assert lines["broken.mp4"]["status"] == "failed" and "cannot open" in lines["broken.mp4"]["error"]
    assert (lines["a.mp4"]["status"], lines["a.mp4"]["frames"]) == ("done", 12)
    assert lines["b.mkv"]["frames"] == 10 and lines["b.mkv"]["backend"].startswith("onnx")
    assert all(r["seconds"] > 0 and r["fps"] > 0 for r in lines.values() if r["status"] == "done")


def test_batch_outputs_equal_streamcolor_video_on_each_file(reels, local_run, tmp_path, colorizer):
    out, _ = local_run
    for src, rel in [("a.mp4", "a.mp4"), ("sub/b.mkv", "sub/b.mp4"), ("sub/deeper/c.mp4", "sub/deeper/c.mp4")]:
        single = tmp_path / f"{Path(src).stem}.mp4"
        colorize_video(reels / src, single, LOSSLESS, colorizer=colorizer)
        assert_same_video(out / rel, single)
    assert read_video(out / "sub/b.mp4")["times"] == read_video(reels / "sub/b.mkv")["times"]  # VFR kept


def test_rerun_skips_finished_cleans_stale_partials_and_overwrite_redoes(reels, local_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(local_run[0], out)
    stale = out / "sub" / "b.partial.mp4"
    (out / "sub" / "b.mp4").unlink()
    stale.write_bytes(b"half a file from a killed batch")
    before = {rel: (out / rel).stat().st_mtime_ns for rel in ("a.mp4", "sub/deeper/c.mp4")}
    cfg = BatchConfig(colorize=LOSSLESS, workers=1)
    summary = run_batch([str(reels)], out, cfg)
    assert [Path(r.output).name for r in summary.done] == ["b.mp4"]
    assert len(summary.skipped) == 3 and len(summary.failed) == 1
    assert {rel: (out / rel).stat().st_mtime_ns for rel in before} == before  # untouched
    assert not partials(out) and len(read_video(out / "sub" / "b.mp4")["times"]) == 10
    assert len(records(out)) == 5 + 2  # the first run's lines, then b.mkv done and broken.mp4 failed again
    assert sorted(r["status"] for r in records(out)[-2:]) == ["done", "failed"]
    again = run_batch([str(reels)], out, BatchConfig(colorize=LOSSLESS, workers=2, overwrite=True))
    assert len(again.done) == 4 and not again.skipped
    assert all((out / rel).stat().st_mtime_ns != t for rel, t in before.items())


def test_discovery_globs_lists_explicit_files_and_clashes(reels, tmp_path, monkeypatch):
    monkeypatch.chdir(reels)
    out = tmp_path / "o"
    cfg = BatchConfig()
    # a quoted glob mirrors from where its wildcards start
    jobs = plan_jobs(["sub/**/*.m*"], out, cfg)
    assert sorted(str(j.out.relative_to(out)) for j in jobs) == ["b.mp4", "deeper/c.mp4"]
    # a list file: paths as written are mirrored; comments and blank lines ignored
    (tmp_path / "reels.txt").write_text(f"# the reels\n{reels}/a.mp4\n\n")
    listed = reels / "list.txt"
    listed.write_text("sub/deeper/c.mp4  # short one\nsub/photo.png\n")
    try:
        jobs = plan_jobs(["@list.txt", str(tmp_path / "reels.txt")], out, cfg)
    finally:
        listed.unlink()
    assert [(str(j.out.relative_to(out)), j.kind) for j in jobs] == [
        ("sub/deeper/c.mp4", "video"),
        ("sub/photo.png", "image"),
        ("a.mp4", "video"),
    ]
    # --image takes only the photos; a container choice changes the videos' extension
    assert [j.src.name for j in plan_jobs(["."], out, BatchConfig(kind="image"))] == ["photo.png"]
    assert {j.out.suffix for j in plan_jobs(["."], out, BatchConfig(container="mkv")) if j.kind == "video"} == {".mkv"}
    # an output folder inside the input folder is not scanned on a rerun
    inside = reels / "colour"
    (inside).mkdir()
    (inside / "a.mp4").write_bytes(b"an earlier output")
    try:
        assert not any("colour" in str(j.src) for j in plan_jobs(["."], inside, cfg))
    finally:
        shutil.rmtree(inside)
    # two inputs that would write the same output are refused before any work
    (tmp_path / "x").mkdir()
    shutil.copy(reels / "a.mp4", tmp_path / "x" / "a.mp4")
    with pytest.raises(InputError, match="would both write"):
        plan_jobs(["a.mp4", str(tmp_path / "x" / "a.mp4")], out, cfg)
    with pytest.raises(InputError, match="input not found"):
        plan_jobs(["nowhere.mp4"], out, cfg)
    with pytest.raises(InputError, match="no videos or photos match"):
        plan_jobs(["*.nothing"], out, cfg)


def test_gpus_are_handed_out_one_per_worker(reels, tmp_path):
    """Each worker process sees only its own device (CUDA_VISIBLE_DEVICES, set before any CUDA
    library loads); the ONNX engine here ignores it, the record shows where each file ran."""
    cfg = BatchConfig(colorize=ColorizeConfig(threads=1), gpus=("3", "5"))
    summary = run_batch([str(reels / "a.mp4"), str(reels / "sub/deeper/c.mp4")], tmp_path / "o", cfg)
    assert len(summary.done) == 2
    assert {r.gpu for r in summary.done} <= {"3", "5"} and all(r.gpu for r in summary.done)
    assert {r["gpu"] for r in records(tmp_path / "o")} == {r.gpu for r in summary.done}
    with pytest.raises(ConfigError, match="--gpus is for local workers"):
        BatchConfig(gpus=("0",), ray="auto")


@pytest.mark.parametrize("temporal", ["bidirectional", "causal"])
def test_split_shots_equals_a_single_run(temporal, tmp_path, colorizer):
    """One film cut at its 2 scene cuts into 3 pieces colorized by 2 workers and joined: the
    same frames, timestamps, audio packets and (lossless) pictures as `streamcolor video`."""
    film = make_shots_video(tmp_path / "film.mp4", shots=(50, 56, 49))
    # pieces colorized apart share no shot memory (its third shot is its first, recurring)
    cfg = ColorizeConfig(threads=1, temporal=temporal, encode=EncodeOptions(crf=0), shot_memory=False)
    single = tmp_path / "single.mp4"
    colorize_video(film, single, dataclasses.replace(cfg, threads=2), colorizer=colorizer)
    out = tmp_path / "out"
    summary = run_batch([str(film)], out, BatchConfig(colorize=cfg, workers=2, split_shots=True))
    assert [(r.status, r.frames, r.backend) for r in summary.results] == [("done", 155, "3 pieces")]
    assert_same_video(out / "film.mp4", single)
    assert tags(out / "film.mp4") == tags(single) == ("reel 7", "fra")
    assert not (out / ".streamcolor-chunks").exists() and not partials(out)


def test_split_shots_rerun_reuses_finished_pieces(tmp_path, colorizer):
    """A piece finished before an interruption is joined as it is, not colorized again; a stale
    partial piece is deleted and redone."""
    from streamcolor.shots import chunk_folder, colorize_piece, piece_path, plan_shots

    film = make_shots_video(tmp_path / "film.mp4", shots=(50, 56, 49))
    cfg = ColorizeConfig(threads=1, encode=EncodeOptions(crf=0))
    out = tmp_path / "out"
    plan = plan_shots(film, out / "film.mp4", colorizer, 2, cfg.encode)
    folder = chunk_folder(out, film, out / "film.mp4", cfg)
    folder.mkdir(parents=True)
    first, second = plan.pieces[0], plan.pieces[1]
    colorize_piece(film, piece_path(folder, first), first, cfg, colorizer)
    partial_path(piece_path(folder, second)).write_bytes(b"half a piece")
    seen = []
    summary = run_batch(
        [str(film)], out, BatchConfig(colorize=cfg, workers=2, split_shots=True), on_progress=seen.append
    )
    assert seen[0].frames_total == 155 - (first.end - first.first)  # the finished piece is not run again
    assert [(r.status, r.backend) for r in summary.results] == [("done", "3 pieces")]
    single = tmp_path / "single.mp4"
    colorize_video(film, single, PIECES_ALIKE, colorizer=colorizer)
    assert_same_video(out / "film.mp4", single)
    assert not (out / ".streamcolor-chunks").exists()


def _wait_for(check, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.01)
    pytest.fail(f"gave up waiting for {what}")


def test_interrupt_and_kill_9_lose_no_finished_output_and_rerun_resumes(tmp_path):
    """Real subprocesses: Ctrl-C (SIGINT to the process group, as a terminal sends it, then to
    the batch alone, as a script may) ends with the summary and exit 130 and no partial file;
    kill -9 at any moment leaves only complete outputs; the rerun skips them and does the rest."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        make_video(src / f"reel{i}.mp4", width=160, height=96, frames=40, audio=i % 2 == 0)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "streamcolor", "batch", str(src), str(out), "--workers", "1", "--threads", "2"]

    def finished() -> list[Path]:
        return sorted(p for p in out.glob("*.mp4") if ".partial." not in p.name)

    def check_finished_are_complete() -> None:
        for p in finished():
            assert len(read_video(p)["times"]) == 40, p

    def start_and_wait_mid_file() -> subprocess.Popen:
        done = len(finished()) + 1
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        _wait_for(lambda: len(finished()) >= done and partials(out), 120, "a finished output and one under way")
        return proc

    for to_group in (True, False):
        proc = start_and_wait_mid_file()
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "interrupted:" in err and "rerun the same command" in err
        assert not partials(out)  # the interrupted file's partial output was deleted
        check_finished_are_complete()

    proc = start_and_wait_mid_file()
    proc.kill()  # kill -9: nothing runs on the way out
    proc.communicate(timeout=30)
    check_finished_are_complete()  # what has a final name is complete; the rest are partials
    killed_at = len(finished())
    assert 3 <= killed_at < 8

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - killed_at} done, {killed_at} skipped, 0 failed" in rerun.stderr
    assert len(finished()) == 8 and not partials(out)
    check_finished_are_complete()
    assert {r["status"] for r in records(out)} == {"done"}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance with 2 CPUs for the module's Ray tests."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_run_equals_local_run(reels, local_run, ray_session, tmp_path):
    out = tmp_path / "ray"
    seen = []
    summary = run_batch([str(reels)], out, BatchConfig(colorize=LOSSLESS, ray="auto"), on_result=seen.append)
    assert len(summary.done) == 4 and [Path(r.input).name for r in summary.failed] == ["broken.mp4"]
    assert "cannot open" in summary.failed[0].error and len(seen) == 5
    for rel in VIDEOS:
        assert_same_video(out / rel, local_run[0] / rel)
    assert (out / "sub/photo.png").read_bytes() == (local_run[0] / "sub/photo.png").read_bytes()
    assert len(records(out)) == 5 and not partials(out)
    rerun = run_batch([str(reels)], out, BatchConfig(colorize=LOSSLESS, ray="auto"))
    assert len(rerun.skipped) == 4 and not rerun.done


def _spawned_workers(parent: int) -> list[int]:
    """Worker processes of a batch (Linux /proc): children running multiprocessing's spawn_main."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker process through /proc")
def test_a_worker_killed_mid_file_is_replaced_and_its_file_retried(tmp_path):
    """The OOM killer's case: one worker dies with SIGKILL; the batch starts a fresh worker,
    redoes that file once, finishes the rest and reports no failure."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        make_video(src / f"reel{i}.mp4", width=160, height=96, frames=40)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "streamcolor", "batch", str(src), str(out), "--workers", "1", "--threads", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for(lambda: partials(out) and _spawned_workers(proc.pid), 120, "a worker colorizing a file")
    os.kill(_spawned_workers(proc.pid)[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "3 done, 0 skipped, 0 failed" in err and "Traceback" not in err
    assert not partials(out)
    for i in range(3):
        assert len(read_video(out / f"reel{i}.mp4")["times"]) == 40
    assert [r["status"] for r in records(out)] == ["done"] * 3


def _ray_task_processes() -> list[int]:
    """Ray workers running our task right now (Ray sets their title to ray::<function>)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::_colorize_task"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's worker process through /proc")
def test_ray_task_whose_worker_dies_is_retried_once(ray_session, tmp_path):
    import threading

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        make_video(src / f"reel{i}.mp4", width=160, height=96, frames=60, audio=False)
    out = tmp_path / "out"
    done = []
    runner = threading.Thread(target=lambda: done.append(run_batch([str(src)], out, BatchConfig(ray="auto"))))
    runner.start()
    _wait_for(lambda: partials(out) and _ray_task_processes(), 120, "a Ray task colorizing a file")
    os.kill(_ray_task_processes()[0], signal.SIGKILL)  # the OOM killer's way
    runner.join(timeout=300)
    summary = done[0]
    assert len(summary.done) == 3 and not summary.failed
    for i in range(3):
        assert len(read_video(out / f"reel{i}.mp4")["times"]) == 60
    assert not partials(out)


def test_split_shots_on_ray_equals_a_single_run(ray_session, tmp_path, colorizer):
    film = make_shots_video(tmp_path / "film.mp4", shots=(50, 56, 49))
    single = tmp_path / "single.mp4"
    colorize_video(film, single, PIECES_ALIKE, colorizer=colorizer)
    result = CliRunner().invoke(
        app, ["batch", str(film), str(tmp_path / "out"), "--ray", "auto", "--split-shots", "--crf", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "1 done, 0 skipped, 0 failed" in result.output
    assert records(tmp_path / "out")[0]["backend"] == "3 pieces"
    assert_same_video(tmp_path / "out" / "film.mp4", single)
