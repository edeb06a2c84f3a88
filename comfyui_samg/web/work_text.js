// Shows, on a guidance node (SAMG (video), Guidance method), how much of CFG's denoiser work its
// run did: "unconditional passes: 10 of 25 computed (0.70x CFG's work)". The server sends the text
// after each guided evaluation (the "samg-video.work" message, comfyui_samg/nodes.py `show_work`).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

export function showWork(node, text) {
  let widget = node.widgets?.find((w) => w.name === "work");
  if (!widget) {
    widget = ComfyWidgets.STRING(node, "work", ["STRING", { multiline: false }], app).widget;
    widget.serialize = false;  // shown, not a setting: the workflow's widget values stay as they were
    if (widget.inputEl) widget.inputEl.readOnly = true;
  }
  widget.value = text;
  node.setSize([Math.max(node.size[0], 380), node.computeSize()[1]]);
  app.graph.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "samg-video.WorkText",
  setup() {
    api.addEventListener("samg-video.work", ({ detail }) => {
      const node = app.graph.getNodeById(Number(detail?.node)) ?? app.graph.getNodeById(detail?.node);
      if (node && typeof detail.text === "string") showWork(node, detail.text);
    });
  },
});
