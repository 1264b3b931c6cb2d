"""Live inputs whose sender is not there yet (issue 23): the run waits for it instead of
failing, says so once, and Ctrl-C while waiting or streaming exits 130 in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_live import gray_scenes, start_sender

from benchmarks.live_latency import free_udp_port
from streamcolor.capture import SourceSpec
from streamcolor.config import LiveConfig
from streamcolor.errors import InputError
from streamcolor.latency import format_summary
from streamcolor.live import run_live

QUICK = LiveConfig(threads=2, read_timeout=0.6, open_timeout=1.0)


def test_waits_for_a_sender_that_starts_late_and_says_when_it_is_lost_at_the_end(tmp_path, colorizer):
    port = free_udp_port()
    out = tmp_path / "out.ts"
    warnings: list[str] = []
    stop = threading.Event()
    result = {}

    def run():
        result["s"] = run_live(
            SourceSpec(f"udp://127.0.0.1:{port}"), out, QUICK, stop=stop, warn=warnings.append, colorizer=colorizer
        )

    rx = threading.Thread(target=run)
    rx.start()
    time.sleep(2.5)  # two opens have found nothing: we are waiting
    assert rx.is_alive() and len(warnings) == 1, warnings
    assert "nothing received in 1.0 s (is the sender running?); waiting for it" in warnings[0]
    tx = start_sender(f"udp://127.0.0.1:{port}?pkt_size=1316", gray_scenes(75))  # 3 s: several opens long
    tx.join(10)
    deadline = time.monotonic() + 10
    while not any("input lost" in w for w in warnings) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()  # while the input is away
    rx.join(15)
    s = result["s"]
    assert s.frames_out > 10 and s.reconnects == 0 and s.lost_at_end
    assert "0 reconnect(s), " in format_summary(s) and "input lost and not back when stopped" in format_summary(s)


def test_stopped_while_waiting_is_one_line(colorizer):
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    try:
        run_live(
            SourceSpec(f"udp://127.0.0.1:{free_udp_port()}"),
            None,
            QUICK,
            record=Path("never.mp4"),
            stop=stop,
            warn=lambda m: None,
            colorizer=colorizer,
        )
    except InputError as e:
        assert "stopped while waiting for it" in str(e)
    else:
        raise AssertionError("no error")
    assert not Path("never.mp4").exists()


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_or_sigterm_while_waiting_exits_130_or_143_in_one_line(sig, code, word, tmp_path):
    rec = tmp_path / "rec.mp4"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "streamcolor", "stream", f"udp://127.0.0.1:{free_udp_port()}", "--record", str(rec)]
    p = subprocess.Popen([*cmd, "--threads", "2"], stderr=subprocess.PIPE, text=True, env=env)
    head = []
    for line in p.stderr:  # the first open gives up after 5 s: then it says it waits
        head.append(line)
        if "waiting for it" in line:
            break
    p.send_signal(sig)
    err = "".join(head) + p.communicate(timeout=30)[1]
    assert p.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        f"streamcolor: {word} while waiting for udp://"
    )
    assert not rec.exists()
