// Shows the Temporal metrics node's numbers on the node itself after a run: one line per metric,
// with its direction (the node's "ui" text is its JSON). Core's Preview Any shows the same JSON.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const DIRECTION = {
  flicker: "1 = steady, higher is better",
  flicker_compensated: "1 = steady, higher is better",
  warp_error: "lower is better",
  lpips_temporal: "lower is better",
  motion: "pixels per frame",
  saturation: "mean HSV saturation",
};

function lines(json) {
  const result = JSON.parse(json);
  return Object.entries(result).map(([key, value]) => {
    const shown = typeof value === "number" ? value.toPrecision(4) : String(value);
    return DIRECTION[key] ? `${key}: ${shown}  (${DIRECTION[key]})` : `${key}: ${shown}`;
  }).join("\n");
}

app.registerExtension({
  name: "samg-video.TemporalMetricsText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "SAMGTemporalMetrics") return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const json = message?.text?.[0];
      if (json === undefined) return;
      let widget = this.widgets?.find((w) => w.name === "metrics");
      if (!widget) {
        widget = ComfyWidgets.STRING(this, "metrics", ["STRING", { multiline: true }], app).widget;
        widget.inputEl.readOnly = true;
        widget.serialize = false;  // shown, not a setting: the workflow's widget values stay as they were
      }
      widget.value = lines(json);
      this.setSize([Math.max(this.size[0], 360), this.computeSize()[1]]);
      app.graph.setDirtyCanvas(true, true);
    };
  },
});
