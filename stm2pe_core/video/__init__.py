"""Video output: streaming, atomic mp4 writing with the music muxed in, and reading helpers."""

from .reader import VideoInfo, iter_frames, save_frames_png, video_info
from .writer import AudioTrack, VideoWriter, as_audio_track, as_fraction, to_uint8_rgb, write_video

__all__ = [
    "AudioTrack",
    "VideoInfo",
    "VideoWriter",
    "as_audio_track",
    "as_fraction",
    "iter_frames",
    "save_frames_png",
    "to_uint8_rgb",
    "video_info",
    "write_video",
]
