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
from streamcolor.backends import Engine
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


def guided_upsample(
    ab_lo: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray, cfg: UpsampleConfig
) -> np.ndarray:
    """Joint upsampling of chroma along the edges of the guide.

    ab_lo:    (h, w, 2) float32 a*b* at the network output's size
    guide_lo: (h, w)    float32 L*/100 at the same size
    guide_hi: (H, W)    float32 L*/100 at the target size
    returns   (H, W, 2) float32 a*b*
    """
    r, eps = cfg.radius, cfg.eps
    mean_i = _box(guide_lo, r)
    var_i = _box(guide_lo * guide_lo, r) - mean_i * mean_i
    mean_p = _box(ab_lo, r)
    cov_ip = _box(ab_lo * guide_lo[..., None], r) - mean_i[..., None] * mean_p
    a = cov_ip / (var_i[..., None] + eps)
    b = mean_p - a * mean_i[..., None]
    # (h, w, 4) -> one resize for both coefficients of both channels
    coef = cv2.resize(_box(np.concatenate([a, b], axis=2), r), guide_hi.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return coef[..., :2] * guide_hi[..., None] + coef[..., 2:]


class Colorizer:
    """Turns gray frames into chroma with one engine and its model card."""

    def __init__(self, engine: Engine, card: ModelCard, upsample: UpsampleConfig | None = None):
        self.engine = engine
        self.card = card
        self.upsample = upsample or UpsampleConfig()
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
        return self._luts(full_range)[0][small][None]

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """list of (1, h, w) inputs of one shape -> list of (h/stride, w/stride, 2) a*b*."""
        out = self.engine.run(np.stack(inputs))
        if self.card.ab_scale != 1.0:
            out = out * self.card.ab_scale
        return [np.ascontiguousarray(o.transpose(1, 2, 0)) for o in out]

    def _ab_at(self, y8: np.ndarray, ab_lo: np.ndarray, size: tuple[int, int], full_range: bool):
        """-> (L*/100 at size (H, W), a*b* (H, W, 2) guided-upsampled to that size)."""
        lut = self._luts(full_range)[1]
        h, w = ab_lo.shape[:2]
        guide_lo = lut[cv2.resize(y8, (w, h), interpolation=cv2.INTER_AREA)]
        y_at = y8 if y8.shape == size else cv2.resize(y8, size[::-1], interpolation=cv2.INTER_AREA)
        guide_hi = lut[y_at]
        return y_at, guide_hi, guided_upsample(ab_lo, guide_lo, guide_hi, self.upsample)

    def chroma_planes(
        self, y8: np.ndarray, ab_lo: np.ndarray, chroma_shape: tuple[int, int], full_range: bool, matrix: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cb and Cr planes, (Hc, Wc) uint8 each, to pair with the untouched luma y8.

        The colour is L*a*b* -> sRGB -> Cb/Cr at the chroma planes' size, then scaled
        towards gray where the original luma plus that chroma would leave the RGB
        cube (the gamut clamp), so decoding Y+Cb+Cr never clips into a wrong hue.
        """
        y_c, l_c, ab = self._ab_at(y8, ab_lo, chroma_shape, full_range)
        lab = np.concatenate([l_c[..., None] * 100.0, ab], axis=2)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        kr, kb = color.LUMA_COEFFS.get(matrix, color.LUMA_COEFFS["bt709"])
        kg = 1.0 - kr - kb
        yr = kr * rgb[..., 0] + kg * rgb[..., 1] + kb * rgb[..., 2]
        cb = (rgb[..., 2] - yr) / (2.0 * (1.0 - kb))  # in [-0.5, 0.5]
        cr = (rgb[..., 0] - yr) / (2.0 * (1.0 - kr))
        y = color.luma_to_gray(y_c, full_range)
        # Contribution of (cb, cr) to R', G', B' on top of the original luma y.
        d_r = 2.0 * (1.0 - kr) * cr
        d_b = 2.0 * (1.0 - kb) * cb
        d_g = -(kr * d_r + kb * d_b) / kg
        s = np.ones_like(y)
        for d in (d_r, d_g, d_b):
            with np.errstate(divide="ignore", invalid="ignore"):
                lim = np.where(d > 1e-6, (1.0 - y) / d, np.where(d < -1e-6, -y / d, 1.0))
            np.minimum(s, lim, out=s)
        np.clip(s, 0.0, 1.0, out=s)
        scale = 255.0 if full_range else 224.0
        u = np.clip(cb * s * scale + 128.0, 0, 255)
        v = np.clip(cr * s * scale + 128.0, 0, 255)
        return (u + 0.5).astype(np.uint8), (v + 0.5).astype(np.uint8)

    def colorize_luma(self, y8: np.ndarray, full_range: bool = True) -> np.ndarray:
        """One gray image: (H, W) uint8 gray codes -> (H, W, 3) uint8 sRGB at full size.

        The output's L* is the input's (up to the sRGB gamut clip)."""
        ab_lo = self.predict([self.network_input(y8, full_range)])[0]
        _, l_hi, ab = self._ab_at(y8, ab_lo, y8.shape, full_range)
        lab = np.concatenate([l_hi[..., None] * 100.0, ab], axis=2)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
