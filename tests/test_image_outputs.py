"""Photos keep what the user had: transparency (RGBA and gray+alpha) untouched, 16 bits
where the format holds them, EXIF; anything dropped is said in one line per photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamcolor.api import ColorizeConfig
from streamcolor.images import colorize_images

CFG = ColorizeConfig(threads=2)
PIL = pytest.importorskip("PIL")  # to write inputs with gray+alpha, ICC and EXIF (OpenCV cannot)
from PIL import Image, ImageCms  # noqa: E402


def chroma(bgr: np.ndarray) -> float:
    f = bgr[..., :3].astype(np.float32)
    return float(np.abs(f - f.mean(axis=2, keepdims=True)).mean())


def ramp(h: int = 48, w: int = 64) -> np.ndarray:
    """(h, w) float in [0, 1]: a sky-to-ground gradient with a box, something to colour."""
    g = np.linspace(0.85, 0.25, h, dtype=np.float32)[:, None].repeat(w, 1)
    g[h // 3 : h // 2, w // 4 : w // 2] = 0.4
    return g


@pytest.mark.parametrize("suffix", [".png", ".tiff", ".webp", ".bmp"])
def test_rgba_keeps_its_alpha_exactly_and_gets_colour(suffix, tmp_path):
    img = np.dstack([(ramp() * 255).astype(np.uint8)] * 3 + [np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))])
    cv2.imwrite(str(tmp_path / "in.png"), img)
    colorize_images(tmp_path / "in.png", tmp_path / f"out{suffix}", CFG)
    out = cv2.imread(str(tmp_path / f"out{suffix}"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 64, 4) and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], img[..., 3])
    assert chroma(out) > 2.0


def test_gray_with_alpha_becomes_colour_with_the_same_alpha(tmp_path):
    gray = (ramp() * 255).astype(np.uint8)
    alpha = np.full_like(gray, 200)
    alpha[:, :10] = 0
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "in.png")
    colorize_images(tmp_path / "in.png", tmp_path / "out.png", CFG)
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 64, 4) and np.array_equal(out[..., 3], alpha)


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_stays_16_bit_with_its_own_lightness(suffix, tmp_path):
    gray16 = (ramp() * 65535).astype(np.uint16) + np.arange(64, dtype=np.uint16)[None]  # steps finer than 8 bits
    cv2.imwrite(str(tmp_path / f"in{suffix}"), gray16)
    warnings: list[str] = []
    colorize_images(tmp_path / f"in{suffix}", tmp_path / f"out{suffix}", CFG, warn=warnings.append)
    out = cv2.imread(str(tmp_path / f"out{suffix}"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 64, 3) and warnings == []
    assert len(np.unique(out[..., 1])) > 256  # more levels than 8 bits could carry
    assert chroma(out / 257.0) > 2.0


def test_what_the_format_cannot_hold_is_said(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), (ramp() * 65535).astype(np.uint16))
    rgba = np.dstack([(ramp() * 255).astype(np.uint8)] * 3 + [np.full((48, 64), 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "clear.png"), rgba)
    warnings: list[str] = []
    colorize_images(tmp_path / "deep.png", tmp_path / "deep.jpg", CFG, warn=warnings.append)
    colorize_images(tmp_path / "clear.png", tmp_path / "clear.jpg", CFG, warn=warnings.append)
    assert warnings == [
        "deep.png: 16-bit photo written as 8-bit (.jpg holds 8 bits; .png and .tiff hold 16)",
        "clear.png: transparency dropped (.jpg has no alpha channel; .png keeps it)",
    ]


@pytest.mark.skipif(not hasattr(cv2, "imdecodeWithMetadata"), reason="OpenCV < 4.12 reads no EXIF")
@pytest.mark.parametrize("src_ext, out_ext", [(".jpg", ".jpg"), (".png", ".png"), (".jpg", ".webp")])
def test_exif_is_kept_and_the_icc_profile_is_said(src_ext, out_ext, tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Leica"  # Make
    exif[0x0132] = "1931:05:01 12:00:00"  # DateTime
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = np.dstack([(ramp() * 255).astype(np.uint8)] * 3)  # an RGB profile belongs on an RGB image
    Image.fromarray(rgb, "RGB").save(tmp_path / f"in{src_ext}", exif=exif, icc_profile=icc)
    warnings: list[str] = []
    colorize_images(tmp_path / f"in{src_ext}", tmp_path / f"out{out_ext}", CFG, warn=warnings.append)
    got = Image.open(tmp_path / f"out{out_ext}").getexif()
    assert got[0x010F] == "Leica" and got[0x0132] == "1931:05:01 12:00:00"
    assert warnings == [f"in{src_ext}: ICC profile not copied (the colorized output is sRGB)"]


@pytest.mark.skipif(not hasattr(cv2, "imdecodeWithMetadata"), reason="OpenCV < 4.12 reads no EXIF")
def test_exif_into_a_format_without_it_is_said(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Leica"
    Image.fromarray((ramp() * 255).astype(np.uint8), "L").save(tmp_path / "in.jpg", exif=exif)
    warnings: list[str] = []
    colorize_images(tmp_path / "in.jpg", tmp_path / "out.bmp", CFG, warn=warnings.append)
    assert warnings == ["in.jpg: EXIF/XMP metadata not copied (.bmp output; .png, .jpg and .webp keep it)"]
