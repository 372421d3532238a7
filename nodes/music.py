"""Music nodes: Load Music, Jukebox Encode, Clear Music Feature Cache (classic V1 API)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..stm2pe_core.audio.cache import FeatureCache
from ..stm2pe_core.audio.decode import AUDIO_EXTS
from ..stm2pe_core.audio.features import MODES, encode_music
from ..stm2pe_core.audio.jukebox import LAYER, MAX_SECONDS, RESAMPLE_METHODS
from ..stm2pe_core.audio.load import DEMO_SONG, load_music, music_from_waveform
from ..stm2pe_core.errors import InputError
from ..stm2pe_core.types import DEFAULT_FPS
from .common import CATEGORY, frames_to_image, input_directory, models_root, node_progress

MUSIC = "STM2PE_MUSIC"
MUSIC_FEATURES = "STM2PE_MUSIC_FEATURES"
NO_FILE = "(none - use audio_input)"
# listed in the `audio` combo so the example workflows run with nothing copied into ComfyUI/input
BUNDLED_SONG = "demo_song.ogg (bundled)"
CAT = f"{CATEGORY}/music"


def audio_files() -> list[str]:
    """Audio/video files at the top of ComfyUI's input folder (as core Load Audio lists them)."""
    root = input_directory()
    if not root.is_dir():
        return []
    return sorted(f.name for f in root.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_EXTS)


def resolve_audio_path(name: str) -> Path:
    """Input-folder name (or 'name [input]' annotation, or an absolute path, or the bundled song) -> path."""
    if name == BUNDLED_SONG:
        return DEMO_SONG
    try:
        import folder_paths

        return Path(folder_paths.get_annotated_filepath(name))
    except ImportError:
        p = Path(name)
        return p if p.is_absolute() else input_directory() / name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def audio_to_comfy(waveform, sample_rate: int) -> dict:
    """(C, T) numpy -> ComfyUI AUDIO {'waveform': [1, C, T] float32, 'sample_rate': int}."""
    import torch

    return {"waveform": torch.from_numpy(waveform.copy()).float().unsqueeze(0), "sample_rate": int(sample_rate)}


class STM2PELoadMusic:
    """Decode a song (or take ComfyUI's AUDIO), cut the excerpt and find beats, downbeats, sections."""

    DESCRIPTION = "Load a music file from ComfyUI's input folder (or an AUDIO input) and analyse its rhythm at the video frame rate."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio": (
                    audio_files() + [BUNDLED_SONG, NO_FILE],
                    {
                        "audio_upload": True,
                        "tooltip": f"music file in ComfyUI's input folder (wav, flac, ogg, mp3, m4a, ...); '{BUNDLED_SONG}' is the pack's 20-s demo song",
                    },
                ),
                "start_seconds": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 36000.0,
                        "step": 0.1,
                        "tooltip": "skip this many seconds at the start",
                    },
                ),
                "duration_seconds": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 36000.0,
                        "step": 0.1,
                        "tooltip": "seconds to use; 0 = to the end",
                    },
                ),
                "fps": (
                    "FLOAT",
                    {
                        "default": DEFAULT_FPS,
                        "min": 1.0,
                        "max": 120.0,
                        "step": 1.0,
                        "tooltip": "video frame rate the analysis is aligned to (STM2PE-Diff: 15)",
                    },
                ),
            },
            "optional": {
                "audio_input": ("AUDIO", {"tooltip": "ComfyUI AUDIO (e.g. from Load Audio); overrides the file"}),
                "bpm_hint": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 300.0,
                        "step": 1.0,
                        "tooltip": "expected tempo for the beat tracker; 0 = automatic",
                    },
                ),
            },
        }

    RETURN_TYPES = ("AUDIO", MUSIC, "INT", "FLOAT")
    RETURN_NAMES = ("audio", "music", "frame_count", "tempo_bpm")
    OUTPUT_TOOLTIPS = (
        "the excerpt as ComfyUI AUDIO (for the video file)",
        "mono analysis waveform + beats, tempo, onset envelope, downbeats, sections",
        "N = video frames at fps",
        "tempo in BPM",
    )
    FUNCTION = "load"
    CATEGORY = CAT

    @classmethod
    def IS_CHANGED(cls, audio, **kwargs):
        if audio == NO_FILE:
            return ""
        path = resolve_audio_path(audio)
        return file_sha256(path) if path.is_file() else float("nan")

    @classmethod
    def VALIDATE_INPUTS(cls, audio):
        if audio == NO_FILE:
            return True  # the AUDIO input must be connected; checked when the node runs
        path = resolve_audio_path(audio)
        if audio == BUNDLED_SONG and not path.is_file():
            return f"Load Music: the bundled demo song {path} is missing from the pack. Reinstall the pack or choose another file."
        if not path.is_file():
            return f"Load Music: audio file '{audio}' not found in ComfyUI's input folder ({input_directory()}). Upload it with the node's upload button or copy it there."
        return True

    def load(self, audio, start_seconds=0.0, duration_seconds=0.0, fps=DEFAULT_FPS, audio_input=None, bpm_hint=0.0):
        if audio_input is not None:
            wave = audio_input["waveform"]
            wave = wave.detach().cpu().float().numpy() if hasattr(wave, "detach") else wave
            loaded = music_from_waveform(
                wave, int(audio_input["sample_rate"]), start_seconds, duration_seconds, fps, bpm_hint
            )
        elif audio == NO_FILE:
            raise InputError(
                "Load Music: no audio file chosen and nothing connected to audio_input. Upload/choose a file, or connect an AUDIO output"
            )
        else:
            loaded = load_music(
                resolve_audio_path(audio), start_seconds, duration_seconds, fps, bpm_hint, keep_audio=True
            )
        music = loaded.music
        return (audio_to_comfy(loaded.audio, loaded.audio_rate), music, music.n_frames, float(music.tempo))


class STM2PEJukeboxEncode:
    """MUSIC -> per-frame features (librosa baseline or Jukebox layer 66), cached on disk."""

    DESCRIPTION = "Per-video-frame music features: 'librosa' (EDGE's 35-d baseline, offline default) or 'jukebox' (jukemirlib, 5B prior layer 66, 4800-d; optional install)."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "music": (MUSIC,),
                "mode": (
                    list(MODES),
                    {
                        "default": "librosa",
                        "tooltip": "librosa: 35-d, runs anywhere; jukebox: 4800-d, needs jukemirlib + weights + a 13 GB GPU",
                    },
                ),
                "beat_channel": ("BOOLEAN", {"default": False, "tooltip": "append a one-hot beat column"}),
                "use_cache": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "read/write the feature cache ($STM2PE_CACHE or ~/.cache/stm2pe)"},
                ),
            },
            "optional": {
                "jukebox_window_seconds": (
                    "FLOAT",
                    {
                        "default": 5.0,
                        "min": 0.5,
                        "max": round(MAX_SECONDS - 0.25, 1),
                        "step": 0.5,
                        "tooltip": "jukebox: seconds encoded per call (EDGE: 5)",
                    },
                ),
                "jukebox_overlap_seconds": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.5,
                        "tooltip": "jukebox: overlap between windows (cross-faded)",
                    },
                ),
                "jukebox_resample": (
                    list(RESAMPLE_METHODS),
                    {
                        "default": "box",
                        "tooltip": "box: mean of the tokens in each frame; fft: jukemirlib's own downsampling (EDGE)",
                    },
                ),
                "jukebox_device": (["auto", "cuda", "cpu"], {"default": "auto"}),
            },
        }

    RETURN_TYPES = (MUSIC_FEATURES,)
    RETURN_NAMES = ("music_features",)
    FUNCTION = "encode"
    CATEGORY = CAT

    def encode(
        self,
        music,
        mode="librosa",
        beat_channel=False,
        use_cache=True,
        jukebox_window_seconds=5.0,
        jukebox_overlap_seconds=1.0,
        jukebox_resample="box",
        jukebox_device="auto",
    ):
        opts = {}
        if mode == "jukebox":
            root = models_root()
            opts = {
                "window_seconds": jukebox_window_seconds,
                "overlap_seconds": jukebox_overlap_seconds,
                "resample": jukebox_resample,
                "device": jukebox_device,
                "models_root": str(root) if root else None,
                "layer": LAYER,
            }
        feats = encode_music(music, mode, beat_channel, use_cache=use_cache, progress=node_progress(), **opts)
        return (feats,)


class STM2PEClearFeatureCache:
    """Delete cached music features (or only report the cache size)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clear": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "off: only report; on: delete every cached feature file"},
                )
            }
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("report",)
    FUNCTION = "run"
    CATEGORY = CAT
    OUTPUT_NODE = True

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")  # always run: the cache changes outside the graph

    def run(self, clear=False):
        cache = FeatureCache()
        text = f"removed {cache.clear()} cached feature file(s) from {cache.folder}" if clear else str(cache.info())
        return {"ui": {"text": [text]}, "result": (text,)}


class STM2PEPreviewMusicFeatures:
    """Show MUSIC_FEATURES as an image (time left to right, beats/downbeats/sections marked)."""

    DESCRIPTION = "Preview per-frame music features (and the beats, downbeats and sections of the MUSIC) as an image and a text summary."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"music_features": (MUSIC_FEATURES,)},
            "optional": {"music": (MUSIC, {"tooltip": "adds beat ticks, downbeats and section lines"})},
        }

    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("image", "summary")
    FUNCTION = "preview"
    CATEGORY = CAT
    OUTPUT_NODE = True

    def preview(self, music_features, music=None):
        from ..stm2pe_core.audio.preview import feature_image, summary

        image = frames_to_image(feature_image(music_features, music))
        text = summary(music_features, music)
        return {"ui": {"images": save_preview_png(image), "text": [text]}, "result": (image, text)}


def save_preview_png(image) -> list[dict]:
    """Write the preview into ComfyUI's temp folder (as PreviewImage does); nothing outside ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return []
    import uuid

    import cv2

    name = f"stm2pe_features_{uuid.uuid4().hex[:12]}.png"
    arr = (image[0].numpy() * 255).round().astype("uint8")[:, :, ::-1]
    cv2.imwrite(os.path.join(folder_paths.get_temp_directory(), name), arr)
    return [{"filename": name, "subfolder": "", "type": "temp"}]


NODE_CLASS_MAPPINGS = {
    "STM2PELoadMusic": STM2PELoadMusic,
    "STM2PEJukeboxEncode": STM2PEJukeboxEncode,
    "STM2PEClearFeatureCache": STM2PEClearFeatureCache,
    "STM2PEPreviewMusicFeatures": STM2PEPreviewMusicFeatures,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "STM2PELoadMusic": "Load Music (STM2PE)",
    "STM2PEJukeboxEncode": "Jukebox Encode (STM2PE)",
    "STM2PEClearFeatureCache": "Clear Music Feature Cache (STM2PE)",
    "STM2PEPreviewMusicFeatures": "Preview Music Features (STM2PE)",
}
