"""The evaluation's metrics on inputs with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import scene

from streamcolor import color
from training import evaluate


def test_psnr_ssim_known_values():
    a = np.full((32, 32, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] = 110  # error of 10 on one channel of three: MSE = 100 / 3
    assert evaluate.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / (100 / 3)), abs=1e-9)
    assert evaluate.psnr(a, a) == float("inf")
    img = scene(64, 64, 0)
    assert evaluate.ssim(img, img) == pytest.approx(1.0)
    assert evaluate.ssim(img, 255 - img) < 0.5


def test_ciede2000_matches_sharma_reference_pairs():
    # Sharma, Wu & Dalal (2005), table 1, pairs 1, 7 and 17
    lab1 = np.array([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]])
    lab2 = np.array([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]])
    np.testing.assert_allclose(evaluate.ciede2000(lab1, lab2), [2.0425, 2.3669, 27.1492], atol=1e-4)


def test_colourfulness_zero_for_gray_and_evaluate_runs(tmp_path, colorizer):
    gray = np.full((8, 8, 3), 0.5, np.float32)
    assert color.colourfulness(gray) == 0.0
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), scene(48, 64, i)[..., ::-1])
    s = evaluate.evaluate(tmp_path, evaluate.DEFAULT_MODEL, sheet=tmp_path / "sheet.png", threads=2)
    assert s["images"] == 2
    assert s["gray"]["colourfulness"] == 0.0 and s["ours"]["colourfulness"] > 0.0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert "PSNR" in evaluate.format_table(s)


def test_oracle_is_the_colour_paths_ceiling(tmp_path):
    # photos whose colour is constant over blocks far larger than the network's output cells:
    # with the truth's own a*b* on the grid, the colour path must give back nearly the truth
    # (no cast, colourfulness close to the truth's, PSNR far above the network's)
    rng = np.random.default_rng(0)
    for i in range(2):
        blocks = rng.integers(40, 216, (3, 4, 3)).astype(np.uint8)
        img = cv2.resize(blocks, (128, 96), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img[..., ::-1])
    net = evaluate.evaluate(tmp_path, evaluate.DEFAULT_MODEL, threads=2)
    ceil = evaluate.evaluate(tmp_path, evaluate.DEFAULT_MODEL, threads=2, oracle=True)
    assert "oracle" in ceil and "oracle" not in net
    assert ceil["ours"]["cast"] < 1.0 < net["ours"]["cast"]
    assert ceil["ours"]["colourfulness_ratio"] > 0.9
    assert ceil["ours"]["psnr"] > net["ours"]["psnr"] + 5.0
    assert ceil["gray"] == net["gray"]


def test_compare_lines_up_the_columns_of_several_sheets(tmp_path):
    from training import compare

    data = tmp_path / "photos"
    data.mkdir()
    for i, (h, w) in enumerate([(48, 64), (64, 48)]):
        cv2.imwrite(str(data / f"{i}.png"), scene(h, w, i)[..., ::-1])
    sheets = []
    for name in ("a", "b"):
        sheets.append(tmp_path / f"{name}.png")
        evaluate.evaluate(data, evaluate.DEFAULT_MODEL, sheet=sheets[-1], threads=2)
    sheet = cv2.imread(str(sheets[0]))
    out = tmp_path / "cmp.png"
    compare.main(["--data", str(data), "--sheets", *map(str, sheets), "--labels", "A", "B", "--out", str(out)])
    got = cv2.imread(str(out))
    # gray | A | B | truth for the landscape row, cut out of the 3-panel strips
    w = 3 * 64 * compare.ROW // 48
    gray_w, ours_w = w // 3, 2 * w // 3 - w // 3
    truth_x = gray_w + 2 * ours_w
    assert got.shape[1] == truth_x + (w - 2 * w // 3)
    assert got.shape[0] == compare.ROW + compare.GAP  # one row: every 14th photo is shown
    # the truth panel is the sheet's truth panel (below the label's band)
    truth_cmp = got[40 : compare.ROW, truth_x:].astype(int)
    truth_sheet = sheet[40 : compare.ROW, 2 * w // 3 : w].astype(int)
    assert np.abs(truth_cmp - truth_sheet).max() <= 8
