"""Train the bundled text-to-video model on the synthetic world, from scratch or from a model folder.

    samg-video-train                       # the first stage of the shipped recipe, ~88 min on 2 CPU cores
    samg-video-train --max-minutes 5       # a quick smoke run

The shipped weights are four stages (their commands: the model card and `training.json`
"stages"). The defaults are the first, from scratch: a one-slot U-Net with its velocity
head trained by the v-prediction loss plus `velocity_loss` x the squared error between
the head's velocity and the velocity each prompt's motion word means, a text encoder
kept at its seeded random initialisation, 12,000 pre-rendered clips (25 % two-object),
batch 32, AdamW 1e-3 with 200 warm-up steps and a cosine schedule over `steps`, EMA
0.999. The later stages fine-tune it with `--slots 2 --init FOLDER` (one text slot and
moving frame per object phrase) at LR 5e-4.

Checkpoints go to `run_dir` every `ckpt_every` steps (written atomically); running the
same command again resumes from the last one. The EMA weights are exported as a
diffusers-style folder (`out`) with `training.json` (settings, loss, weight checksums)
at every checkpoint and at the end.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import hashlib
import json
import pickle
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..atomic import atomic_path, write_text
from . import world

try:  # a numpy number's pickle: numpy 2's name, then numpy 1's
    from numpy._core.multiarray import scalar as np_scalar
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import scalar as np_scalar


@dataclass(frozen=True)
class TrainSettings:
    """One training run; the defaults are the first stage of the shipped recipe (from scratch)."""

    out: str = "runs/demo-train/model"
    run_dir: str = "runs/demo-train"
    steps: int = 3600           # planned steps: the length of the LR schedule
    max_minutes: float = 88.0   # stop (and export) after this long
    stop_step: int | None = None  # stop (and export) at this step, whatever the time
    batch: int = 32
    lr: float = 1e-3
    pool: int = 12000           # pre-rendered training clips
    two_object_prob: float = 0.25
    uncond_prob: float = 0.1    # prompt dropout, for CFG
    velocity_loss: float = 0.1  # weight of the velocity head's own loss
    slots: int = 1              # text slots of the U-Net: 1 = whole prompt, 2 = one per object phrase
    init: str | None = None     # start from this model folder's U-Net (fine-tuning); None: from scratch
    ckpt_every: int = 250
    seed: int = 0
    version: str = "dev"


HELP = {
    "steps": "planned steps (sets the LR schedule)",
    "max_minutes": "stop and export after this long",
    "stop_step": "stop and export at this step (the shipped run stopped at its time limit; see training.json)",
    "pool": "number of pre-rendered training clips",
    "two_object_prob": "share of two-object clips in the pool",
    "uncond_prob": "prompt dropout for CFG",
    "velocity_loss": "weight of the loss between the velocity head's output for each object phrase and the "
                     "velocity its motion word means (without it the head stays at 0 and the moving frames never "
                     "move)",
    "slots": "text slots of the U-Net: 1 = the whole prompt (the first stage), 2 = one per object phrase, "
             "each with its own moving frame (the shipped model)",
    "init": "start from the U-Net of this model folder (new parameters keep their initialisation)",
    "version": "version string written to training.json",
}


def parser() -> argparse.ArgumentParser:
    """Command-line options, one per `TrainSettings` field, with its default."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainSettings):
        kind = {"stop_step": int, "init": str}.get(f.name, type(f.default))
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, help=HELP.get(f.name))
    return p


def parse_settings(argv=None) -> TrainSettings:
    args = parser().parse_args(argv)
    return TrainSettings(**vars(args))


def render_pool(n: int, seed: int, path: Path, two_object_prob: float) -> tuple[np.ndarray, list[str]]:
    """n random scenes rendered once as uint8 (n, F, H, W, 3) with their prompts, cached at `path`."""
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        return data["clips"], list(data["prompts"])
    rng = np.random.default_rng(seed)
    clips, prompts = [], []
    for _ in tqdm(range(n), desc="rendering training clips"):
        scene = world.random_scene(rng, two_object_prob)
        clips.append((world.render(scene).numpy() * 255).round().astype(np.uint8))
        prompts.append(world.prompt_of(scene))
    clips = np.stack(clips)
    with atomic_path(path) as tmp:
        np.savez(tmp, clips=clips, prompts=np.array(prompts))
    return clips, prompts


def phrase_velocities(prompts: list[str], slots: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The velocity each object phrase's motion word means, per slot: (N, slots, 2) as
    (vx, vy) pixels per frame (world.SPEED along world.VELOCITY, y down), and (N, slots)
    bool for the slots that hold one object (with one slot, only one-object prompts)."""
    v = torch.zeros(len(prompts), slots, 2)
    present = torch.zeros(len(prompts), slots, dtype=torch.bool)
    for i, prompt in enumerate(prompts):
        objects = world.parse_prompt(prompt)
        if len(objects) > slots and slots == 1:
            continue
        for k, (_, _, motion) in enumerate(objects):
            v[i, k] = torch.tensor(world.VELOCITY[motion], dtype=torch.float32) * world.SPEED
            present[i, k] = True
    return v, present


def learning_rate(step: int, settings: TrainSettings) -> float:
    """lr * min(1, (s + 1) / 200) * (1 + cos(pi * min(s, S) / S)) / 2 for S planned steps."""
    s, total = min(step, settings.steps), settings.steps
    return settings.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + np.cos(np.pi * s / total))


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def save_atomic(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(unet, text_encoder, tokenizer, train_sched, out: Path, meta: dict) -> None:
    """Write the pipeline folder that `load_pipeline` reads, with `training.json` (meta,
    date and the weights' sha256)."""
    from diffusers import DDIMScheduler

    from .pipeline import WEIGHT_FILES

    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    tokenizer.save_pretrained(out / "tokenizer")
    DDIMScheduler.from_config(train_sched.config, clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1, timestep_spacing="leading").save_pretrained(out / "scheduler")
    record = {"version": meta["version"], "date": datetime.date.today().isoformat(),
              "sha256": {name: file_sha256(out / name) for name in WEIGHT_FILES}}
    record.update({k: v for k, v in meta.items() if k != "version"})
    write_text(out / "training.json", json.dumps(record, indent=2) + "\n")


class Trainer:
    """The models, the data and the optimiser state of one run; `step()` does one update."""

    def __init__(self, settings: TrainSettings):
        from diffusers import DDPMScheduler

        from .model import TinyVideoUNet, build_text_encoder, build_tokenizer, encode_slots

        self.settings = s = settings
        torch.manual_seed(s.seed)
        self.run = Path(s.run_dir)
        self.run.mkdir(parents=True, exist_ok=True)
        self.clips, prompts = render_pool(s.pool, s.seed, self.run / "pool.npz", s.two_object_prob)
        self.velocity, self.slot_present = phrase_velocities(prompts, s.slots)
        self.tokenizer = build_tokenizer()
        self.unet = TinyVideoUNet(slots=s.slots)
        self.text_encoder = build_text_encoder().requires_grad_(False)
        if s.init:
            self.load_init(Path(s.init))
        everything = prompts + [""]  # the last row is the empty prompt
        self.empty = len(prompts)
        with torch.no_grad():  # the encoder stays at its seeded init: encode every prompt once
            parts = [encode_slots(self.text_encoder, self.tokenizer, everything[i:i + 1024], s.slots)
                     for i in range(0, len(everything), 1024)]
        self.states, self.mask = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        self.sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                   prediction_type="v_prediction", clip_sample=False)
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=s.lr, weight_decay=0.01)
        self.ema = copy.deepcopy(self.unet)
        self.count, self.elapsed, self.losses = 0, 0.0, []
        self.rng = np.random.default_rng(s.seed + 1)

    def load_init(self, folder: Path) -> None:
        """Start from another model's U-Net and text encoder (parameters it lacks keep their init)."""
        from safetensors.torch import load_file
        from transformers import CLIPTextModel

        weights = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
        unexpected = self.unet.load_state_dict(weights, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{folder} holds U-Net weights this architecture does not have: {unexpected[:3]}.")
        self.text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").requires_grad_(False)

    @property
    def checkpoint_path(self) -> Path:
        return self.run / "checkpoint.pt"

    def resume(self) -> bool:
        """Load the run's last checkpoint, if there is one. It is read as data only
        (`torch.load(weights_only=True)`: tensors, numbers, strings, lists and dicts, which is all a
        checkpoint of this trainer holds, the RNG states and numpy numbers included); a file that holds anything else
        (a pickle that would run code) is refused in one sentence and nothing of it runs."""
        if not self.checkpoint_path.is_file():
            return False
        numbers = [np.dtype, type(np.dtype(np.float64)), np_scalar]  # numpy numbers (an older checkpoint's lr)
        try:
            with torch.serialization.safe_globals(numbers), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's note on a pickle protocol: the sentence below says it
                ck = torch.load(self.checkpoint_path, weights_only=True)
        except pickle.UnpicklingError as err:  # weights only: what would be called is named, never called
            found = re.search(r"GLOBAL ([\w.]+)", str(err))
            raise ValueError(f"{self.checkpoint_path} is not a checkpoint of this trainer: it holds more than data"
                             f"{f' ({found.group(1)})' if found else ''}, and was not loaded (nothing in it ran); "
                             "move it away to train from the start.") from None
        except (RuntimeError, EOFError, OSError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ValueError(f"{self.checkpoint_path} is not a checkpoint of this trainer ({first}); move it away "
                             "to train from the start.") from None
        if not isinstance(ck, dict) or not {"unet", "ema_unet", "opt", "step", "rng", "torch_rng"} <= set(ck):
            raise ValueError(f"{self.checkpoint_path} is not a checkpoint of this trainer (it lacks the weights, "
                             "optimiser or RNG state); move it away to train from the start.")
        self.unet.load_state_dict(ck["unet"])
        self.ema.load_state_dict(ck["ema_unet"])
        self.opt.load_state_dict(ck["opt"])
        self.count, self.elapsed, self.losses = ck["step"], ck["elapsed"], ck.get("losses", [])
        self.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        return True

    def loss(self, idx: np.ndarray, drop: np.ndarray, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v-prediction MSE, total loss) on clips `idx` at timesteps t; `drop` marks prompts replaced by ""."""
        s = self.settings
        x0 = torch.from_numpy(self.clips[idx]).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
        tok = torch.from_numpy(np.where(drop, self.empty, idx))
        noise = torch.randn(x0.shape)
        a = self.sched.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        states, mask = self.states[tok], self.mask[tok]
        pred = self.unet(xt, t, states, mask, return_dict=False)[0]
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v = sqrt(abar) eps - sqrt(1 - abar) x0
        mse = F.mse_loss(pred, target)
        keep = self.slot_present[idx] & torch.from_numpy(~drop)[:, None]  # the objects of real prompts
        if s.velocity_loss <= 0 or not keep.any():
            return mse, mse
        v = self.unet.slot_velocities(states, mask == 0)
        return mse, mse + s.velocity_loss * F.mse_loss(v[keep], self.velocity[idx][keep])

    def step(self) -> float:
        """One optimiser step and EMA update; returns the v-prediction loss."""
        s = self.settings
        idx = self.rng.integers(0, len(self.clips), s.batch)
        drop = self.rng.random(s.batch) < s.uncond_prob
        t = torch.from_numpy(self.rng.integers(0, 1000, s.batch))
        mse, total = self.loss(idx, drop, t)
        for g in self.opt.param_groups:
            g["lr"] = float(learning_rate(self.count, s))
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.opt.step()
        ema_update(self.ema, self.unet, min(0.999, (1 + self.count) / (10 + self.count)))
        self.count += 1
        self.losses.append(mse.item())
        return self.losses[-1]

    def meta(self) -> dict:
        s = self.settings
        return {"version": s.version, "steps": self.count, "planned_steps": s.steps,
                "minutes": round(self.elapsed / 60, 1), "batch": s.batch, "lr": s.lr,
                "velocity_loss": s.velocity_loss, "uncond_prob": s.uncond_prob,
                "final_loss": float(np.mean(self.losses[-100:])) if self.losses else None,
                "parameters": sum(p.numel() for m in (self.unet, self.text_encoder) for p in m.parameters()),
                "text_encoder": "frozen at init", "init": s.init, "pool": s.pool, "two_object_prob": s.two_object_prob,
                "seed": s.seed, "architecture": {k: v for k, v in self.unet.config.items() if not k.startswith("_")}}

    def checkpoint(self) -> None:
        """Save the run state atomically and export the EMA weights."""
        save_atomic({"unet": self.unet.state_dict(), "ema_unet": self.ema.state_dict(),
                     "opt": self.opt.state_dict(), "step": self.count, "elapsed": self.elapsed,
                     "losses": self.losses[-100:], "rng": self.rng.bit_generator.state,
                     "torch_rng": torch.get_rng_state()}, self.checkpoint_path)
        export(self.ema, self.text_encoder, self.tokenizer, self.sched, Path(self.settings.out), self.meta())

    def log(self, handle) -> None:
        from .model import motion_word_velocities

        handle.write(json.dumps({"step": self.count, "loss": float(np.mean(self.losses[-50:])),
                                 "minutes": round(self.elapsed / 60, 2),
                                 "velocity": motion_word_velocities(self.ema, self.text_encoder,
                                                                    self.tokenizer)}) + "\n")
        handle.flush()


def train(settings: TrainSettings) -> Trainer:
    """Run (or resume) training until `steps`, `stop_step` or `max_minutes`; export at the end."""
    trainer = Trainer(settings)
    if trainer.resume():
        print(f"resumed from step {trainer.count} ({trainer.elapsed / 60:.1f} min)")
    last = min(settings.steps, settings.stop_step or settings.steps)
    start = time.time() - trainer.elapsed
    bar = tqdm(total=last, initial=trainer.count, desc="training")
    with open(trainer.run / "log.jsonl", "a") as log:
        while trainer.count < last and time.time() - start < settings.max_minutes * 60:
            trainer.step()
            trainer.elapsed = time.time() - start
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(trainer.losses[-50:]):.4f}")
            if trainer.count % 50 == 0:
                trainer.log(log)
            if trainer.count % settings.ckpt_every == 0:
                trainer.checkpoint()
    bar.close()
    trainer.checkpoint()
    print(f"done: {trainer.count} steps in {trainer.elapsed / 60:.1f} min; weights in {settings.out}")
    return trainer


def main(argv=None) -> None:
    settings = parse_settings(argv)
    try:
        train(settings)
    except ValueError as err:  # a bad run folder or checkpoint: one sentence, exit 2
        print(f"samg-video-train: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
