"""A run's settings: which model, where its weights are, how it runs and how much it makes. The
command line (`generate`, `compare`, `sweep`), a sweep config and the Python API all build one
`RunSettings`, and `generate.load_target` takes it; defaults and limits live here only.

    settings = RunSettings.from_args(args)             # --model --model-path ... --steps
    settings = RunSettings.from_sweep_config(config)   # the same keys in a sweep YAML
    target = load_target(settings)                     # or load_target(model="demo", steps=4)

Unset values (None) take the model card's: its frames (rounded to its frame rule), resolution,
steps and dtype.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from . import cards

DEFAULT_MODEL = "demo"  # the bundled model
LIMITS = {"frames": 1025, "height": 4096, "width": 4096, "steps": 1000}  # what a model and a machine take
TEXT = ("model", "model_path", "adapter_path", "controlnet_path", "device")
SWITCHES = ("cpu_offload", "vae_tiling")


@dataclass(frozen=True)
class RunSettings:
    """model: a registry name (`samg-video models`); model_path / adapter_path / controlnet_path:
    local folders (default: the Hugging Face cache); device: auto | cpu | cuda | cuda:N; dtype:
    float32 | float16 | bfloat16 (None: the card's on a GPU, float32 on the CPU); frames, height,
    width, steps: None for the card's."""

    model: str = DEFAULT_MODEL
    model_path: str | None = None
    adapter_path: str | None = None
    controlnet_path: str | None = None
    device: str = "auto"
    dtype: str | None = None
    cpu_offload: bool = False
    vae_tiling: bool = False
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    steps: int | None = None

    def __post_init__(self):
        check_values(asdict(self))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(cls, values: dict, where: str = "", flag=None) -> "RunSettings":
        """From a mapping holding any of `keys()` (None: the default; other keys ignored), checked
        first (`check_values`, whose messages `where` and `flag` shape)."""
        given = {k: values[k] for k in cls.keys() if values.get(k) is not None}
        check_values(given, where, *([flag] if flag else []))
        return cls(**given)

    @classmethod
    def from_args(cls, args) -> "RunSettings":
        """From the command line's shared model options (`cli.add_model_options`)."""
        return cls.from_values(vars(args))

    @classmethod
    def from_sweep_config(cls, config: dict, where: str = "sweep config") -> "RunSettings":
        """From a sweep config's model keys (a `dtype: default` is the card's); a wrong value is
        one sentence naming `where` and the key as the YAML writes it."""
        values = dict(config)
        if values.get("dtype") == "default":
            values["dtype"] = None
        return cls.from_values(values, where, flag=lambda key: key)

    @property
    def card(self) -> dict:
        return cards.card(self.model)

    def resolved_device(self) -> tuple[str, str | None]:
        """(device, note): `resolve_device` with the card's preferred device."""
        return resolve_device(self.device, self.cpu_offload, self.card.get("device"))

    def check_applicable(self) -> None:
        """Before any work: the card's fixed values (`cards.check_applicable`) and the device
        (a missing GPU is one sentence before anything looks for weights)."""
        cards.check_applicable(self.card, {"height": self.height, "width": self.width, "dtype": self.dtype})
        self.resolved_device()

    def to_dict(self) -> dict:
        return asdict(self)


def check_values(values: dict, where: str = "", flag=lambda key: f"--{key.replace('_', '-')}") -> None:
    """Each given value's type and range, one sentence naming the first wrong one (`where`: a prefix
    such as the sweep file; `flag(key)`: how the message names the key: `--frames`, or `frames`)."""
    prefix = f"{where}: " if where else ""
    for key, high in LIMITS.items():
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high):
            raise ValueError(f"{prefix}{flag(key)} must be a whole number from 1 to {high}, got {value!r}.")
    for key in TEXT:
        value = values.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{prefix}{flag(key)} must be text, got {value!r}.")
    for key in SWITCHES:
        if values.get(key) is not None and not isinstance(values[key], bool):
            raise ValueError(f"{prefix}{flag(key)} must be true or false, got {values[key]!r}.")
    dtype = values.get("dtype")
    if dtype is not None and dtype not in cards.DTYPES:
        raise ValueError(f"{prefix}{flag('dtype')} must be one of {', '.join(cards.DTYPES)}, got {dtype!r}.")


def resolve_device(device: str, cpu_offload: bool = False, preferred: str | None = None) -> tuple[str, str | None]:
    """`auto` -> `preferred` when the card names one (the bundled model: the CPU), else cuda when
    available, else cpu (with a note); an unavailable accelerator is an error."""
    if device == "auto" and preferred:
        device = preferred
    note = None
    if device == "auto" or device.startswith("cuda"):  # torch only where it must be asked
        import torch

        if device == "auto":
            if torch.cuda.is_available():
                return "cuda", None
            device, note = "cpu", "no CUDA device found; running on the CPU."
        elif not torch.cuda.is_available():
            raise ValueError(f"--device {device} needs a CUDA GPU, but torch sees none on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu or --device auto.")
    if cpu_offload and device == "cpu":
        raise ValueError("--cpu-offload moves modules between the CPU and an accelerator, and this run has none "
                         "(device cpu); drop --cpu-offload or run on a GPU.")
    return device, note



# What a skip policy spec may say (guidance.skip): the CLI's help and the ComfyUI node's tooltip; in the settings
# module, which imports nothing heavy.
SKIP_HELP = ("steps without the unconditional pass (fewer denoiser calls): off; every:N (FasterCache-style: the pass "
             "every N steps, its delta reused between; ,alpha_low=1.1,alpha_high=1.1 reweight its frequency bands); "
             "error:TOL (decides at every step: reuse the delta while its predicted error, relative to the "
             "prediction, stays within TOL, e.g. 0.3); adaptive:T (reuse once the delta changes by at most T of the "
             "prediction per step; ,max_reuse=,estimate_by=linear); interval:START-STOP (guidance only in that "
             "fraction of the steps); ,start=,stop= bound where every / error / adaptive act")
