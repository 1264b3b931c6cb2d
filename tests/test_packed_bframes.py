"""MPEG-4 Part 2 with packed B-frames (DivX/Xvid "packed bitstream", issue 23): a P-frame's
packet also carries the B-frame after it and a placeholder N-VOP takes the B-frame's slot.
Built here from a plain MPEG-4 stream the way DivX 5 writes it; decoded as it is, frames came
out one slot late (80 ms gaps at 25 fps)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from media import read_video, scene

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.output_plan import EncodeOptions

VOP = b"\x00\x00\x01\xb6"  # MPEG-4 Part 2 video object plane start code


def vop_type(packet: bytes) -> int:
    """The coding type of the packet's last VOP: 0 I, 1 P, 2 B."""
    return packet[packet.rindex(VOP) + 4] >> 6


def n_vop(time_bits: int, tick: int) -> bytes:
    """A not-coded P-VOP (vop_coded 0): the placeholder a packed stream puts in a B-frame's slot."""
    bits = "01" + "0" + "1" + format(tick % (1 << time_bits), f"0{time_bits}b") + "1" + "0"
    bits += "0" + "1" * ((-len(bits) - 1) % 8)  # next_start_code() stuffing
    return VOP + int(bits, 2).to_bytes(len(bits) // 8, "big")


def packed_clip(path: Path, fmt: str, frames: int = 12) -> tuple[Path, Path]:
    """(the packed file, the plain one it was made from): MPEG-4 at 25 fps with one B-frame
    between references, DivX's 'p' (packed) user data in the first packet."""
    plain = path.with_name(f"plain{path.suffix}")
    with av.open(str(plain), "w", format=fmt) as c:
        v = c.add_stream("mpeg4", rate=25, options={"bf": "1"})
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(scene(64, 96, i), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    with av.open(str(plain)) as c:
        s = c.streams.video[0]
        tb = s.time_base
        packets = [(bytes(p), p.is_keyframe, p.dts) for p in c.demux(s) if p.size]
        out: list[tuple[bytes, bool, int]] = []
        i = 0
        while i < len(packets):
            data, key, dts = packets[i]
            if i == 0:
                k = data.index(VOP)
                data = data[:k] + b"\x00\x00\x01\xb2DivX503b1393p" + data[k:]
            if i + 1 < len(packets) and vop_type(data) == 1 and vop_type(packets[i + 1][0]) == 2:
                out += [(data + packets[i + 1][0], key, dts), (n_vop(5, i + 1), False, packets[i + 1][2])]
                i += 2
            else:
                out.append((data, key, dts))
                i += 1
        with av.open(str(path), "w", format=fmt) as o:
            ov = o.add_stream_from_template(s)
            for data, key, dts in out:
                p = av.Packet(data)
                p.stream, p.time_base, p.dts, p.pts = ov, tb, dts, dts if fmt != "avi" else None
                p.is_keyframe = key
                o.mux(p)
    return path, plain


@pytest.mark.parametrize("suffix, fmt", [(".avi", "avi"), (".mkv", "matroska")])
def test_packed_b_frames_keep_their_spacing_and_order(suffix, fmt, tmp_path, colorizer):
    src, plain = packed_clip(tmp_path / f"packed{suffix}", fmt)
    out = tmp_path / "out.mp4"
    lossless = ColorizeConfig(threads=2, encode=EncodeOptions(crf=0))
    summary = colorize_video(src, out, lossless, colorizer=colorizer, warn=lambda m: None)
    want, got = read_video(plain), read_video(out)
    assert summary.frames == 12
    gaps = np.diff(got["times"])
    assert np.allclose(gaps, 0.04), got["times"]  # 40 ms apart, as the frames were made
    assert got["times"] == pytest.approx(want["times"])
    for a, b in zip(want["luma"], got["luma"]):  # each picture in its own place
        assert np.array_equal(a, b)


def test_unpacked_mpeg4_is_untouched(tmp_path, colorizer):
    _, plain = packed_clip(tmp_path / "packed.avi", "avi", frames=6)
    out = tmp_path / "out.mp4"
    colorize_video(plain, out, ColorizeConfig(threads=2, encode=EncodeOptions(crf=0)), colorizer=colorizer)
    assert read_video(out)["times"] == read_video(plain)["times"]
