"""Frames kept on the GPU: the Colorizer's per-frame work in PyTorch on the engine's device
(made by api.make_colorizer for the torch and TensorRT engines, which have run_tensor()).

The luma plane goes up once per frame (cached for the three uses: network input, the
temporal filter's guide, the chroma planes); resize, normalisation, the engine, the
guided a*b* upsampling, Lab -> sRGB -> Cb/Cr and the gamut clamp run there, and only the
finished chroma planes come back (plus the network-grid a*b* and L* guide, about 88x48,
for the temporal filter, whose optical flow runs on the CPU). Same arithmetic as
streamcolor/colorizer.py; tests check the two agree.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer, UpsampleConfig
from streamcolor.model import ModelCard


class TorchColorizer(Colorizer):
    """A Colorizer whose engine has run_tensor() (TorchEngine, TensorRTEngine)."""

    def __init__(
        self,
        engine,
        card: ModelCard,
        upsample: UpsampleConfig | None = None,
        cache_frames: int = 32,
        vividness: float | None = None,
    ):
        super().__init__(engine, card, upsample, vividness=vividness)
        import torch

        self.torch = torch
        self.device = engine.device if hasattr(engine, "device") else torch.device("cuda")
        self._frames: OrderedDict[int, tuple[np.ndarray, object]] = OrderedDict()
        self.cache_frames = cache_frames  # frames in flight between network input and chroma (look-ahead)
        self._tables: dict = {}
        xyz_to_rgb = torch.from_numpy(color.XYZ_TO_RGB)
        self._xyz_to_rgb = xyz_to_rgb.to(self.device)
        self._white = torch.from_numpy(color.D65_WHITE).to(self.device)

    # -- uploads and tables ----------------------------------------------------------------
    def upload(self, y8: np.ndarray):
        """(H, W) uint8 -> the same plane on the device, uploaded once per frame."""
        hit = self._frames.get(id(y8))
        if hit is not None and hit[0] is y8:
            return hit[1]
        t = self.torch.from_numpy(np.ascontiguousarray(y8)).to(self.device, non_blocking=True)
        self._frames[id(y8)] = (y8, t)  # holding y8 keeps its id from being reused
        while len(self._frames) > self.cache_frames:
            self._frames.popitem(last=False)
        return t

    def _table(self, name: str, full_range: bool):
        key = (name, full_range)
        if key not in self._tables:
            x_lut, l_lut = self._luts(full_range)
            lo, hi = color.gray_luts(full_range)
            src = {"x": x_lut, "l": l_lut, "room_down": lo, "room_up": hi}[name]
            self._tables[key] = self.torch.from_numpy(np.ascontiguousarray(src)).to(self.device)
        return self._tables[key]

    def _area_matrix(self, n_in: int, n_out: int):
        """(n_out, n_in) weights of OpenCV's INTER_AREA along one axis: each output sample
        averages the input interval it covers, partial pixels weighted by their overlap."""
        key = ("area", n_in, n_out)
        if key not in self._tables:
            scale = n_in / n_out
            m = np.zeros((n_out, n_in), np.float32)
            for i in range(n_out):
                lo, hi = i * scale, (i + 1) * scale
                for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                    m[i, j] = min(hi, j + 1) - max(lo, j)
            m /= m.sum(axis=1, keepdims=True)
            self._tables[key] = self.torch.from_numpy(m).to(self.device)
        return self._tables[key]

    def _area(self, plane, size: tuple[int, int]):
        """uint8 (H, W) device plane -> area-resized to size (h, w) as OpenCV's INTER_AREA
        does when shrinking, rounded to codes (long), ready to index a table."""
        x = plane.float()
        if tuple(x.shape) != tuple(size):
            x = self._area_matrix(x.shape[0], size[0]) @ x @ self._area_matrix(x.shape[1], size[1]).T
        return x.round().long()

    # -- the Colorizer interface, on the device ----------------------------------------------
    def network_input(self, y8: np.ndarray, full_range: bool):
        h, w = self.card.input_size(*y8.shape)
        return self._table("x", full_range)[self._area(self.upload(y8), (h, w))][None]

    def predict(self, inputs: list) -> list[np.ndarray]:
        x = self.torch.stack([self.torch.as_tensor(i) for i in inputs])
        out = self.engine.run_tensor(x)
        gain = self.card.ab_scale * self.vividness  # Colorizer.vividness: the chroma gain
        if gain != 1.0:
            out = out * gain
        return list(out.permute(0, 2, 3, 1).contiguous().cpu().numpy())

    def guide_lo(self, y8: np.ndarray, shape: tuple[int, int], full_range: bool) -> np.ndarray:
        return self._table("l", full_range)[self._area(self.upload(y8), shape)].cpu().numpy()

    def _box(self, x, r: int):
        """(C, h, w) box mean, borders mirrored with the edge pixel repeated (cv2.BORDER_REFLECT)."""
        torch = self.torch
        x = torch.cat([x[:, :r].flip(1), x, x[:, -r:].flip(1)], dim=1)
        x = torch.cat([x[:, :, :r].flip(2), x, x[:, :, -r:].flip(2)], dim=2)
        return torch.nn.functional.avg_pool2d(x[None], 2 * r + 1, stride=1)[0]

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
        if depth > 8:  # deep outputs (archival masters): the CPU path's rounding at the output's depth
            return super().chroma_planes(y8, ab_lo, chroma_shape, full_range, matrix, guide_lo, depth)
        torch = self.torch
        F = torch.nn.functional
        dev = self.device
        y = self.upload(y8)
        h, w = ab_lo.shape[:2]
        g = (
            torch.from_numpy(guide_lo).to(dev)
            if guide_lo is not None
            else self._table("l", full_range)[self._area(y, (h, w))]
        )
        p = torch.from_numpy(np.ascontiguousarray(ab_lo)).to(dev).permute(2, 0, 1)  # (2, h, w)
        r, eps = self.upsample.radius, self.upsample.eps
        # fast guided filter coefficients (colorizer.guided_coefficients)
        mean_i = self._box(g[None], r)
        var_i = self._box((g * g)[None], r) - mean_i * mean_i
        mean_p = self._box(p, r)
        cov = self._box(p * g[None], r) - mean_i * mean_p
        a = cov / (var_i + eps)
        b = mean_p - a * mean_i
        a, b = self._box(a, r), self._box(b, r)
        # L* = 100 * guide folded in as a third linear model, as on the CPU
        a3 = torch.cat([torch.full((1, h, w), 100.0, device=dev), a])
        b3 = torch.cat([torch.zeros((1, h, w), device=dev), b])
        up = F.interpolate(torch.stack([a3, b3]), size=chroma_shape, mode="bilinear", align_corners=False)
        guide = self._table("l", full_range)[self._area(y, chroma_shape)]
        lab = up[0] * guide[None] + up[1]  # (3, Hc, Wc)
        rgb = self._lab_to_rgb(lab)
        key = ("matrix", matrix)
        if key not in self._tables:  # uploaded once per colour matrix, not per frame
            self._tables[key] = tuple(torch.from_numpy(m).to(dev) for m in color.chroma_matrices(matrix))
        to_chroma, to_rgb = self._tables[key]
        cbcr = torch.einsum("ij,jhw->ihw", to_chroma[:2], rgb)  # (2, Hc, Wc) in [-0.5, 0.5]
        d = torch.einsum("ij,jhw->ihw", (to_rgb @ to_chroma), rgb)  # what the chroma adds to R', G', B'
        fy, fx = -(-y.shape[0] // chroma_shape[0]), -(-y.shape[1] // chroma_shape[1])
        yf = y.float()[None, None]
        y_hi = F.max_pool2d(yf, (fy, fx), stride=(fy, fx), ceil_mode=True)[0, 0, : chroma_shape[0], : chroma_shape[1]]
        y_lo = -F.max_pool2d(-yf, (fy, fx), stride=(fy, fx), ceil_mode=True)[0, 0, : chroma_shape[0], : chroma_shape[1]]
        room_up = self._table("room_up", full_range)[y_hi.long()]
        room_down = self._table("room_down", full_range)[y_lo.long()]
        lim = torch.minimum(room_up[None] / d.clamp(min=1e-6), room_down[None] / (-d).clamp(min=1e-6))
        s = lim.amin(dim=0).clamp(max=1.0)
        scale = 255.0 if full_range else 224.0
        uv = (cbcr * s[None] * scale + 128.0).clamp(0, 255).round().to(torch.uint8).cpu().numpy()
        return uv[0], uv[1]

    def _lab_to_rgb(self, lab):
        """(3, H, W) L*a*b* -> (3, H, W) sRGB in [0, 1] (color.lab_to_rgb)."""
        torch = self.torch
        fy = (lab[0] + 16.0) / 116.0
        f = torch.stack([fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0])
        t3 = f * f * f
        xyz = torch.where(t3 > color._EPS, t3, (116.0 * f - 16.0) / color._KAPPA) * self._white[:, None, None]
        lin = torch.einsum("ij,jhw->ihw", self._xyz_to_rgb, xyz).clamp(min=0.0)
        srgb = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin.pow(1 / 2.4) - 0.055)
        return srgb.clamp(0.0, 1.0)
