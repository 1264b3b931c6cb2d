"""Model cards: the normalisation and input-size rule that travel with each ONNX file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from streamcolor.errors import ConfigError

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "student.onnx"
# the hint-trained student: what --hints and --reference use unless --model names another
HINTS_MODEL = Path(__file__).resolve().parent / "models" / "student_hints.onnx"


@dataclass(frozen=True)
class ModelCard:
    """What a caller must know to feed the network and read its output.

    Network input  x: (N, 1, h, w) float32, x = (L* - l_offset) / l_scale.
    Network output y: (N, 2, h / stride, w / stride) float32, a*b* = y * ab_scale.
    vividness: the chroma gain applied to that a*b* by default (output.vividness, 1 if absent).
    hints: the model also takes (N, 3, h, w) user hints (streamcolor/hints/planes.py) and returns,
    second, (N, C, h / features_stride, w / features_stride) encoder features.
    hint_locality: its hints are (N, 4, h, w), the fourth plane where the hints may change the
    picture (streamcolor/geodesic.hint_locality), which the Colorizer computes.
    """

    path: Path
    name: str
    short_side: int
    multiple: int
    fixed_size: tuple[int, int] | None
    l_offset: float
    l_scale: float
    stride: int
    ab_scale: float
    raw: dict
    hints: bool = False
    features_stride: int = 16
    hint_locality: bool = False
    # the default chroma gain (Colorizer's vividness), chosen on validation photos for this model
    vividness: float = 1.0

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """Network input (h, w) for a frame of (height, width): short side scaled to
        short_side, both rounded to the multiple, never below one multiple; the long side
        at most 4 short sides (a 2x4096 strip would otherwise ask for a 160x327680 input)."""
        if self.fixed_size:
            return self.fixed_size
        s = min(self.short_side / min(height, width), 4 * self.short_side / max(height, width))
        m = self.multiple
        return (max(m, round(height * s / m) * m), max(m, round(width * s / m) * m))


def load_card(model_path: Path) -> ModelCard:
    model_path = Path(model_path)
    card_path = model_path.with_suffix(".json")
    if not model_path.is_file():
        raise ConfigError(f"model not found: {model_path}")
    if not card_path.is_file():
        raise ConfigError(f"model card not found: {card_path} (every model needs its .json card beside it)")
    try:
        raw = json.loads(card_path.read_text())
        inp, out = raw["input"], raw["output"]
        fixed = inp.get("fixed_size")
        return ModelCard(
            path=model_path,
            name=raw.get("name", model_path.stem),
            short_side=int(inp["short_side"]),
            multiple=int(inp.get("multiple", 16)),
            fixed_size=tuple(fixed) if fixed else None,
            l_offset=float(inp["l_offset"]),
            l_scale=float(inp["l_scale"]),
            stride=int(out["stride"]),
            ab_scale=float(out["ab_scale"]),
            raw=raw,
            hints=bool(raw.get("hints")),
            features_stride=int((raw.get("hints") or {}).get("features_stride", 16)),
            hint_locality=bool((raw.get("hints") or {}).get("locality")),
            vividness=float(out.get("vividness", 1.0)),
        )
    except KeyError as e:
        raise ConfigError(f"model card {card_path} is not valid: missing key {e.args[0]!r}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"model card {card_path} is not valid: {e}") from None
