"""SAMG as a diffusers guider (`BaseGuidance`), for modular pipelines and pipelines with a `guider`.

The guider is a thin config shell around `samg_video.guidance.SAMG`: the math, the
checks and the state live there. The diffusers guider API announces every step with
`set_state(step, num_inference_steps, timestep)`; step 0 is the start of a run, where
the SAMG state (the step EMA) is reset.

    from samg_video.pipelines import SAMGGuider
    guider = SAMGGuider(w_min=5, w_max=12, temporal_sigma=1.0, layout="BCFHW")
    pipe.update_components(guider=guider)          # modular pipelines
    guider.save_pretrained("my_guider"); SAMGGuider.from_pretrained("my_guider")
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.guiders.guider_utils import BaseGuidance, GuiderOutput

from ..guidance import SAMG


class SAMGGuider(BaseGuidance):
    """Spatial Adaptive Multi Guidance for diffusers' guider API (start / stop: fractions of the run)."""

    _input_predictions = ["pred_cond", "pred_uncond"]

    @register_to_config
    def __init__(self, w_min: float = 5.0, w_max: float = 12.0, energy: str = "mean_sq", normalize: str = "clip",
                 quantiles: tuple[float, float] = (0.0, 1.0), spatial_sigma: float = 0.0,
                 temporal_sigma: float = 0.0, step_ema: float = 0.0, bound: float | None = None,
                 layout: str = "BCFHW", start: float = 0.0, stop: float = 1.0, enabled: bool = True):
        super().__init__(start, stop, enabled)
        self.layout = layout
        self.method = SAMG(w_min=w_min, w_max=w_max, energy=energy, normalize=normalize, quantiles=tuple(quantiles),
                           spatial_sigma=spatial_sigma, temporal_sigma=temporal_sigma, step_ema=step_ema,
                           bound=bound)

    def set_state(self, step: int, num_inference_steps: int, timestep) -> None:
        super().set_state(step, num_inference_steps, timestep)
        if step == 0:
            self.method.reset()

    def prepare_inputs(self, data):
        indices = [0] if self.num_conditions == 1 else [0, 1]
        return [self._prepare_batch(data, i, name) for i, name in zip(indices, self._input_predictions)]

    def prepare_inputs_from_block_state(self, data, input_fields):
        indices = [0] if self.num_conditions == 1 else [0, 1]
        return [self._prepare_batch_from_block_state(input_fields, data, i, name)
                for i, name in zip(indices, self._input_predictions)]

    def forward(self, pred_cond: torch.Tensor, pred_uncond: torch.Tensor | None = None) -> GuiderOutput:
        if not self._is_enabled_now():
            return GuiderOutput(pred=pred_cond, pred_cond=pred_cond, pred_uncond=pred_uncond)
        steps = self._num_inference_steps or 1
        pred = self.method(pred_uncond, pred_cond, step=min(self._step or 0, steps - 1), num_steps=steps,
                           layout=self.layout)
        return GuiderOutput(pred=pred, pred_cond=pred_cond, pred_uncond=pred_uncond)

    @property
    def is_conditional(self) -> bool:
        return self._count_prepared == 1

    @property
    def num_conditions(self) -> int:
        return 2 if self._is_enabled_now() else 1

    def _is_enabled_now(self) -> bool:
        if not self._enabled:
            return False
        if self._num_inference_steps is None:
            return True
        start, stop = int(self._start * self._num_inference_steps), int(self._stop * self._num_inference_steps)
        return start <= self._step < stop
