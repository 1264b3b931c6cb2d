"""A shipped MobileStudent ONNX file back into a trainable PyTorch MobileStudent.

    model = mobile_student_from_onnx("streamcolor/models/student_hints.onnx")

The shipped files are the only copy of a model that must outlive the machine it was trained
on (checkpoints live outside the repository), so fine-tuning a shipped model (the hint
branch beside the default, issue 24) starts from its ONNX export. The export
(training/export.py) keeps the module names of every parameter ("student.<name>"), except that
PyTorch's exporter folded each decoder batch norm into the convolution before it (nameless
"onnx::Conv_*" initializers, found here through the Conv node's name) and fold_head() folded
the softmax's shift and 1/T into the head. Both are undone exactly: the convolution takes the
folded weight, its batch norm becomes the identity plus the folded bias (running mean 0,
running variance 1 - eps, weight 1), the encoder's stride-2 layers stay in the export's 4x4
form (mobilenet.ConvAct.fold_same_padding, the same arithmetic), and the head becomes T * the folded head (the channel
mean it lost does not change the softmax). The result reproduces the ONNX outputs to float
precision (tests/test_training.py).

Raises ValueError for an ONNX file that is not a MobileStudent export (a parameter it cannot
place, or one it lacks).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from training.student import MobileStudent


def _card(path: Path) -> dict:
    card = path.with_suffix(".json")
    return json.loads(card.read_text()) if card.exists() else {}


def mobile_student_from_onnx(path: str | Path, temperature: float | None = None) -> MobileStudent:
    """path: a MobileStudent exported by training/export.py (its card beside it gives the
    annealed-mean temperature when `temperature` is None). -> the MobileStudent in eval mode,
    its head unfolded (head_folded False), hints="gated" when the file takes hints."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    # weights stored as float16 behind a Cast (export.store_weights_fp16): the Cast's output name
    for n in m.graph.node:
        if n.op_type == "Cast" and n.input[0] in inits and n.input[0].endswith("_fp16"):
            inits[n.output[0]] = inits.pop(n.input[0]).astype(np.float32)
    # a hint model is exported through a wrapper (its parameters under "student."), the
    # automatic student directly
    prefix = "student." if "student.head.weight" in inits else ""
    params = {k[len(prefix) :]: v for k, v in inits.items() if k.startswith(prefix) and not k.startswith("onnx::")}
    if "head.weight" not in params:
        raise ValueError(f"{path}: not a MobileStudent export (no head.weight)")
    hints = "gated" if any(k.startswith("hint16.") for k in params) else False
    stages = 32 if "lat32.weight" in params else 16
    decoder = (params["lat16.weight"].shape[0], params["lat8.weight"].shape[0], params["lat4.weight"].shape[0])
    if temperature is None:
        found = re.search(r"T=([\d.]+)", _card(path).get("architecture", ""))
        if not found:
            raise ValueError(f"{path}: its card does not give the annealed-mean temperature; pass temperature=")
        temperature = float(found.group(1))
    bins = torch.zeros(params["head.weight"].shape[0], 2)
    model = MobileStudent(bins, temperature=temperature, stages=stages, decoder=decoder, hints=hints)
    model.encoder.fold_same_padding()  # stride-2 layers as the export wrote them (4x4 kernels)
    sd = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    for k, v in params.items():
        if k not in sd:
            raise ValueError(f"{path}: parameter {k} has no place in MobileStudent")
        new[k] = torch.from_numpy(np.array(v, np.float32))
    # batch norms folded into their convolution: /d16/d16.0/Conv -> d16.0 (conv), d16.1 (bn)
    for n in m.graph.node:
        if n.op_type != "Conv" or len(n.input) < 3 or not n.input[1].startswith("onnx::"):
            continue
        conv = n.name.strip("/").split("/")[-2]  # the module path, e.g. d4.0.0
        parent, idx = conv.rsplit(".", 1)
        bn = f"{parent}.{int(idx) + 1}"
        if f"{conv}.weight" not in sd or f"{bn}.running_var" not in sd:
            raise ValueError(f"{path}: folded convolution {n.name} has no conv-BN pair in MobileStudent")
        eps = dict(model.named_modules())[bn].eps
        new[f"{conv}.weight"] = torch.from_numpy(inits[n.input[1]].astype(np.float32))
        bias = torch.from_numpy(inits[n.input[2]].astype(np.float32))
        new[f"{bn}.weight"] = torch.ones_like(bias)
        new[f"{bn}.bias"] = bias
        new[f"{bn}.running_mean"] = torch.zeros_like(bias)
        new[f"{bn}.running_var"] = torch.full_like(bias, 1.0 - eps)
    # the annealed mean's 1x1 convolution holds [bins^T; 1] * SUM_SCALE (ABClassifier.annealed_mean)
    last = [n for n in m.graph.node if n.op_type == "Conv" and n.input[1] in inits and n.input[1].startswith("onnx::")]
    w = inits[last[-1].input[1]].reshape(3, -1) if last else None
    if w is None or w.shape[1] != bins.shape[0]:
        raise ValueError(f"{path}: no annealed-mean convolution over {bins.shape[0]} bins")
    new["bins"] = torch.from_numpy((w[:2].T / model.SUM_SCALE).astype(np.float32))
    missing = [k for k in sd if k not in new and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path}: no values for {missing[:5]}")
    # the head was folded: w' = (w - mean) / T, b' = (b - mean) / T - SHIFT
    new["head.weight"] = new["head.weight"] * temperature
    new["head.bias"] = (new["head.bias"] + model.SHIFT) * temperature
    model.load_state_dict(new, strict=False)
    # hints of 4 planes: the branch is multiplied by the locality plane (export --hint-locality)
    hint_in = [i for i in m.graph.input if i.name == "hints"]
    dims = hint_in[0].type.tensor_type.shape.dim if hint_in else []
    model.locality = len(dims) > 1 and dims[1].dim_value == 4
    return model.eval()


def checkpoint_from_onnx(path: str | Path, temperature: float | None = None) -> dict:
    """A train_student checkpoint (its `--init`) of a shipped MobileStudent ONNX file: the
    weights of a plain MobileStudent (the export's 4x4 stride-2 kernels back to 3x3 with TFLite
    SAME padding: the 4x4 form's first row and column are zeros) and the fields
    train_student and export read."""
    model = mobile_student_from_onnx(path, temperature)
    fresh = MobileStudent(model.bins, model.temperature, model.stages, model.decoder_widths, hints=model.hints)
    shapes = {k: v.shape for k, v in fresh.state_dict().items()}
    sd = {}
    for k, v in model.state_dict().items():
        if v.dim() == 4 and v.shape[-2:] == (4, 4) and shapes[k][-2:] == (3, 3):
            if v[:, :, 0].abs().max() > 0 or v[:, :, :, 0].abs().max() > 0:
                raise ValueError(f"{path}: {k} is not a folded SAME-padded 3x3 kernel")
            v = v[:, :, 1:, 1:].contiguous()
        sd[k] = v
    fresh.load_state_dict(sd)
    card = _card(Path(path))
    training = card.get("training", {})
    return {
        "state_dict": fresh.state_dict(),
        "arch": "mobile",
        "stages": model.stages,
        "decoder": list(model.decoder_widths),
        "hints": model.hints,
        "backbone": card.get("pretrained_backbone"),
        "width": model.stages,
        "depth": 4,
        "bins": model.bins.clone(),
        "steps": training.get("steps", 0),
        "seconds": training.get("seconds", 0),
        "init_from": training.get("init_from"),
        "init_steps": training.get("init_steps", 0),
        "init_seconds": training.get("init_seconds", 0),
        # what export.py writes into the card, as the shipped card says them
        "batch": training.get("batch"),
        "crop": training.get("crop"),
        "alpha": training.get("rebalance_alpha"),
        "degrade": training.get("degradations", 0.0),
        "freeze_stride": training.get("frozen_up_to_stride", 0),
        "distilled_from": training.get("distilled_from"),
        "distill_weight": training.get("distill_weight", 0.0),
        "cast_weight": training.get("cast_weight", 0.0),
        "hint_none": (card.get("hints") or {}).get("hint_none_share"),
        "dropout": 0.0,
        "from_onnx": str(path),
    }


def copy_weights(source: str | Path, target: str | Path) -> int:
    """Re-exporting a model through PyTorch (mobile_student_from_onnx -> training/export.py)
    rounds a few weights by one float32 step (the head's fold and unfold), so a re-export of the
    same model is not bit-exact. This puts the source file's weights into `target` (an export of
    the same model, its graph changed around them): each initializer matched by name, or by the
    node and input that use it (the folded batch norms' names are numbered), and of the same
    shape. -> how many were copied; `target` is rewritten."""
    import onnx
    from onnx import numpy_helper

    old, new = onnx.load(str(source)), onnx.load(str(target))

    def users(m) -> dict[str, tuple[str, int]]:
        names = {i.name for i in m.graph.initializer}
        return {name: (n.name, k) for n in m.graph.node for k, name in enumerate(n.input) if name in names}

    by_name = {i.name: i for i in old.graph.initializer}
    by_use = {use: by_name[name] for name, use in users(old).items()}
    new_users = users(new)
    copied = 0
    for init in new.graph.initializer:
        src = by_name.get(init.name) or by_use.get(new_users.get(init.name, ("", -1)))
        if src is not None and list(src.dims) == list(init.dims):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(src), init.name))
            copied += 1
    onnx.save(new, str(target))
    return copied


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="a shipped MobileStudent ONNX file as a train_student checkpoint")
    ap.add_argument("onnx", type=Path)
    ap.add_argument("--out", type=Path, help="write the train_student checkpoint here")
    ap.add_argument("--into", type=Path, help="or: copy ONNX's weights into this re-export of the same model")
    a = ap.parse_args(argv)
    if a.into:
        print(f"copied {copy_weights(a.onnx, a.into)} weights into {a.into}")
    elif a.out:
        torch.save(checkpoint_from_onnx(a.onnx), a.out)
        print(f"wrote {a.out}")
    else:
        ap.error("give --out or --into")


if __name__ == "__main__":
    main()
