"""Colour conversions shared by the runtime and by training.

One definition of CIE L*a*b* (D65 white, sRGB primaries and transfer curve) and of
gray video luma -> L*. Training imports these constants so the network is trained on
exactly what the runtime feeds it.

Conventions at every boundary in this module:
    rgb:  (..., 3) float32 sRGB in [0, 1] (gamma encoded)
    L:    (...)    float32 CIE L* in [0, 100]
    ab:   (..., 2) float32 CIE a*, b* (roughly [-110, 110])
    y8:   (H, W)   uint8 luma plane as stored in the video (limited or full range)
"""

from __future__ import annotations

import functools

import numpy as np

# sRGB (linear) -> XYZ, D65, IEC 61966-2-1.
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ).astype(np.float32)
D65_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0

# Y'CbCr matrices by FFmpeg colorspace name: (Kr, Kb).
LUMA_COEFFS = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020": (0.2627, 0.0593),
}


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, None)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)


def _f_inv(t: np.ndarray) -> np.ndarray:
    t3 = t * t * t
    return np.where(t3 > _EPS, t3, (116.0 * t - 16.0) / _KAPPA)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> (..., 3) float32 L*a*b*."""
    xyz = srgb_to_linear(rgb) @ RGB_TO_XYZ.T / D65_WHITE
    f = _f(xyz)
    lab = np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) L*a*b* -> (..., 3) float32 sRGB clipped to [0, 1]."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * D65_WHITE
    return np.clip(linear_to_srgb(xyz @ XYZ_TO_RGB.T), 0.0, 1.0)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """Gamma-encoded gray level in [0, 1] -> CIE L* in [0, 100].

    A gray sRGB pixel (v, v, v) has relative luminance srgb_to_linear(v), so this is
    exactly the L* that rgb_to_lab gives for it.
    """
    y = srgb_to_linear(gray)
    return (116.0 * _f(y) - 16.0).astype(np.float32)


def _lightness_lut() -> np.ndarray:
    return gray_to_lightness(np.arange(256, dtype=np.float32) / 255.0)


L_FROM_GRAY8 = _lightness_lut()  # (256,) float32: L* of 8-bit full-range gray


def luma_to_gray(y8: np.ndarray, full_range: bool) -> np.ndarray:
    """(H, W) uint8 luma plane -> (H, W) float32 gray level in [0, 1]."""
    y = y8.astype(np.float32)
    if full_range:
        return y * (1.0 / 255.0)
    return np.clip((y - 16.0) * (1.0 / 219.0), 0.0, 1.0)


def luma_lut(full_range: bool) -> np.ndarray:
    """(256,) float32 table: stored 8-bit luma code -> CIE L*."""
    return gray_to_lightness(luma_to_gray(np.arange(256, dtype=np.uint8), full_range))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of (H, W, 3) sRGB in [0, 1], 0-255 scale."""
    rgb = np.asarray(rgb, dtype=np.float64) * 255.0
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    std = np.hypot(rg.std(), yb.std())
    mean = np.hypot(rg.mean(), yb.mean())
    return float(std + 0.3 * mean)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (H, W) float32 gray level in [0, 1] with the same CIE L*
    (luminance-preserving: the gray has the colour's relative luminance Y)."""
    return linear_to_srgb(srgb_to_linear(rgb.astype(np.float32)) @ RGB_TO_XYZ[1])


def rgb8_to_gray8(rgb8: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (H, W) uint8 gray with the same CIE L* (luminance-preserving)."""
    return (rgb_to_gray(rgb8.astype(np.float32) / 255.0) * 255.0 + 0.5).astype(np.uint8)


# -- Y'CbCr chroma maths shared by the CPU colorizer (colorizer.py) and the GPU one
# (gpu_colorizer.py): one home, so the two cannot drift apart.


@functools.cache
def gray_luts(full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    """(256,) float32 tables from luma code: (y, 1 - y) with y the gray level in [0, 1]."""
    y = luma_to_gray(np.arange(256, dtype=np.uint8)[None], full_range)[0]
    return y.astype(np.float32), (1.0 - y).astype(np.float32)


@functools.cache
def chroma_matrices(matrix: str) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3) R'G'B' -> (Cb, Cr, 0) in [-0.5, 0.5], and (3, 3) (Cb, Cr, 0) -> added R', G', B'."""
    kr, kb = LUMA_COEFFS.get(matrix, LUMA_COEFFS["bt709"])
    kg = 1.0 - kr - kb
    to_chroma = np.array([[-kr, -kg, 1.0 - kb], [1.0 - kr, -kg, -kb]], np.float32) / np.array(
        [[2.0 * (1.0 - kb)], [2.0 * (1.0 - kr)]], np.float32
    )
    d_r = np.array([0.0, 2.0 * (1.0 - kr)])
    d_b = np.array([2.0 * (1.0 - kb), 0.0])
    d_g = -(kr * d_r + kb * d_b) / kg
    to_rgb = np.stack([d_r, d_g, d_b]).astype(np.float32)
    pad = np.zeros((3, 1), np.float32)
    return np.vstack([to_chroma, pad.T]), np.hstack([to_rgb, pad])


@functools.cache
def chroma_delta_matrix(matrix: str) -> np.ndarray:
    """(3, 3) R'G'B' -> what its chroma alone adds to R', G', B' (to_rgb @ to_chroma)."""
    to_chroma, to_rgb = chroma_matrices(matrix)
    return to_rgb @ to_chroma
