"""Export a trained student to ONNX with its model card, checked against PyTorch.

    python -m training.export runs/student/student_w16a0.5.pt --out streamcolor/models/student.onnx

The graph takes (N, 1, H, W) normalised L and returns (N, 2, H/4, W/4) a*b*; with
--dynamic (default) N, H and W are free, with --fixed HxW they are baked in (what a
TensorRT engine with a single profile wants). The card beside it (same name, .json)
carries everything a caller needs: input size rule, L normalisation, output scale.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch.nn import functional as F

from training.student import ABClassifier, student_from_checkpoint


def load_student(ckpt: Path, temperature: float) -> tuple[ABClassifier, dict]:
    c = torch.load(ckpt, map_location="cpu", weights_only=False)
    return student_from_checkpoint(c, temperature).eval(), c


def describe(model: ABClassifier, ck: dict, temperature: float) -> tuple[str, int]:
    """The card's architecture line and the input size multiple."""
    params = sum(p.numel() for p in model.parameters())
    head = (
        f"{ck['bins'].shape[0]}-way a*b* classification with annealed mean T={temperature} inside the graph (the "
        "softmax's shift and 1/T folded into the head convolution; the runtime flushes denormals to zero)"
    )
    if ck.get("arch") == "mobile":
        return (
            f"MobileStudent (training/student.py): ImageNet-pretrained MobileNetV2 encoder to stride "
            f"{ck['stages']}{' with the classifier global features fused' if ck['stages'] == 32 else ''}, "
            f"U-Net decoder {ck['decoder']}, {params} parameters, {head}",
            32,
        )
    return (
        f"StudentUNet width {ck['width']} depth {model.depth} (training/student.py): strided U-Net, {params} "
        f"parameters, {head}",
        16 if model.depth == 4 else 32,
    )


class HintGraph(torch.nn.Module):
    """The exported graph of a hint-trained MobileStudent: (l (N, 1, H, W), hints (N, 3, H, W))
    -> (ab (N, 2, H/4, W/4), features (N, 96, H/16, W/16)): the a*b* with the hints applied
    and the encoder's stride-16 features, which do not depend on the hints (what pinned hints
    and reference photos are matched with, streamcolor/hints/)."""

    def __init__(self, student: torch.nn.Module):
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor, hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.student.features(x)
        return self.student.annealed_mean(self.student.decode(e, hints)), e[16]


def _random_hints(shape: tuple[int, ...], locality: bool = False) -> torch.Tensor:
    n, _, h, w = shape
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(n, 1, h, w, generator=g) < 0.01).float()
    planes = [(torch.rand(n, 2, h, w, generator=g) * 2 - 1) * mask, mask]
    if locality:  # a smooth map in [0, 1]
        planes.append(
            F.interpolate(torch.rand(n, 1, h // 16 + 1, w // 16 + 1, generator=g), size=(h, w), mode="bilinear")
        )
    return torch.cat(planes, dim=1)


def export(
    model: torch.nn.Module, out: Path, fixed: tuple[int, int] | None, opset: int = 17, multiple: int = 32
) -> float:
    """Write the ONNX file; return the max |output| difference between onnxruntime and PyTorch
    (checked at the export size and, for a dynamic graph, two more sizes and batch 2).
    A hint-trained student is exported as HintGraph (two inputs, two outputs)."""
    m = multiple
    sizes = [(192, 352), (224, 416), (160, 160)] if m <= 32 else [(m, 2 * m), (2 * m, 2 * m), (m, m)]
    h, w = fixed or sizes[0]
    x = torch.randn(1, 1, h, w)
    hinted = getattr(model, "hints", False)
    graph = HintGraph(model).eval() if hinted else model
    inputs, outputs = (["l", "hints"], ["ab", "features"]) if hinted else (["l"], ["ab"])
    dyn = None if fixed else {"l": {0: "batch", 2: "height", 3: "width"}, "ab": {0: "batch", 2: "h4", 3: "w4"}}
    if hinted and dyn:
        dyn.update({"hints": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch", 2: "h16", 3: "w16"}})
    args = (x, _random_hints(x.shape, getattr(model, "locality", False))) if hinted else x
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        graph,
        args,
        str(out),
        input_names=inputs,
        output_names=outputs,
        opset_version=opset,
        dynamic_axes=dyn,
        dynamo=False,
    )
    return compare_onnx(model, out, [(1, 1, h, w)] + ([] if fixed else [(2, 1, *sizes[1]), (1, 1, *sizes[2])]))


def store_weights_fp16(path: Path, min_size: int = 256, keep_fp32: tuple[str, ...] = ("head.",)) -> None:
    """Rewrite an ONNX file with its large float32 weights stored as float16, each behind a Cast
    back to float32: half the file, the same float32 arithmetic (ONNX Runtime folds the Casts
    of constants once when the session is made). Weights are rounded to 11 significant bits;
    the head, whose weights carry the folded 1/T, stays float32."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size and not init.name.startswith(keep_fp32):
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def compare_onnx(model: torch.nn.Module, path: Path, shapes: list[tuple[int, ...]] | None = None) -> float:
    """Max |ONNX Runtime - PyTorch| of every output on random inputs (and random hints)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    hinted = getattr(model, "hints", False)
    worst = 0.0
    for shape in shapes or [(1, 1, 160, 288), (2, 1, 192, 192)]:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            if hinted:
                hints = _random_hints(shape, getattr(model, "locality", False))
                refs = [t.numpy() for t in HintGraph(model)(x, hints)]
                got = sess.run(None, {"l": x.numpy(), "hints": hints.numpy()})
            else:
                refs, got = [model(x).numpy()], sess.run(None, {"l": x.numpy()})[:1]
        worst = max(worst, *(float(np.abs(r - g).max()) for r, g in zip(refs, got)))
    return worst


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--temperature", type=float, default=0.38)
    ap.add_argument(
        "--short-side", type=int, default=192, help="the network's input short side (teachers: up to their multiple)"
    )
    ap.add_argument("--fixed", default="", help="HxW: export a fixed input size instead of dynamic")
    ap.add_argument("--fp16-weights", action="store_true", help="store weights as float16 (half the file)")
    ap.add_argument(
        "--hint-locality",
        action="store_true",
        help="a hint model: take a fourth hint plane, where the hints may change the picture (the runtime computes it, "
        "streamcolor/geodesic.hint_locality), and multiply the hint branch by it",
    )
    ap.add_argument("--card-extra", type=Path, help="JSON merged into the card (training data, metrics...)")
    ap.add_argument(
        "--backbone", type=Path, help="the MobileNetV2 TFLite file a student was built on, when its checkpoint lacks it"
    )
    a = ap.parse_args(argv)
    fixed = tuple(int(v) for v in a.fixed.split("x")) if a.fixed else None
    kind = torch.load(a.ckpt, map_location="cpu", weights_only=False).get("kind")
    if kind == "cached_decoder":
        raise SystemExit(
            f"{a.ckpt} is a decoder trained on cached features of another encoder (a teacher): it runs on its "
            "cache only (python -m training.train_cached predict); export the student distilled from it"
        )
    if kind == "teacher":
        export_teacher(a.ckpt, a.out, fixed, a.card_extra, a.short_side)
        return
    model, ck = load_student(a.ckpt, a.temperature)
    if ck.get("arch") == "mobile" and not ck.get("backbone"):
        if a.backbone is None:
            raise SystemExit(
                f"{a.ckpt} does not say which pretrained weights it was built on: give --backbone FILE "
                "(the card must name them: file, SHA-256, licence)"
            )
        from training.mobilenet import provenance

        ck["backbone"] = provenance(a.backbone)
    if a.hint_locality:
        if ck.get("hints") != "gated":
            raise SystemExit("--hint-locality is for a gated hint model")
        model.locality = True
    model.fold_head()
    if hasattr(model, "fold_classifier"):
        model.fold_classifier()
        model.encoder.fold_same_padding()
    diff = export(model, a.out, fixed)
    if a.fp16_weights:
        store_weights_fp16(a.out)
        diff = max(diff, compare_onnx(model, a.out))
    architecture, multiple = describe(model, ck, a.temperature)
    card = {
        "name": a.out.stem,
        "format": "streamcolor-model-card/1",
        "architecture": architecture,
        "input": {
            "name": "l",
            "short_side": a.short_side,
            "multiple": multiple,
            "fixed_size": list(fixed) if fixed else None,
            "l_offset": 50.0,
            "l_scale": 50.0,
            "comment": "x = (L* - l_offset) / l_scale, L* in [0, 100]",
        },
        "output": {"name": "ab", "stride": 4, "ab_scale": 1.0, "comment": "a*b* = y * ab_scale, CIE units"},
        **(
            {
                "hints": {
                    "input": "hints",
                    "ab_norm": 110.0,
                    "features": "features",
                    "features_stride": 16,
                    "comment": "hints (N, 3, H, W): a*/110 and b*/110 where a hint is, 0 elsewhere, and the 0/1 mask "
                    "(Zhang et al. 2017); features (N, C, H/16, W/16): the encoder's, independent of the hints",
                    "hint_none_share": ck.get("hint_none"),
                    **(
                        {
                            "locality": {
                                "plane": 3,
                                "computed_by": "streamcolor.geodesic.hint_locality (the runtime, from the input's L*)",
                                "comment": "hints (N, 4, H, W): the fourth plane in [0, 1] multiplies the hint "
                                "branch: 1 on the hinted objects, exp(-geodesic distance across L* edges) beyond, "
                                "the whole frame with ten hints or more",
                            }
                        }
                        if a.hint_locality
                        else {}
                    ),
                    "design": "gated branch beside the automatic student's decoder (no hints: its output exactly)"
                    if ck.get("hints") == "gated"
                    else "hint grids added to the decoder",
                }
            }
            if ck.get("hints")
            else {}
        ),
        "training": {
            "steps": ck["steps"],
            "seconds": round(ck["seconds"]),
            "batch": ck["batch"],
            "crop": ck["crop"],
            "rebalance_alpha": ck["alpha"],
            "distilled_from": ck.get("distilled_from"),
            "distill_weight": ck.get("distill_weight", 0.0),
            "init_from": ck.get("init_from"),
            "init_steps": ck.get("init_steps", 0),
            "init_seconds": round(ck.get("init_seconds", 0.0)),
            "degradations": ck.get("degrade", 0.0),
            "frozen_up_to_stride": ck.get("freeze_stride", 0),
            "cast_weight": ck.get("cast_weight", 0.0),
            # training/wise.py: these weights are (1 - lam) x a + lam x b; the fields above are a's
            "weight_average": ck.get("wise"),
        },
        "pretrained_backbone": ck.get("backbone"),
        "export": {
            "onnx_opset": 17,
            "max_abs_diff_vs_torch": diff,
            "weights_stored_as": "float16 (computed in float32)" if a.fp16_weights else "float32",
            "date": datetime.date.today().isoformat(),
        },
        "sha256": hashlib.sha256(a.out.read_bytes()).hexdigest(),
    }
    if a.card_extra:
        card.update(json.loads(a.card_extra.read_text()))
    a.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB), max |diff| vs torch {diff:.2e}")


def export_teacher(
    ckpt: Path, out: Path, fixed: tuple[int, int] | None, card_extra: Path | None = None, short_side: int = 192
) -> None:
    """A train_teacher checkpoint -> ONNX (full-resolution a*b*, stride 1) + its card, runnable
    by `streamcolor video/image --model OUT`."""
    from training.teachers import AB_SCALE, load_teacher

    c = torch.load(ckpt, map_location="cpu", weights_only=False)
    gen = load_teacher(ckpt, log=lambda m: None)
    multiple = getattr(gen, "multiple", 8)
    diff = export(gen, out, fixed, multiple=multiple)
    params = sum(p.numel() for p in gen.parameters())
    card = {
        "name": out.stem,
        "format": "streamcolor-model-card/1",
        "architecture": f"teacher {c['teacher']} {c.get('model_options', {})} (training/teachers.py), "
        f"{params} parameters",
        "input": {
            "name": "l",
            "short_side": -(-short_side // multiple) * multiple,
            "multiple": multiple,
            "fixed_size": list(fixed) if fixed else None,
            "l_offset": 50.0,
            "l_scale": 50.0,
            "comment": "x = (L* - l_offset) / l_scale, L* in [0, 100]",
        },
        "output": {"name": "ab", "stride": 1, "ab_scale": AB_SCALE, "comment": "a*b* = y * ab_scale, CIE units"},
        "training": {"steps": c["step"], "seconds": round(c["seconds"]), "config": c["config"]},
        "export": {"onnx_opset": 17, "max_abs_diff_vs_torch": diff, "date": datetime.date.today().isoformat()},
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    if card_extra:
        card.update(json.loads(card_extra.read_text()))
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), max |diff| vs torch {diff:.2e}")


if __name__ == "__main__":
    main()
