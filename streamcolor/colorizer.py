"""From gray to colour: L at the network's size -> a*b* -> edge-aware upsampling -> chroma.

The full-resolution luma never passes through the network (richzhang/colorization
`demo_release.py`, DeOldify `_post_process`): the network sees L* at its own small
size, and only its a*b* is upsampled, guided by the full-resolution L*, and joined
to the original luma. For video we work at the chroma planes' size and return Cb/Cr
codes, so the output's Y plane is the input's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor import color
from streamcolor.engines.registry import Engine
from streamcolor.errors import ConfigError
from streamcolor.geodesic import hint_locality
from streamcolor.model import ModelCard


@dataclass(frozen=True)
class UpsampleConfig:
    """Fast guided filter (He & Sun 2015) used for joint upsampling of a*b*.

    radius: box radius in low-resolution (network output) pixels.
    eps: regulariser on the guide's variance, guide = L* / 100: edges with a local
         L* contrast well above 100 * sqrt(eps) keep the chroma from crossing them.
    """

    radius: int = 1
    eps: float = 2e-3


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(ab_lo: np.ndarray, guide_lo: np.ndarray, cfg: UpsampleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fast guided filter (He & Sun 2015) at low resolution: per-pixel linear models
    ab ~ A * guide + B, averaged over the box. Apply them at any size with
    A(up) * guide_hi + B(up): the chroma then follows the full-resolution edges.

    ab_lo:    (h, w, 2) float32 a*b* at the network output's size
    guide_lo: (h, w)    float32 L*/100 at the same size
    returns   A, B: (h, w, 2) float32 each
    """
    r, eps = cfg.radius, cfg.eps
    mean_i = _box(guide_lo, r)
    var_i = _box(guide_lo * guide_lo, r) - mean_i * mean_i
    mean_p = _box(ab_lo, r)
    cov_ip = _box(ab_lo * guide_lo[..., None], r) - mean_i[..., None] * mean_p
    a = cov_ip / (var_i[..., None] + eps)
    b = mean_p - a * mean_i[..., None]
    return _box(a, r), _box(b, r)


def guided_upsample(ab_lo: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray, cfg: UpsampleConfig) -> np.ndarray:
    """Joint upsampling of chroma along the edges of the guide.

    guide_hi: (H, W) float32 L*/100 at the target size; returns (H, W, 2) float32 a*b*.
    """
    a, b = guided_coefficients(ab_lo, guide_lo, cfg)
    size = guide_hi.shape[::-1]
    a = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, size, interpolation=cv2.INTER_LINEAR)
    return a * guide_hi[..., None] + b


def _block_min_max(y8: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of y8 over each block that one chroma sample of `shape` covers."""
    fy, fx = -(-y8.shape[0] // shape[0]), -(-y8.shape[1] // shape[1])
    if (fy, fx) == (1, 1):
        return y8, y8
    kernel = np.ones((fy, fx), np.uint8)
    lo = cv2.erode(y8, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[::fy, ::fx]
    hi = cv2.dilate(y8, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[::fy, ::fx]
    return lo[: shape[0], : shape[1]], hi[: shape[0], : shape[1]]


def _deep_codes(cbcr: np.ndarray, depth: int, full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, >=2) float32 Cb, Cr in [-0.5, 0.5] -> two (h, w) uint16 planes of codes at
    `depth` bits: full range spans 0 .. 2^depth - 1, limited range 224 * 2^(depth - 8)
    steps (as 8-bit's 224 scaled, the way FFmpeg and BT.2100 scale codes), centred on 2^(depth - 1)."""
    scale = float((1 << depth) - 1) if full_range else 224.0 * (1 << (depth - 8))
    top = (1 << depth) - 1
    codes = np.clip(np.rint(cbcr[..., :2] * scale + (1 << (depth - 1))), 0, top).astype(np.uint16)
    return np.ascontiguousarray(codes[..., 0]), np.ascontiguousarray(codes[..., 1])


# Smallest chroma plane side computed directly (see Colorizer._tiny_chroma_planes).
_MIN_PLANE = 8


# --vividness: a chroma gain; beyond 3 nearly every colour hits the sRGB gamut's edge
VIVIDNESS_MAX = 3.0


class Colorizer:
    """Turns gray frames into chroma with one engine and its model card."""

    def __init__(
        self, engine: Engine, card: ModelCard, upsample: UpsampleConfig | None = None, vividness: float | None = None
    ):
        """vividness: a gain on the network's a*b* (chroma), >= 0; None: the card's default. 1 is
        the network's annealed mean as trained; above 1 more saturated, 0 gray. The sRGB gamut
        clip afterwards keeps every hue reachable (chroma_planes)."""
        self.engine = engine
        self.card = card
        self.upsample = upsample or UpsampleConfig()
        self.vividness = card.vividness if vividness is None else float(vividness)
        if not 0.0 <= self.vividness <= VIVIDNESS_MAX:
            raise ConfigError(f"vividness must be between 0 and {VIVIDNESS_MAX:g}, got {self.vividness:g}")
        self._x_luts = {}  # full_range -> (256,) float32: luma code -> network input value
        self._l_luts = {}  # full_range -> (256,) float32: luma code -> L* / 100

    def _luts(self, full_range: bool) -> tuple[np.ndarray, np.ndarray]:
        if full_range not in self._x_luts:
            lum = color.luma_lut(full_range)
            self._x_luts[full_range] = ((lum - self.card.l_offset) / self.card.l_scale).astype(np.float32)
            self._l_luts[full_range] = (lum / 100.0).astype(np.float32)
        return self._x_luts[full_range], self._l_luts[full_range]

    def network_input(self, y8: np.ndarray, full_range: bool) -> np.ndarray:
        """(H, W) uint8 luma codes -> (1, h, w) float32 network input at the card's size."""
        h, w = self.card.input_size(*y8.shape)
        small = cv2.resize(y8, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.LUT(small, self._luts(full_range)[0])[None]

    def predict(self, inputs: list[np.ndarray], hints: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """list of (1, h, w) inputs of one shape -> list of (h/stride, w/stride, 2) a*b*.
        hints: per input, (3, h, w) hint planes (streamcolor/hints/planes.py) or None; a hint model only."""
        if hints is not None and any(h is not None for h in hints):
            return self.predict_features(inputs, hints)[0]
        out = self.engine.run(np.stack(inputs))
        return self._ab_list(out)

    def _ab_list(self, out: np.ndarray) -> list[np.ndarray]:
        gain = self.card.ab_scale * self.vividness
        if gain != 1.0:
            out = out * np.float32(gain)
        return [np.ascontiguousarray(o.transpose(1, 2, 0)) for o in out]

    def predict_features(
        self, inputs: list[np.ndarray], hints: list[np.ndarray | None] | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """A hint model: -> (a*b* list as predict(), features list: (h/16, w/16, C) float32 unit
        vectors per cell, the encoder's features that never depend on the hints)."""
        if not self.card.hints:
            raise ConfigError(
                f"model {self.card.path.name} takes no hints; hints and reference photos need a hint model "
                "(streamcolor/models/student_hints.onnx)"
            )
        x = np.stack(inputs)
        planes = 4 if self.card.hint_locality else 3
        zero = np.zeros((planes, *x.shape[2:]), np.float32)
        hints = hints if hints is not None else [None] * len(x)  # the engine is given every plane
        h = np.stack([zero if p is None else self._with_locality(p, xi) for p, xi in zip(hints, x)])
        ab, feats = self.engine.run_features(x, h)
        feats = feats.transpose(0, 2, 3, 1)
        feats = feats / np.maximum(np.linalg.norm(feats, axis=3, keepdims=True), 1e-6)
        return self._ab_list(ab), [np.ascontiguousarray(f, dtype=np.float32) for f in feats]

    def _with_locality(self, planes: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(3, h, w) hint planes -> the model's: a fourth plane, where the hints may change the
        picture (geodesic.hint_locality on the input's L*), when its card asks for it."""
        if not self.card.hint_locality or planes.shape[0] == 4:
            return planes
        lightness = (x[0] * self.card.l_scale + self.card.l_offset) / 100.0
        reach = hint_locality(lightness.astype(np.float32), planes[2] > 0, self.card.stride)
        return np.concatenate([planes, reach[None]], axis=0)

    def output_grid(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the network's a*b* output for a frame of `shape` (H, W)."""
        h, w = self.card.input_size(*shape)
        return h // self.card.stride, w // self.card.stride

    def guide_lo(self, y8: np.ndarray, shape: tuple[int, int], full_range: bool) -> np.ndarray:
        """(h, w) float32 L*/100 of y8 at the network output's grid `shape`: the guide of
        the upsampling and what the temporal filters compute flow on."""
        h, w = y8.shape
        if h >= 4 * shape[0] and w >= 4 * shape[1]:
            # a 2x area step first takes OpenCV's fast path; one odd-factor INTER_AREA
            # straight from 854x480 cost 0.43 ms, this 0.1 ms
            y8 = cv2.resize(y8, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        small = cv2.resize(y8, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return cv2.LUT(small, self._luts(full_range)[1])

    def _lab_at(
        self,
        y8: np.ndarray,
        ab_lo: np.ndarray,
        size: tuple[int, int],
        full_range: bool,
        guide_lo: np.ndarray | None = None,
    ) -> np.ndarray:
        """-> (H, W, 3) float32 L*a*b* at size (H, W): the original L* (y8 resized to
        size) with a*b* guided-upsampled onto it.

        L* is folded into the guided filter's linear model (L = 100 * guide + 0) so that
        one resize of 3-channel coefficients and one multiply-add build the whole image.
        """
        lut = self._luts(full_range)[1]
        h, w = ab_lo.shape[:2]
        if guide_lo is None:
            guide_lo = self.guide_lo(y8, (h, w), full_range)
        a, b = guided_coefficients(ab_lo, guide_lo, self.upsample)
        a3 = np.concatenate([np.full((h, w, 1), 100.0, np.float32), a], axis=2)
        b3 = np.concatenate([np.zeros((h, w, 1), np.float32), b], axis=2)
        dsize = size[::-1]
        y_at = y8 if y8.shape == size else cv2.resize(y8, dsize, interpolation=cv2.INTER_AREA)
        guide = cv2.LUT(cv2.merge([y_at, y_at, y_at]), lut)
        lab = cv2.multiply(cv2.resize(a3, dsize, interpolation=cv2.INTER_LINEAR), guide)
        return cv2.add(lab, cv2.resize(b3, dsize, interpolation=cv2.INTER_LINEAR))

    def chroma_planes(
        self,
        y8: np.ndarray,
        ab_lo: np.ndarray,
        chroma_shape: tuple[int, int],
        full_range: bool,
        matrix: str,
        guide_lo: np.ndarray | None = None,
        depth: int = 8,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cb and Cr planes, (Hc, Wc) uint8 each, to pair with the untouched luma y8
        (depth > 8: uint16 codes at that many bits, for a deep output's own luma; the same
        colour, rounded at the output's depth so that a smooth ramp stays smooth).

        The colour is L*a*b* -> sRGB -> Cb/Cr at the chroma planes' size, then scaled
        towards gray where the original luma plus that chroma would leave the RGB
        cube (the gamut clamp), so decoding Y+Cb+Cr never clips into a wrong hue.
        guide_lo: guide_lo(y8, ab_lo's grid) when the caller already has it.
        """
        h, w = chroma_shape
        if h < _MIN_PLANE or w < _MIN_PLANE:
            return self._tiny_chroma_planes(y8, ab_lo, chroma_shape, full_range, matrix, guide_lo, depth)
        lab = self._lab_at(y8, ab_lo, chroma_shape, full_range, guide_lo)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        to_chroma = color.chroma_matrices(matrix)[0]
        # 3x3 transforms (OpenCV's fast case; 3 -> 2 channels was 6x slower): (Cb, Cr, 0) in
        # [-0.5, 0.5], and what that chroma adds to R', G', B' on top of the luma.
        cbcr = cv2.transform(rgb, to_chroma)
        d = cv2.transform(rgb, color.chroma_delta_matrix(matrix))
        # The decoder pairs each chroma sample with every luma sample of its block, so
        # the clamp must hold for the block's darkest and brightest luma, not its mean.
        y_lo, y_hi = _block_min_max(y8, chroma_shape)
        gray = color.gray_luts(full_range)
        room_up = cv2.LUT(y_hi, gray[1])  # 1 - y: headroom above
        room_down = cv2.LUT(y_lo, gray[0])  # y: room below
        # Largest s <= 1 with 0 <= y + s * d <= 1 on every channel: room / d falls as d
        # grows, so only each pixel's largest rise and largest fall over R', G', B' matter
        # (the same s as dividing channel by channel, with a third of the divisions).
        # (numpy on the channel views: cv2.split took 7 ms at 1080p inside the pipeline)
        d0, d1, d2 = d[..., 0], d[..., 1], d[..., 2]
        rise = cv2.max(np.maximum(np.maximum(d0, d1), d2), 1e-6)
        fall = cv2.max(cv2.multiply(np.minimum(np.minimum(d0, d1), d2), -1.0), 1e-6)
        s = cv2.min(cv2.min(cv2.divide(room_up, rise), cv2.divide(room_down, fall)), 1.0)
        if depth > 8:
            return _deep_codes(cbcr * s[..., None], depth, full_range)
        scale = 255.0 if full_range else 224.0
        uv = cv2.multiply(cbcr.reshape(h, w * 3), cv2.merge([s, s, s]).reshape(h, w * 3), scale=scale)
        # + 128, rounded and saturated to uint8 in one pass (the values are >= 0.5 here, so
        # the absolute value taken on the way changes nothing)
        u8 = cv2.convertScaleAbs(uv, alpha=1.0, beta=128.0).reshape(h, w, 3)
        return u8[..., 0], u8[..., 1]

    def field_chroma_planes(
        self,
        y8: np.ndarray,
        ab_lo: np.ndarray,
        chroma_shape: tuple[int, int],
        full_range: bool,
        matrix: str,
        depth: int = 8,
    ) -> tuple[np.ndarray, np.ndarray]:
        """chroma_planes for an interlaced frame: each field's chroma from that field's own
        luma. In interlaced 4:2:0 the chroma rows alternate between the fields as the luma
        rows do (MPEG-2 and H.264 field sampling), so a chroma sample computed on the woven
        frame would mix two instants 20 ms apart (the guide's edges, the gamut clamp's
        darkest and brightest luma). The network's a*b* (low resolution) is shared."""
        h, w = chroma_shape
        if h < 2 or y8.shape[0] < 2:
            return self.chroma_planes(y8, ab_lo, chroma_shape, full_range, matrix, depth=depth)
        dtype = np.uint16 if depth > 8 else np.uint8
        cb, cr = np.empty((h, w), dtype), np.empty((h, w), dtype)
        for parity in (0, 1):
            rows = (h + 1 - parity) // 2
            field = np.ascontiguousarray(y8[parity::2])
            fb, fr = self.chroma_planes(field, ab_lo, (rows, w), full_range, matrix, depth=depth)
            cb[parity::2], cr[parity::2] = fb, fr
        return cb, cr

    def _tiny_chroma_planes(
        self,
        y8: np.ndarray,
        ab_lo: np.ndarray,
        chroma_shape: tuple[int, int],
        full_range: bool,
        matrix: str,
        guide_lo: np.ndarray | None,
        depth: int = 8,
    ) -> tuple[np.ndarray, np.ndarray]:
        """chroma_planes for planes under _MIN_PLANE samples a side (a 2x2 video has 1x1
        chroma): OpenCV reads a (1, 1) or (4, 1) array as a scalar in its arithmetic, so the
        luma is extended by repeating its edge, colorized, and the planes cropped back."""
        h, w = chroma_shape
        fy, fx = -(-y8.shape[0] // h), -(-y8.shape[1] // w)  # luma samples per chroma sample
        big = cv2.copyMakeBorder(
            y8,
            0,
            max(0, _MIN_PLANE * fy - y8.shape[0]),
            0,
            max(0, _MIN_PLANE * fx - y8.shape[1]),
            cv2.BORDER_REPLICATE,
        )
        shape = (max(h, _MIN_PLANE), max(w, _MIN_PLANE))
        cb, cr = self.chroma_planes(big, ab_lo, shape, full_range, matrix, guide_lo, depth)
        return np.ascontiguousarray(cb[:h, :w]), np.ascontiguousarray(cr[:h, :w])

    def colorize_lab(self, y8: np.ndarray, full_range: bool = True, ab_lo: np.ndarray | None = None) -> np.ndarray:
        """One gray image: (H, W) uint8 gray codes -> (H, W, 3) float32 L*a*b* at full size,
        L* the input's. A caller with more than 8 bits replaces L* with its own. ab_lo: (h, w,
        2) float32 a*b* at self.output_grid(y8.shape) to use instead of the network's (the
        evaluation's ceiling of the colour path, training/evaluate.py --oracle)."""
        if ab_lo is None:
            ab_lo = self.predict([self.network_input(y8, full_range)])[0]
        return self._lab_at(y8, ab_lo, y8.shape, full_range)

    def colorize_luma(self, y8: np.ndarray, full_range: bool = True, ab_lo: np.ndarray | None = None) -> np.ndarray:
        """One gray image: (H, W) uint8 gray codes -> (H, W, 3) uint8 sRGB at full size.

        The output's L* is the input's (up to the sRGB gamut clip); ab_lo as colorize_lab."""
        rgb = cv2.cvtColor(self.colorize_lab(y8, full_range, ab_lo), cv2.COLOR_Lab2RGB)
        return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
