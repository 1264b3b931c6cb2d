"""On-disk cache of built engines, keyed by exactly what changes an engine.

An engine file is `<model>-<h>x<w>-b<batch>-<precision>-<key>.plan` with a JSON sidecar
holding the fields the key was made from: the model weights' SHA-256, the network input
size, the batch, the precision, the GPU model and compute capability, and the TensorRT
version (torch-tensorrt's `_engine_cache.py` keys its cache the same way). An engine whose
fields do not match what this run needs is never used: it is rebuilt, or refused with the
command that rebuilds it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from streamcolor.errors import ConfigError


def default_dir() -> Path:
    """$STREAMCOLOR_ENGINE_DIR, else ./engines when run from a checkout that has one, else
    ~/.cache/streamcolor/engines."""
    env = os.environ.get("STREAMCOLOR_ENGINE_DIR")
    if env:
        return Path(env)
    local = Path("engines")
    if local.is_dir():
        return local
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamcolor" / "engines"


@functools.cache
def _sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(path: Path) -> str:
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime)


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine depends on; equal specs may share one engine file."""

    model_name: str
    model_sha256: str
    input_hw: tuple[int, int]  # network input (h, w)
    batch: int  # largest batch (the optimisation profile runs 1..batch)
    precision: str  # fp16 | fp32
    gpu: str
    compute_capability: str  # "9.0"
    trt_version: str

    @property
    def key(self) -> str:
        fields = asdict(self)
        fields["input_hw"] = list(self.input_hw)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def filename(self) -> str:
        h, w = self.input_hw
        return f"{self.model_name}-{h}x{w}-b{self.batch}-{self.precision}-{self.key}.plan"

    def differences(self, other: EngineSpec) -> list[str]:
        """Human-readable fields that differ: 'gpu: NVIDIA A100 (engine) vs NVIDIA H100 (here)'."""
        a, b = asdict(other), asdict(self)
        return [f"{k}: {a[k]} (engine) vs {b[k]} (here)" for k in b if a[k] != b[k]]


def rebuild_command(spec: EngineSpec, model: Path) -> str:
    h, w = spec.input_hw
    return (
        f"streamcolor engines build --model {model} --precision {spec.precision} --batch {spec.batch} "
        f"--input-size {w}x{h}"
    )


def read_spec(plan: Path) -> EngineSpec:
    meta = plan.with_suffix(".json")
    try:
        d = json.loads(meta.read_text())
        d["input_hw"] = tuple(d["input_hw"])
        return EngineSpec(**{k: d[k] for k in EngineSpec.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"engine {plan} has no valid {meta.name} beside it: rebuild it") from None


def write_engine(directory: Path, spec: EngineSpec, plan_bytes: bytes) -> Path:
    """Store plan + sidecar atomically (a half-written engine is never picked up)."""
    directory.mkdir(parents=True, exist_ok=True)
    plan = directory / spec.filename
    tmp = plan.with_suffix(".partial")
    tmp.write_bytes(plan_bytes)
    meta = {**asdict(spec), "input_hw": list(spec.input_hw), "key": spec.key}
    plan.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, plan)
    return plan


def list_engines(directory: Path) -> list[tuple[Path, EngineSpec | None]]:
    """Every .plan in directory with its spec (None when its sidecar is missing or broken)."""
    rows = []
    for plan in sorted(directory.glob("*.plan")) if directory.is_dir() else []:
        try:
            rows.append((plan, read_spec(plan)))
        except ConfigError:
            rows.append((plan, None))
    return rows


def check_engine(plan: Path, wanted: EngineSpec, model: Path) -> None:
    """Refuse an engine built for something else, naming what differs and how to rebuild."""
    have = read_spec(plan)
    diff = wanted.differences(have)
    if diff:
        raise ConfigError(
            f"engine {plan.name} does not match this run ({'; '.join(diff)}); rebuild it with: "
            f"{rebuild_command(wanted, model)}"
        )
