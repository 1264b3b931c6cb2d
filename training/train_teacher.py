"""Train a teacher (Pix2Pix GAN or fusion network) from a config file.

    python -m training.train_teacher --config training/configs/pix2pix.toml --out runs/pix2pix
    python -m training.train_teacher --config training/configs/pix2pix.toml --out runs/pix2pix --resume
    python -m training.train_teacher --config ... --set train.steps=2000 --set data.crop=128
    torchrun --nproc_per_node 8 -m training.train_teacher --config ... --out runs/pix2pix   # multi-GPU

Configuration is resolved once: the file's values, then each --set (dotted key = TOML
value), stored in every checkpoint. Checkpoints (`last.pt`, written atomically every
train.ckpt_every steps and at the end) hold the models, optimisers, step, elapsed time and
RNG states; --resume continues from last.pt exactly where it stopped. Progress goes to the
terminal and to `log.jsonl` (losses, images/s, validation L1 in a*b* units). Under torchrun
each process trains on its share of the data (DistributedSampler) with
DistributedDataParallel: NCCL on GPUs, gloo on CPUs.

On a GPU, `data.device_batches = true` keeps the decoded photos (a pack of equal-size
crops) in GPU memory and makes each batch there (random scale, position and flip, Lab,
near-gray crops replaced), so a fast GPU is not starved by CPU workers; `train.amp = true`
runs the networks in bfloat16 autocast; `train.minutes` stops after that much training
time (and `train.steps`, whichever comes first).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.datasets import ColorCrops, gather, split
from training.losses import GANLoss, MobileNetPerceptual, VGGPerceptual, to_rgb
from training.teachers import AB_SCALE, PatchDiscriminator, create_generator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULTS: dict = {
    "teacher": "pix2pix_unet",
    "model": {},
    "data": {
        "images": "../shared/data/train",
        "pack": "",
        "videos": [],
        "frame_stride": 10,
        "crop": 256,
        "val_fraction": 0.03,
        "min_chroma": 3.0,
        "workers": 2,
        "limit": 0,
        "device_batches": False,
    },
    "loss": {
        "gan": "vanilla",
        "l1": 100.0,
        "l2": 0.0,
        "perceptual": 0.0,
        "perceptual_net": "vgg16",  # or "mobilenet_v2" (backbone_weights: the TFLite file)
        "vgg_weights": "hub",
        "backbone_weights": "",
        # share of the run (of train.minutes if set, else of train.steps) trained with L1 only
        # before the discriminator joins: pretrain the generator, then adversarial training
        # (Nazeri et al. 2018 / the seed's first reference)
        "l1_pretrain": 0.0,
    },
    "train": {
        "steps": 100_000,
        "batch": 16,
        "lr": 2e-4,
        "lr_d": 2e-4,
        "betas": [0.5, 0.999],
        "seed": 0,
        "log_every": 50,
        "ckpt_every": 1000,
        "val_batches": 8,
        "device": "auto",
        "amp": False,
        "minutes": 0.0,
        "threads": 0,  # CPU threads for PyTorch (0: its default); 1 on a shared, loaded CPU
    },
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_set(item: str) -> dict:
    """'train.steps=200' -> {'train': {'steps': 200}} (the value parsed as TOML, else a string)."""
    key, _, raw = item.partition("=")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(path: Path | None, sets: list[str]) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        cfg = merge(cfg, tomllib.loads(Path(path).read_text()))
    for s in sets:
        cfg = merge(cfg, parse_set(s))
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"unknown config section(s): {', '.join(sorted(unknown))}")
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Distributed:
    """torchrun's environment, or a single process."""

    def __init__(self, device: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, m: nn.Module) -> nn.Module:
        if self.world == 1:
            return m
        return nn.parallel.DistributedDataParallel(
            m, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def mean(self, x: float) -> float:
        if self.world == 1:
            return x
        t = torch.tensor([x], device=self.device)
        torch.distributed.all_reduce(t)
        return float(t) / self.world

    def close(self) -> None:
        if self.world > 1:
            # every rank arrives before any tears the group down: a rank leaving while the
            # other still finishes (rank 0 writing the checkpoint) could abort it in gloo
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def device_batch(imgs: torch.Tensor, n: int, crop: int, min_chroma: float, gen: torch.Generator):
    """A batch made where the photos live: (n, 1, crop, crop) normalised L and (n, 2, crop,
    crop) a*b* / AB_SCALE, as ColorCrops gives; crops whose mean chroma is below min_chroma
    are replaced by colourful ones from the same draw when it has enough."""
    from training.data import lab_crops

    with torch.no_grad():
        draw = n + n // 2 if min_chroma > 0 else n
        lab = lab_crops(imgs, draw, crop, gen)
        if min_chroma > 0:
            chroma = lab[:, 1:].norm(dim=1).mean(dim=(1, 2))
            order = torch.argsort((chroma < min_chroma).to(torch.int8), stable=True)  # colourful first
            lab = lab[order[:n]]
        return (lab[:, :1] - 50.0) / 50.0, lab[:, 1:] / AB_SCALE


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a broken last.pt


def train(cfg: dict, out: Path, resume: bool = False, log=print) -> dict:
    """Run (or continue) a training run; returns the last logged record."""
    dist = Distributed(cfg["train"]["device"])
    t, d, lc = cfg["train"], cfg["data"], cfg["loss"]
    seed_everything(t["seed"] + dist.rank)
    if t["threads"]:
        torch.set_num_threads(int(t["threads"]))
    say = log if dist.main else (lambda m: None)
    out.mkdir(parents=True, exist_ok=True)

    items, names = gather(d["images"] or None, d["pack"] or None, d["videos"], d["frame_stride"], d["limit"])
    (tr_items, tr_names), (va_items, va_names) = split(items, names, d["val_fraction"])
    if not va_items:  # tiny sets: keep one image aside rather than none
        va_items, va_names = tr_items[-1:], tr_names[-1:]
    train_set = ColorCrops(tr_items, tr_names, d["crop"], True, d["min_chroma"], t["seed"])
    val_set = ColorCrops(va_items, va_names, d["crop"], False, 0.0, t["seed"])
    sampler = (
        torch.utils.data.DistributedSampler(train_set, dist.world, dist.rank, seed=t["seed"])
        if dist.world > 1
        else None
    )
    loader_kw = dict(
        batch_size=t["batch"], num_workers=d["workers"], drop_last=True, persistent_workers=d["workers"] > 0
    )
    say(f"{len(tr_items)} training / {len(va_items)} validation images, {dist.world} process(es) on {dist.device}")
    device_data = None
    if d["device_batches"]:
        if not all(isinstance(it, np.ndarray) and it.shape == tr_items[0].shape for it in tr_items):
            raise SystemExit("data.device_batches needs equal-size photos in memory: give data.pack")
        device_data = torch.from_numpy(np.stack(tr_items)).to(dist.device)
        batch_gen = torch.Generator().manual_seed(t["seed"] * 1000 + dist.rank)

    gen = create_generator(cfg["teacher"], **cfg["model"], log=say)
    gen = gen.to(dist.device)
    use_gan = lc["gan"] not in ("none", "", None)
    disc = PatchDiscriminator().to(dist.device) if use_gan else None
    opt_g = torch.optim.Adam(gen.parameters(), lr=t["lr"], betas=tuple(t["betas"]))
    opt_d = torch.optim.Adam(disc.parameters(), lr=t["lr_d"], betas=tuple(t["betas"])) if use_gan else None
    gan_loss = GANLoss(lc["gan"]) if use_gan else None
    perceptual = None
    if lc["perceptual"] > 0:
        if lc["perceptual_net"] == "mobilenet_v2":
            perceptual = MobileNetPerceptual(lc["backbone_weights"], say).to(dist.device)
        elif lc["perceptual_net"] == "vgg16":
            perceptual = VGGPerceptual(lc["vgg_weights"], say).to(dist.device)
        else:
            raise SystemExit(f"unknown loss.perceptual_net '{lc['perceptual_net']}'; choose vgg16 or mobilenet_v2")

    step, seconds = 0, 0.0
    last = out / "last.pt"
    if resume and last.exists():
        ck = torch.load(last, map_location=dist.device, weights_only=False)
        gen.load_state_dict(ck["generator"])
        opt_g.load_state_dict(ck["opt_g"])
        if use_gan:
            disc.load_state_dict(ck["discriminator"])
            opt_d.load_state_dict(ck["opt_d"])
        step, seconds = ck["step"], ck["seconds"]
        set_rng_state(ck["rng"])
        say(f"resumed from {last} at step {step}")
    elif resume:
        say(f"no {last} yet: starting a new run")
    g_model, d_model = dist.wrap(gen), (dist.wrap(disc) if use_gan else None)

    def checkpoint() -> None:
        if dist.main:
            save_checkpoint(
                last,
                {
                    "kind": "teacher",
                    "teacher": cfg["teacher"],
                    "model_options": cfg["model"],
                    "config": cfg,
                    "generator": gen.state_dict(),
                    "discriminator": disc.state_dict() if use_gan else None,
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict() if use_gan else None,
                    "step": step,
                    "seconds": seconds,
                    "rng": rng_state(),
                    "crop": d["crop"],
                },
            )

    def validate() -> float:
        """Mean |a*b* error| in CIE units on the validation crops."""
        gen.eval()
        errs = []
        with torch.no_grad():
            vl = torch.utils.data.DataLoader(val_set, batch_size=t["batch"], num_workers=0)
            for i, (lum, ab) in enumerate(vl):
                if i >= t["val_batches"]:
                    break
                with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=amp):
                    pred = gen(lum.to(dist.device)).float()
                errs.append(float((pred - ab.to(dist.device)).abs().mean()) * AB_SCALE)
        gen.train()
        return dist.mean(float(np.mean(errs)) if errs else float("nan"))

    amp = bool(t["amp"]) and dist.device.type == "cuda"
    budget = float(t["minutes"]) * 60.0

    def out_of_time() -> bool:
        return step >= t["steps"] or (budget > 0 and seconds >= budget)

    def adversarial_now() -> bool:
        """False while the generator is pretrained with L1 alone (loss.l1_pretrain)."""
        if not use_gan:
            return False
        done = seconds / budget if budget > 0 else step / max(1, t["steps"])
        return done >= float(lc["l1_pretrain"])

    def batches():
        """(l, ab) batches for the current epoch: device-made or from the DataLoader."""
        if device_data is not None:
            for _ in range(max(1, len(tr_items) // (t["batch"] * dist.world))):
                yield device_batch(device_data, t["batch"], d["crop"], d["min_chroma"], batch_gen)
            return
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_set.epoch = epoch
        yield from torch.utils.data.DataLoader(train_set, sampler=sampler, shuffle=sampler is None, **loader_kw)

    record: dict = {}
    epoch = 0
    window = {"images": 0, "time": time.perf_counter(), "sums": {}}
    log_file = (out / "log.jsonl").open("a") if dist.main else None

    def run_epochs() -> None:
        nonlocal step, seconds, record, epoch, window
        while not out_of_time():
            for lum, ab in batches():
                if out_of_time():
                    break
                t0 = time.perf_counter()
                lum, ab = lum.to(dist.device, non_blocking=True), ab.to(dist.device, non_blocking=True)
                with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=amp):
                    fake = g_model(lum).float()
                losses = {}
                adversarial = adversarial_now()
                if adversarial:
                    opt_d.zero_grad(set_to_none=True)
                    with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=amp):
                        real_out, fake_out = d_model(lum, ab).float(), d_model(lum, fake.detach()).float()
                    loss_d = 0.5 * (gan_loss(real_out, True) + gan_loss(fake_out, False))
                    loss_d.backward()
                    opt_d.step()
                    losses["d"] = loss_d.item()
                opt_g.zero_grad(set_to_none=True)
                l1 = F.l1_loss(fake, ab)
                loss_g = lc["l1"] * l1
                losses["l1_ab"] = l1.item() * AB_SCALE  # CIE a*b* units
                if lc["l2"]:
                    l2 = F.mse_loss(fake, ab)
                    loss_g = loss_g + lc["l2"] * l2
                    losses["l2"] = l2.item()
                if adversarial:
                    with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=amp):
                        fake_judged = d_model(lum, fake).float()
                    adv = gan_loss(fake_judged, True)
                    loss_g = loss_g + adv
                    losses["g_adv"] = adv.item()
                if perceptual is not None:
                    perc = perceptual(to_rgb(lum, fake), to_rgb(lum, ab))
                    loss_g = loss_g + lc["perceptual"] * perc
                    losses["perceptual"] = perc.item()
                loss_g.backward()
                opt_g.step()
                losses["g"] = loss_g.item()
                step += 1
                seconds += time.perf_counter() - t0
                window["images"] += lum.shape[0] * dist.world
                for k, v in losses.items():
                    window["sums"][k] = window["sums"].get(k, 0.0) + v
                final = out_of_time()
                if step % t["log_every"] == 0 or final:
                    n = t["log_every"] if step % t["log_every"] == 0 else step % t["log_every"]
                    elapsed = time.perf_counter() - window["time"]
                    record = {"step": step, **{k: round(v / n, 5) for k, v in window["sums"].items()}}
                    record["images_per_s"] = round(window["images"] / max(elapsed, 1e-9), 1)
                    record["train_seconds"] = round(seconds, 1)
                    if step % t["ckpt_every"] == 0 or final:
                        record["val_l1_ab"] = round(validate(), 4)
                    if dist.main:
                        say(" ".join(f"{k} {v}" for k, v in record.items()))
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
                    window = {"images": 0, "time": time.perf_counter(), "sums": {}}
                if step % t["ckpt_every"] == 0:
                    checkpoint()
            epoch += 1

    try:
        run_epochs()
    except KeyboardInterrupt:  # Ctrl-C: keep what was learnt, resume later with --resume
        checkpoint()
        say(f"interrupted at step {step}: saved {last}; continue with --resume")
        raise
    checkpoint()
    if log_file:
        log_file.close()
    dist.close()
    return record


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="TOML file (training/configs/*.toml)")
    ap.add_argument("--out", type=Path, required=True, help="run folder: last.pt, log.jsonl, config.json")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=200")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return train(cfg, a.out, a.resume)


if __name__ == "__main__":
    main()
