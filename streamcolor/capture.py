"""Live input: what to open (a URL, a file, a camera), opening it within a time limit,
reading frames stamped on arrival, and reconnecting when it drops."""

from __future__ import annotations

import glob
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import av
import cv2

from streamcolor.config import LiveConfig
from streamcolor.errors import ConfigError, InputError, InputNotYetThere
from streamcolor.output_plan import is_url
from streamcolor.source import GrayFrame, VideoSource


@dataclass(frozen=True)
class SourceSpec:
    """What to open: a URL, a file, or a camera (fmt 'v4l2', 'avfoundation', 'dshow')."""

    url: str
    fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    realtime: bool = False  # a file played at its own pace (then it is live)

    @property
    def live(self) -> bool:
        return self.realtime or self.remote

    @property
    def remote(self) -> bool:
        """A camera or a network stream: when it drops, it may come back (reconnect)."""
        return self.fmt is not None or is_url(self.url)


@dataclass
class LiveFrame(GrayFrame):
    """A GrayFrame with perf_counter stamps: arrival (after pacing, before decoding),
    taken by the colorize stage, colour finished."""

    t_arrival: float = 0.0
    t_start: float = 0.0
    t_colored: float = 0.0
    seconds: float = 0.0  # on the hints' clock (LiveHints): the input's time, or arrival time when remote
    hinted: bool = False  # hint planes went into the network for this frame


def list_cameras(dev: str = "/dev") -> list[str]:
    """V4L2 capture devices on Linux (/dev/video*), in numeric order; elsewhere none are listed."""
    if not sys.platform.startswith("linux"):
        return []
    found = glob.glob(os.path.join(dev, "video*"))
    return sorted(found, key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))


def camera_spec(device: str | None, size: str | None = None, fps: int | None = None, dev: str = "/dev") -> SourceSpec:
    """DEVICE (an index, a path, or a name where the OS uses names) -> what FFmpeg opens."""
    options = {}
    if size:
        if not re.fullmatch(r"\d+x\d+", size):
            raise ConfigError(f"camera size must look like 640x480, got '{size}'")
        options["video_size"] = size
    if fps:
        options["framerate"] = str(fps)
    if sys.platform == "darwin":
        return SourceSpec(device or "0", "avfoundation", options)
    if sys.platform.startswith("win"):
        if not device:
            raise InputError('name the camera: streamcolor webcam "Integrated Camera" (FFmpeg\'s dshow names)')
        return SourceSpec(f"video={device}", "dshow", options)
    cameras = list_cameras(dev)
    found = f"cameras found: {', '.join(cameras)}" if cameras else f"no cameras found ({dev}/video* is empty)"
    if device is None:
        if not cameras:
            raise InputError(f"no camera to open: {found}")
        path = cameras[0]
    else:
        path = os.path.join(dev, f"video{device}") if device.isdigit() else device
        if not os.path.exists(path):
            raise InputError(f"no camera at {path}; {found}")
    return SourceSpec(path, "v4l2", options)


class LiveCapture:
    """Frames from a source, reopened with back-off when a live one drops."""

    def __init__(
        self,
        spec: SourceSpec,
        cfg: LiveConfig,
        warn: Callable[[str], None],
        cancelled: Callable[[], bool] = lambda: False,
    ):
        """cancelled: whether to stop waiting for a network input that is not there yet
        (Ctrl-C): the wait then ends in KeyboardInterrupt."""
        self.spec = spec
        self.cfg = cfg
        self.warn = warn
        self.reconnects = 0
        self.lost = False  # the input is away (lost, and not back yet)
        self.source = self._first_open(cancelled)
        self.info = self.source.info
        self.connected = threading.Event()
        self.connected.set()
        self.frames = 0
        self.decode_errors = 0

    def _first_open(self, cancelled: Callable[[], bool]) -> VideoSource:
        """The first open fails loudly (a wrong URL, a missing file is not an outage), except
        a network input with nothing there yet: its sender may start after us (issue 23), so
        that is waited for, saying so once. Each open listens for open_timeout seconds itself,
        so the pause between them stays short (no back-off): a sender that starts during a
        pause is missed for at most that long."""
        delay, said = 0.5, False
        while True:
            try:
                return self._open()
            except InputError as e:
                # once waiting, a stream caught in its first half-second (probed before its
                # first picture: 'no video stream') is still on its way too
                if not self.spec.remote or not (said or isinstance(e, InputNotYetThere)):
                    raise
                if not said:
                    self.warn(f"{e}; waiting for it (Ctrl-C stops)")
                    said = True
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if cancelled():
                    raise KeyboardInterrupt
                time.sleep(0.05)
            if cancelled():
                raise KeyboardInterrupt

    def _open(self) -> VideoSource:
        timeout = (max(self.cfg.open_timeout, self.cfg.read_timeout), self.cfg.read_timeout) if self.spec.live else None
        options = dict(self.spec.options)
        if is_url(self.spec.url):
            # Probe briefly; decode without holding frames back (low_delay). Not fflags
            # nobuffer: it throws away the packets read while probing, up to a GOP of frames.
            options = {"flags": "low_delay", "analyzeduration": "500000", **options}
        if self.spec.url.startswith("udp://"):
            # a 4 MB socket buffer rides out a key frame arriving while we are busy
            options = {"buffer_size": str(4 << 20), "overrun_nonfatal": "1", **options}
        try:
            return VideoSource(
                self.spec.url, threads=False, fmt=self.spec.fmt, options=options, timeout=timeout, carry_streams=False
            )
        except InputError as e:
            if self.spec.fmt in ("v4l2", "avfoundation", "dshow"):
                cams = list_cameras()
                raise InputError(f"{e}; cameras found: {', '.join(cams) or 'none'}") from None
            raise

    def run(self, stop: threading.Event) -> Iterator[LiveFrame]:
        index = 0
        size = (self.info.height, self.info.width)
        while not stop.is_set():
            src = self.source
            anchor: tuple[float, float] | None = None  # (wall, stream seconds) for --realtime pacing
            arrivals: dict[int, float] = {}  # packet pts -> arrival: a decoder that holds frames back shows up
            try:
                for packet in src.container.demux(src.stream):
                    if stop.is_set():
                        return
                    ts = packet.dts if packet.dts is not None else packet.pts
                    if self.spec.realtime and ts is not None and packet.time_base:
                        t_stream = float(ts * packet.time_base)
                        now = time.perf_counter()
                        if anchor is None or now - (anchor[0] + t_stream - anchor[1]) > 1.0:
                            anchor = (now, t_stream)  # first packet, or fell behind a lot: re-anchor
                        delay = anchor[0] + t_stream - anchor[1] - now
                        if delay > 0:
                            stop.wait(delay)
                    t_arrival = time.perf_counter()
                    if packet.pts is not None:
                        arrivals[packet.pts] = t_arrival
                        if len(arrivals) > 64:
                            del arrivals[next(iter(arrivals))]
                    try:
                        decoded = packet.decode()
                    except av.FFmpegError:
                        self.decode_errors += 1
                        continue
                    for frame in decoded:
                        g = src.gray(frame, index)
                        y8 = g.y8
                        if y8.shape != size:  # the source came back at another size: keep ours
                            y8 = cv2.resize(y8, size[::-1], interpolation=cv2.INTER_AREA)
                        index += 1
                        self.frames += 1
                        arrived = arrivals.pop(frame.pts, t_arrival) if frame.pts is not None else t_arrival
                        yield LiveFrame(y8=y8, pts=g.pts, rotation=g.rotation, index=g.index, t_arrival=arrived)
            except av.FFmpegError:
                pass  # read timeout or network error: handled as a lost input below
            finally:
                src.close()
            if not self.spec.remote or stop.is_set():
                return
            self._reconnect(stop)

    def _reconnect(self, stop: threading.Event) -> None:
        self.connected.clear()
        self.lost = True
        lost = time.monotonic()
        delay = 0.5
        self.warn(f"input lost: {self.spec.url}; reconnecting")
        while not stop.is_set():
            try:
                self.source = self._open()
            except InputError:
                stop.wait(delay)
                delay = min(2 * delay, self.cfg.max_backoff)
                continue
            self.reconnects += 1
            self.lost = False
            self.connected.set()
            self.warn(f"input back after {time.monotonic() - lost:.1f} s")
            return
