// Gives STM2PE nodes whose `audio` combo has `audio_upload` the same player + upload button as core
// Load Audio. The frontend's upload widget looks for an `audioUI` player widget, which it only
// creates for core audio nodes; without one the node fails to build on the canvas.
//
// The player loads the chosen file from ComfyUI's input folder (/view). The pack's bundled demo
// song is not there, so for that choice the player is pointed at the pack's own route
// (/stm2pe/bundled/<file>, nodes/routes.py).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const BUNDLED = { "demo_song.ogg (bundled)": "demo_song.ogg" };

function bundledUrl(src) {
  if (!src) return null;
  try {
    const name = new URL(src, window.location.href).searchParams.get("filename");
    const file = BUNDLED[name];
    return file ? api.apiURL(`/stm2pe/bundled/${encodeURIComponent(file)}`) : null;
  } catch {
    return null;
  }
}

function redirectBundled(audioEl) {
  // every src the frontend sets (combo change, workflow load, upload) passes through here
  const desc = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "src");
  if (!desc || audioEl.__stm2peBundled) return;
  Object.defineProperty(audioEl, "src", {
    configurable: true,
    get() {
      return desc.get.call(this);
    },
    set(value) {
      desc.set.call(this, bundledUrl(value) ?? value);
    },
  });
  audioEl.__stm2peBundled = true;
  const current = desc.get.call(audioEl);
  if (current) audioEl.src = current; // the value chosen before this hook existed
}

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
  async nodeCreated(node) {
    if (!String(node?.comfyClass || "").startsWith("STM2PE")) return;
    const player = node.widgets?.find((w) => w.name === "audioUI");
    if (player?.element instanceof HTMLMediaElement) redirectBundled(player.element);
  },
});
