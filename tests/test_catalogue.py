"""The metric catalogue against what the metrics, the scorer and the field diagnostics write, and
the places that read it (command line, report, ComfyUI node)."""

import numpy as np
import pytest

from samg_video import catalogue, metrics


def moving(frames: int = 5, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = (rng.random((size, size * 2, 3)) * 255).astype(np.uint8)
    return np.stack([base[:, 2 * t:2 * t + size] for t in range(frames)])


def test_every_default_metric_writes_its_catalogue_columns_and_nothing_shown_is_unlisted():
    video = moving()
    out = metrics.compute(video, reference=video)  # the default set, and tLP from the reference
    for name in catalogue.DEFAULT:
        written = [c.key for c in catalogue.COLUMNS if c.metric == name]
        assert name in written, f"{name}: the metric's own column is missing from the catalogue"
        assert all(out.get(k) is not None for k in written), (name, written)
    numeric = {k for k, v in out.items() if isinstance(v, float)}
    assert numeric <= set(catalogue.MEASURED), numeric - set(catalogue.MEASURED)


def test_the_field_diagnostics_and_the_bundled_scorer_write_catalogue_columns():
    from samg_video.demo.evaluate import score_row
    from samg_video.demo import world
    from samg_video.metrics.field import field_diagnostics

    field = np.linspace(1, 3, 4 * 8 * 8).reshape(4, 8, 8)
    masks = np.zeros((4, 32, 32), bool)
    masks[:, 8:16, 8:16] = True
    diag = field_diagnostics([field[None, None]], moving(4, 32), masks, {"object_1": masks})
    assert set(diag) <= set(catalogue.BY_KEY), set(diag) - set(catalogue.BY_KEY)
    assert {c.key for c in catalogue.in_table("field")} - set(diag) == {"field_object_2"}  # a second object's region
    scene = world.random_scene(np.random.default_rng(0), two_object_prob=0.0)
    row = score_row(world.render(scene), world.prompt_of(scene), out_of_range=0.1)
    shown = {k for k in row if k in catalogue.BY_KEY}
    assert {"prompt_correct", "prompt_color", "prompt_shape", "prompt_motion", "out_of_range"} <= shown


def test_directions_units_and_tables_are_consistent():
    keys = [c.key for c in catalogue.COLUMNS]
    assert len(keys) == len(set(keys)) and len(catalogue.NAMES) == len(set(catalogue.NAMES))
    assert all(c.better in (None, "higher", "lower") for c in catalogue.COLUMNS)
    assert {c.table for c in catalogue.COLUMNS} <= {"", *(t for _, t in catalogue.TABLES)}
    assert all(c.metric in catalogue.BY_NAME for c in catalogue.COLUMNS if c.metric)
    assert all(len(c.cli) <= 12 for c in catalogue.COLUMNS)
    assert set(metrics.available()) == set(metrics.METRICS) | set(catalogue.NEEDS_MODEL)
    assert catalogue.HIGHER.isdisjoint(catalogue.LOWER)
    assert {"flicker", "clip_score", "prompt_correct"} <= catalogue.HIGHER
    assert {"warp_error", "lpips_temporal", "denoiser_calls"} <= catalogue.LOWER


def test_the_report_and_the_command_line_read_the_catalogue(capsys):
    from samg_video.cli import main
    from samg_video.report.tables import best_rows, paired_header, table_rows

    table = {"a": {"n": 2, "failed": 0, "warp_error": 0.2, "flicker": 0.9},
             "b": {"n": 2, "failed": 0, "warp_error": 0.1, "flicker": 0.8}}
    t = table_rows(table, [catalogue.column("warp_error"), catalogue.column("flicker")])
    assert t.head[3:] == ["warp error", "flicker"]
    assert t.best == {3: {1}, 4: {0}}  # lower warp error, higher flicker
    assert best_rows([1.0, 2.0], "motion") == set()  # no direction, no best
    assert paired_header("clipped_high") == "clipped (pts)"
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert " ".join(catalogue.NAMES) in " ".join(capsys.readouterr().out.split())


def test_the_comfyui_metrics_node_outputs_catalogue_metrics():
    pytest.importorskip("torch")
    from comfyui_samg.nodes import TemporalMetrics

    names = TemporalMetrics.RETURN_NAMES[1:]
    assert all(catalogue.column(k).metric for k in names)
    assert all("better" in tip or k == "motion" for k, tip in zip(names, TemporalMetrics.OUTPUT_TOOLTIPS[1:]))
