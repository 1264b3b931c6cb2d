"""--vividness (issue 22): a gain on the network's chroma, the card's default when not given,
the same on every command, refused in one line outside its range."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from media import scene
from typer.testing import CliRunner

from streamcolor import cli, color
from streamcolor.cli import app
from streamcolor.colorizer import Colorizer
from streamcolor.engines.registry import create_engine
from streamcolor.errors import ConfigError
from streamcolor.model import DEFAULT_MODEL, load_card

runner = CliRunner()


def chroma(rgb8: np.ndarray) -> np.ndarray:
    lab = color.rgb_to_lab(rgb8.astype(np.float32) / 255.0)
    return np.hypot(lab[..., 1], lab[..., 2])


def test_vividness_scales_the_networks_chroma_and_zero_is_gray():
    card = load_card(DEFAULT_MODEL)
    engine = create_engine("onnx", card, 1)
    y8 = color.rgb8_to_gray8(scene(96, 128, 3))
    x = Colorizer(engine, card, vividness=1.0).network_input(y8, True)
    base = Colorizer(engine, card, vividness=1.0).predict([x])[0]
    double = Colorizer(engine, card, vividness=2.0).predict([x])[0]
    np.testing.assert_allclose(double, 2.0 * base, rtol=1e-5, atol=1e-4)
    gray = Colorizer(engine, card, vividness=0.0).colorize_luma(y8)
    assert chroma(gray).max() < 1.0
    vivid = Colorizer(engine, card, vividness=1.6).colorize_luma(y8)
    assert chroma(vivid).mean() > 1.3 * chroma(Colorizer(engine, card, vividness=1.0).colorize_luma(y8)).mean()
    with pytest.raises(ConfigError, match="vividness must be between 0 and 3"):
        Colorizer(engine, card, vividness=-0.5)


def test_the_cards_vividness_is_the_default(tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    raw = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    raw["output"]["vividness"] = 1.4
    model.with_suffix(".json").write_text(json.dumps(raw))
    card = load_card(model)
    assert card.vividness == 1.4
    assert Colorizer(create_engine("onnx", card, 1), card).vividness == 1.4
    assert Colorizer(create_engine("onnx", card, 1), card, vividness=0.5).vividness == 0.5


def test_image_command_takes_vividness_and_refuses_it_out_of_range(tmp_path, capsys):
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), scene(64, 96, 0)[..., ::-1])
    outs = {}
    for v in ("0", "1.5"):
        out = tmp_path / f"out_{v}.png"
        result = runner.invoke(app, ["image", str(src), str(out), "--vividness", v])
        assert result.exit_code == 0, result.output
        outs[v] = cv2.imread(str(out))[..., ::-1]
    assert chroma(outs["0"]).max() < 1.0 < chroma(outs["1.5"]).mean()
    # the entry point's way: click's usage error turned into one line, exit 2
    assert cli.run(["image", str(src), str(tmp_path / "bad.png"), "--vividness", "4"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "vividness" in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("command", ["video", "batch", "stream", "webcam"])
def test_every_colorizing_command_has_the_flag(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--vividness" in result.output
