// Shows a metrics node's numbers on the node itself after a run (Temporal metrics, Compare clips):
// the node's "shown" text, one line per metric with its meaning (made on the server from the metric
// catalogue, comfyui_samg/nodes.py `metric_lines`), in a box tall enough for every line.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const METRIC_NODES = new Set(["SAMGTemporalMetrics", "SAMGCompareClips"]);
const LINE_HEIGHT = 17;

export function showMetrics(node, text) {
  let widget = node.widgets?.find((w) => w.name === "metrics");
  if (!widget) {
    widget = ComfyWidgets.STRING(node, "metrics", ["STRING", { multiline: true }], app).widget;
    widget.serialize = false;  // shown, not a setting: the workflow's widget values stay as they were
    if (widget.inputEl) {
      widget.inputEl.readOnly = true;
      widget.inputEl.style.whiteSpace = "pre";
    }
  }
  widget.value = text;
  const lines = text.split("\n").length;
  const height = lines * LINE_HEIGHT + 12;
  if (widget.inputEl) widget.inputEl.rows = lines;
  widget.options = { ...(widget.options ?? {}), getMinHeight: () => height, getHeight: () => height };
  widget.computeSize = (width) => [width, height];
  const longest = Math.max(...text.split("\n").map((l) => l.length));
  node.setSize([Math.max(node.size[0], Math.min(600, 40 + longest * 6.2)), node.computeSize()[1]]);
  app.graph.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "samg-video.MetricsText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!METRIC_NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.shown?.[0];
      if (typeof text === "string") showMetrics(this, text);
    };
  },
});
