// Gives STM2PE nodes whose `audio` combo has `audio_upload` the same player + upload button as core
// Load Audio. The frontend's upload widget looks for an `audioUI` player widget, which it only
// creates for core audio nodes; without one the node fails to build on the canvas.
import { app } from "../../../scripts/app.js";

app.registerExtension({
  name: "STM2PE.AudioUpload",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const required = nodeData?.input?.required;
    if (!required || !String(nodeData.name || "").startsWith("STM2PE")) return;
    if (required.audio?.[1]?.audio_upload !== true || required.audioUI) return;
    // the player must exist before the upload widget: re-add `upload` (if already added) after it
    const upload = required.upload;
    delete required.upload;
    required.audioUI = ["AUDIO_UI", {}];
    if (upload) required.upload = upload;
  },
});
