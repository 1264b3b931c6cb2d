"""Geodesic distance on a small grid: how far a cell is from a hint when crossing an edge costs.

A hint should colour its object and stop at the object's boundary (issue 24). Distances in the
plane do not see boundaries; the geodesic distance does: the cheapest path from the hint to a
cell, where each step costs the change of the guide (L*, and the encoder's features) along it
(Criminisi, Sharp and Blake 2008, "GeoS: Geodesic Image Segmentation"; the edge-stopping
affinity of Levin et al. 2004 in path form). A cell of the same object is reached along a path
that never crosses an edge (cost near 0); a cell beyond the object's boundary only across it.

Shortest paths by Dijkstra's algorithm over the 8-neighbour grid graph (SciPy's
scipy.sparse.csgraph.dijkstra, in C: about a millisecond for ten hints on the network's output
grid, about 40 x 72 cells at 480p).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

# SciPy's sparse graphs drop zero weights as "no edge": every step costs at least this
MIN_STEP = 1e-6


def step_costs(guide: np.ndarray, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """guide: (h, w, C) float32, the per-cell values whose change costs (e.g. L*/100 and
    features scaled by their weight). -> the cost of a step between neighbours, float32: the
    Euclidean distance of the guide less `floor` (changes below it, texture and noise, cost
    nothing): vertical (h-1, w), horizontal (h, w-1), diagonal down-right (h-1, w-1) and
    diagonal down-left (h-1, w-1; cell (y, x) to (y+1, x-1) at [y, x-1])."""
    g = guide.astype(np.float32)
    vert = np.linalg.norm(g[1:] - g[:-1], axis=2)
    horiz = np.linalg.norm(g[:, 1:] - g[:, :-1], axis=2)
    diag = np.linalg.norm(g[1:, 1:] - g[:-1, :-1], axis=2)
    anti = np.linalg.norm(g[1:, :-1] - g[:-1, 1:], axis=2)
    if floor > 0:
        vert, horiz, diag, anti = (np.maximum(c - floor, 0.0) for c in (vert, horiz, diag, anti))
    return vert, horiz, diag, anti


def _graph(guide: np.ndarray, step: float, floor: float) -> csr_matrix:
    """The 8-neighbour grid graph of `guide` with step_costs as edge weights."""
    h, w = guide.shape[:2]
    vert, horiz, diag, anti = step_costs(guide, floor)
    idx = np.arange(h * w).reshape(h, w)
    diag_step = step * np.sqrt(2.0)
    src = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel(), idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()])
    dst = np.concatenate([idx[1:].ravel(), idx[:, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()])
    cost = np.concatenate(
        [(vert + step).ravel(), (horiz + step).ravel(), (diag + diag_step).ravel(), (anti + diag_step).ravel()]
    )
    return coo_matrix((np.maximum(cost, MIN_STEP), (src, dst)), shape=(h * w, h * w)).tocsr()


def geodesic_distance(
    guide: np.ndarray,
    seeds: np.ndarray,
    step: float = 0.0,
    limit: float = np.inf,
    floor: float = 0.0,
    nearest: bool = False,
) -> np.ndarray:
    """For each seed, the geodesic distance of every cell of the grid.

    guide: (h, w, C) float32 (see step_costs); seeds: (N, 2) int (row, column), inside the grid;
    floor: see step_costs; step: a constant cost per step besides the guide's change (0: only
    edges cost); limit: distances beyond it are not searched (inf there: Dijkstra stops early,
    20x faster when the caller only needs the near cells); nearest: one Dijkstra run from all
    seeds at once, each cell's distance to its nearest seed.
    -> (N, h, w) float32, 0 at each seed; with nearest (h, w) (inf everywhere without a seed).
    Raises ValueError for a seed outside the grid."""
    h, w = guide.shape[:2]
    seeds = np.asarray(seeds, np.int64).reshape(-1, 2)
    if len(seeds) == 0:
        return np.full((h, w), np.inf, np.float32) if nearest else np.zeros((0, h, w), np.float32)
    if seeds.min() < 0 or (seeds[:, 0] >= h).any() or (seeds[:, 1] >= w).any():
        raise ValueError(f"a seed lies outside the {h}x{w} grid")
    idx = seeds[:, 0] * w + seeds[:, 1]
    d = dijkstra(_graph(guide, step, floor), directed=False, indices=idx, limit=limit, min_only=nearest)
    return d.reshape((h, w) if nearest else (len(seeds), h, w)).astype(np.float32)


# A hint's reach (the hint model's fourth hint plane, and the spreading after the network): a
# step costs its change of L*/100 over LOCALITY_L, less LOCALITY_FLOOR (texture, grain); with
# LOCALITY_ALL_AT hints or more the reach is the whole frame (many hints sample the palette, one
# hint means one object). Chosen on 40 Clothing Co-Parsing garments other than the 80 reported
# and 60 validation photos (benchmarks/hint_leak.py --skip 80, hints_quality photos): L 0.1,
# 0.2, 0.3 gave leak 0.03 / 0.06 / 0.10 with the object's own change 31 / 34 / 36.
LOCALITY_L, LOCALITY_FLOOR, LOCALITY_ALL_AT = 0.2, 0.02, 10.0
LOCALITY_LIMIT = 8.0  # exp(-8): beyond it the hint's reach is nothing


def reach_share(hints: int) -> float:
    """g in [0, 1]: how much of the whole frame n hints reach besides their objects."""
    return min(max((hints - 1) / max(LOCALITY_ALL_AT - 1.0, 1e-6), 0.0), 1.0)


def reach_guide(lightness: np.ndarray) -> np.ndarray:
    """(h, w) L*/100 -> the (h, w, 1) guide whose step costs the reach is measured in."""
    return (lightness.astype(np.float32) / LOCALITY_L)[..., None]


def hint_locality(lightness: np.ndarray, mask: np.ndarray, stride: int = 4) -> np.ndarray:
    """Where the hints of one picture may change it: 1 on the hinted objects, falling as
    exp(-geodesic distance) across edges of L*, so that one hint colours its object and leaves
    the rest as the automatic model had it (issue 24). With n hints (connected parts of the
    mask; a stroke is one) the map is (1 - g) * that + g, g = (n - 1) / (LOCALITY_ALL_AT - 1) in
    [0, 1]: ten hints from the truth reach the whole frame, as the hint branch learned.

    lightness: (H, W) float32 L*/100 at the network input; mask: (H, W) bool, the hint pixels.
    stride: the grid the distance is computed on (the network output's). -> (H, W) float32 in
    [0, 1] (ones where there is no hint: nothing to limit)."""
    H, W = lightness.shape
    parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1
    g = reach_share(parts)
    if parts <= 0 or g >= 1.0:
        return np.ones((H, W), np.float32)
    gh, gw = max(1, H // stride), max(1, W // stride)
    guide = reach_guide(cv2.resize(lightness, (gw, gh), interpolation=cv2.INTER_AREA))
    cells = cv2.resize(mask.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) > 0
    d = geodesic_distance(guide, np.argwhere(cells), limit=LOCALITY_LIMIT, floor=LOCALITY_FLOOR, nearest=True)
    reach = (1.0 - g) * np.exp(-d) + g
    return cv2.resize(reach.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
