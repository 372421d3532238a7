"""Music front end: decoding (soundfile/PyAV), rhythm analysis, per-frame features, cache.

``load_music`` / ``music_from_waveform`` -> :class:`~stm2pe_core.types.Music`;
``encode_music`` -> :class:`~stm2pe_core.types.MusicFeatures` (librosa or Jukebox).
"""

from .cache import FeatureCache, cache_root
from .decode import AUDIO_EXTS
from .features import LIBROSA_COLUMNS, MODES, encode_music, librosa_features
from .load import DEMO_SONG, LoadedMusic, load_music, music_audio, music_from_waveform

__all__ = [
    "AUDIO_EXTS",
    "DEMO_SONG",
    "FeatureCache",
    "LIBROSA_COLUMNS",
    "LoadedMusic",
    "MODES",
    "cache_root",
    "encode_music",
    "librosa_features",
    "load_music",
    "music_audio",
    "music_from_waveform",
]
