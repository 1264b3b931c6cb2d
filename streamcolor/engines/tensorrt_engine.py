"""`--backend tensorrt`: an FP16 (or FP32) TensorRT engine built from the ONNX export.

Written against TensorRT 10's documented Python API (Builder, OnnxParser, optimisation
profiles, timing cache, IExecutionContext.execute_async_v3); device buffers are PyTorch
CUDA tensors. Engines are built per network input size, cached on disk under a key of
everything they depend on (streamcolor/engines/cache.py), and checked before use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from streamcolor.engines.cache import EngineSpec, check_engine, default_dir, weights_sha256, write_engine
from streamcolor.engines.torch_engine import PRECISIONS, import_torch
from streamcolor.errors import ConfigError, NotAvailableError
from streamcolor.model import ModelCard


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise NotAvailableError(
            "backend 'tensorrt' needs TensorRT: pip install 'streamcolor[tensorrt]' (or use --backend torch)"
        ) from None
    return trt


def tensorrt_available() -> bool:
    from streamcolor.engines.torch_engine import cuda_available

    if not cuda_available():
        return False
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def engine_spec(card: ModelCard, input_hw: tuple[int, int], batch: int, precision: str) -> EngineSpec:
    """The spec for this model on this machine's first GPU and TensorRT version."""
    trt, torch = import_tensorrt(), import_torch()
    if not torch.cuda.is_available():
        raise NotAvailableError("backend 'tensorrt' needs an NVIDIA GPU with CUDA (none found); use --backend onnx")
    major, minor = torch.cuda.get_device_capability(0)
    return EngineSpec(
        model_name=card.path.stem,
        model_sha256=weights_sha256(card.path),
        input_hw=tuple(input_hw),
        batch=batch,
        precision=precision,
        gpu=torch.cuda.get_device_name(0),
        compute_capability=f"{major}.{minor}",
        trt_version=trt.__version__,
    )


def keep_tail_fp32(network, trt) -> int:
    """Ask for FP32 from the logits convolution feeding the first Exp (a UNARY layer) to
    the output, as the PyTorch engine does (onnx_torch.fp32_tail_start): the annealed
    mean's exponent spans about -75..5. Returns the number of layers constrained."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    first_unary = next((i for i, layer in enumerate(layers) if layer.type == trt.LayerType.UNARY), None)
    if first_unary is None:
        return 0
    convs = [i for i in range(first_unary) if layers[i].type == trt.LayerType.CONVOLUTION]
    start = convs[-1] if convs else first_unary
    count = 0
    for layer in layers[start:]:
        outs = [layer.get_output(k) for k in range(layer.num_outputs)]
        if all(o.dtype in (trt.float32, trt.float16) for o in outs):
            layer.precision = trt.float32
            for k in range(layer.num_outputs):
                layer.set_output_type(k, trt.float32)
            count += 1
    return count


def build_engine(card: ModelCard, spec: EngineSpec, directory: Path, log: Callable[[str], None] = print) -> Path:
    """Build spec's engine from card's ONNX file and store it (plus the timing cache) in directory."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(card.path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"TensorRT cannot parse {card.path.name}: {errors}")
    config = builder.create_builder_config()
    if spec.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        if keep_tail_fp32(network, trt):
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    h, w = spec.input_hw
    name = network.get_input(0).name
    profile = builder.create_optimization_profile()
    profile.set_shape(name, (1, 1, h, w), (spec.batch, 1, h, w), (spec.batch, 1, h, w))
    config.add_optimization_profile(profile)
    # The timing cache makes rebuilds for other sizes/batches of the same GPU much faster.
    cache_file = directory / f"timing-{spec.gpu.replace(' ', '_')}-{spec.trt_version}.cache"
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    log(f"building TensorRT {spec.precision} engine for {card.path.name} at {w}x{h}, batch {spec.batch} (once)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConfigError(f"TensorRT could not build an engine for {card.path.name}")
    directory.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    return write_engine(directory, spec, bytes(plan))


class TensorRTEngine:
    """Runs (N <= batch, 1, h, w) inputs; the engine for (h, w) is loaded from the cache or
    built on first use. engine: an explicit .plan file, checked against this run's spec."""

    name = "tensorrt"

    def __init__(
        self,
        card: ModelCard,
        threads: int | None = None,
        precision: str = "fp16",
        batch: int = 8,
        engine_dir: Path | None = None,
        engine: Path | None = None,
        build_missing: bool = True,
        log: Callable[[str], None] = print,
    ):
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
        if card.hints:
            raise NotAvailableError(
                f"{card.path.name} takes hints: hints and reference photos run on --backend onnx or torch"
            )
        self.trt = import_tensorrt()
        self.torch = import_torch()
        if not self.torch.cuda.is_available():
            raise NotAvailableError("backend 'tensorrt' needs an NVIDIA GPU with CUDA (none found); use --backend onnx")
        self.card = card
        self.precision = precision
        self.batch = batch
        self.dir = Path(engine_dir) if engine_dir else default_dir()
        self.explicit = Path(engine) if engine else None
        self.build_missing = build_missing
        self.log = log
        self.provider = f"tensorrt:{precision}"
        self.loaded: dict[tuple[int, int], tuple] = {}  # input (h, w) -> (engine, context, in, out names)
        self.runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
        self.stream = self.torch.cuda.Stream()

    def _load(self, hw: tuple[int, int]):
        spec = engine_spec(self.card, hw, self.batch, self.precision)
        plan = self.explicit or self.dir / spec.filename
        if not plan.exists():
            if self.explicit or not self.build_missing:
                from streamcolor.engines.cache import rebuild_command

                raise ConfigError(f"no engine at {plan}; build it with: {rebuild_command(spec, self.card.path)}")
            plan = build_engine(self.card, spec, self.dir, self.log)
        check_engine(plan, spec, self.card.path)  # stale or foreign: refused with the rebuild command
        engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
        if engine is None:
            from streamcolor.engines.cache import rebuild_command

            raise ConfigError(
                f"TensorRT cannot load {plan.name}; rebuild it with: {rebuild_command(spec, self.card.path)}"
            )
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inp = next(n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT)
        out = next(n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.OUTPUT)
        self.loaded[hw] = (engine, engine.create_execution_context(), inp, out)
        return self.loaded[hw]

    def run_tensor(self, x):
        """x: (N, 1, h, w) CUDA float tensor -> (N, 2, h', w') float32 CUDA tensor."""
        torch = self.torch
        n, _, h, w = x.shape
        if n > self.batch:
            return torch.cat([self.run_tensor(x[i : i + self.batch]) for i in range(0, n, self.batch)])
        engine, ctx, inp, out = self.loaded.get((h, w)) or self._load((h, w))
        x = x.to("cuda", torch.float32).contiguous()  # the engine's I/O stays FP32; FP16 is inside
        ctx.set_input_shape(inp, tuple(x.shape))
        y = torch.empty(tuple(ctx.get_tensor_shape(out)), device="cuda", dtype=torch.float32)
        ctx.set_tensor_address(inp, x.data_ptr())
        ctx.set_tensor_address(out, y.data_ptr())
        self.stream.wait_stream(torch.cuda.current_stream())
        if not ctx.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        torch.cuda.current_stream().wait_stream(self.stream)
        return y

    def run(self, x: np.ndarray) -> np.ndarray:
        t = self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda()
        return self.run_tensor(t).cpu().numpy()
