"""Keep freed frame buffers in the process instead of returning them to the kernel.

glibc serves allocations above its mmap threshold (128 KiB, adapting up to 32 MiB) with
fresh mmap()s and unmaps them on free, so every per-frame array of a 854x480 frame
(about 1 MB each) is page-faulted in again on every frame: 3 of 7 ms of the chroma
stage, measured with benchmarks/video_speed.py's inputs on 2 cores. A fixed 64 MiB
threshold and a high trim threshold make those buffers come from the heap and be
reused; memory stays flat (the working set of a few frames), it is just not returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_frame_buffers(threshold: int = 64 << 20) -> bool:
    """Apply once per process; True when glibc accepted it (False elsewhere: no-op)."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2 * threshold) == 1
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _done = ok
    return ok
