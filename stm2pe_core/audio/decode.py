"""Audio decoding without torchaudio: soundfile (libsndfile) first, PyAV (FFmpeg) for the rest.

Files are read in blocks and each block is mixed to mono and resampled on the fly, so a long
song never exists in memory at its native rate unless the caller asks for it (ComfyUI's AUDIO
output). The sha256 of the decoded native-rate samples is computed on the way: it identifies
the audio content independently of the file name and container.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, bad_file

# What the Load Music node lists and accepts. libsndfile reads the first group; PyAV the rest
# (and anything libsndfile refuses).
SOUNDFILE_EXTS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus")
PYAV_EXTS = (".m4a", ".aac", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".wma", ".mka")
AUDIO_EXTS = SOUNDFILE_EXTS + PYAV_EXTS

MIN_SECONDS = 1.0  # shorter excerpts cannot give a tempo or a single M2PEnc window
SILENCE_PEAK = 1e-4  # -80 dBFS: below this the excerpt is treated as silent
BLOCK = 1 << 16  # frames per read block

CONVERT_FIX = "Convert it to WAV/FLAC/MP3 (e.g. `ffmpeg -i in.xyz out.wav`) or choose another file"


@dataclass
class Decoded:
    """A decoded excerpt: mono at ``sample_rate`` (+ native-rate channels when requested)."""

    mono: np.ndarray  # (T,) float32 at sample_rate
    sample_rate: int
    native: np.ndarray | None  # (C, T_native) float32 at native_rate, or None
    native_rate: int
    channels: int
    sha256: str  # of the native-rate float32 samples of the excerpt
    file_seconds: float  # length of the whole file (or input), seconds
    peak: float  # max |x| of the native excerpt


class _Sink:
    """Collects decoded blocks: hash, peak, optional native copy, streaming mono resampler."""

    def __init__(
        self, native_rate: int, channels: int, target_rate: int | None, keep_native: bool, expected: int = 0
    ) -> None:
        import soxr

        self.native_rate = native_rate
        self.channels = channels
        self.target_rate = target_rate or native_rate
        self.hash = hashlib.sha256()
        self.hash.update(f"{native_rate}:{channels}".encode())
        self.peak = 0.0
        # native copy in one preallocated buffer (grown if the length estimate was short), so a
        # long song is not held twice while blocks are joined
        self.native_buf: np.ndarray | None = np.empty((channels, max(expected, 1)), np.float32) if keep_native else None
        self.mono_blocks: list[np.ndarray] = []
        self.n = 0
        self.finite = True
        self.resampler = None
        if self.target_rate != native_rate:
            self.resampler = soxr.ResampleStream(native_rate, self.target_rate, 1, dtype="float32", quality="HQ")

    def add(self, block: np.ndarray, last: bool = False) -> None:
        """``block`` is (t, C) float32."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.size:
            if not np.isfinite(block).all():
                self.finite = False
                block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
            self.hash.update(block.tobytes())
            self.peak = max(self.peak, float(np.abs(block).max()))
            if self.native_buf is not None:
                need = self.n + block.shape[0]
                if need > self.native_buf.shape[1]:
                    grown = np.empty((self.channels, max(need, int(self.native_buf.shape[1] * 1.5))), np.float32)
                    grown[:, : self.n] = self.native_buf[:, : self.n]
                    self.native_buf = grown
                self.native_buf[:, self.n : need] = block.T
            self.n += block.shape[0]
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        if self.resampler is not None:
            mono = self.resampler.resample_chunk(mono, last=last)
        if mono.size:
            self.mono_blocks.append(np.asarray(mono, dtype=np.float32))

    def finish(self, file_seconds: float) -> Decoded:
        if self.resampler is not None:
            self.add(np.zeros((0, self.channels), np.float32), last=True)
        mono = np.concatenate(self.mono_blocks) if self.mono_blocks else np.zeros(0, np.float32)
        native = None
        if self.native_buf is not None:
            native = self.native_buf[:, : self.n]
            if self.native_buf.shape[1] > self.n + self.n // 20 + 4096:  # estimate far too long: trim the slack
                native = native.copy()
            self.native_buf = None
        return Decoded(
            mono=mono,
            sample_rate=self.target_rate,
            native=native,
            native_rate=self.native_rate,
            channels=self.channels,
            sha256=self.hash.hexdigest(),
            file_seconds=file_seconds,
            peak=self.peak,
        )


def check_audio_path(path: str | Path) -> Path:
    """Reject missing, empty, directory and unsupported files before any decoder sees them."""
    p = Path(path)
    if not p.exists():
        raise bad_file(
            p,
            f"file not found ({p})",
            "Check the path, or put the file in ComfyUI's input folder / upload it in the Load Music node",
        )
    if p.is_dir():
        raise bad_file(p, "is a folder, not an audio file", "Choose an audio file (wav, flac, ogg, mp3, m4a)")
    if p.stat().st_size == 0:
        raise bad_file(p, "is empty (0 bytes)", "The upload or export did not finish; export the audio again")
    if p.suffix.lower() not in AUDIO_EXTS:
        raise bad_file(
            p,
            f"unsupported format '{p.suffix or '(no extension)'}'; supported: {', '.join(e[1:] for e in AUDIO_EXTS)}",
            CONVERT_FIX,
        )
    return p


def _sf_blocks(p: Path, offset: float, duration: float | None) -> tuple[int, int, float, Iterator[np.ndarray]]:
    import soundfile as sf

    f = sf.SoundFile(str(p))
    sr, ch, total = f.samplerate, f.channels, f.frames
    file_seconds = total / float(sr) if total > 0 else 0.0
    start = int(round(offset * sr))
    want = None if duration is None else int(round(duration * sr))

    def gen() -> Iterator[np.ndarray]:
        try:
            if start >= total:
                return
            if start:
                f.seek(start)
            left = want
            while left is None or left > 0:
                n = BLOCK if left is None else min(BLOCK, left)
                data = f.read(n, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                yield data
                if left is not None:
                    left -= data.shape[0]
        finally:
            f.close()

    return sr, ch, file_seconds, gen()


def _av_blocks(p: Path, offset: float, duration: float | None) -> tuple[int, int, float, Iterator[np.ndarray]]:
    import av

    container = av.open(str(p))
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        container.close()
        raise bad_file(p, "has no audio stream", "Choose a file that contains sound")
    stream = streams[0]
    sr = int(stream.rate or stream.codec_context.sample_rate)
    ch = int(stream.codec_context.channels or 1)
    file_seconds = 0.0
    if stream.duration is not None and stream.time_base is not None:
        file_seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        file_seconds = container.duration / 1e6
    start = int(round(offset * sr))
    want = None if duration is None else int(round(duration * sr))

    def gen() -> Iterator[np.ndarray]:
        # decode from the start and drop samples before the offset: exact and container-agnostic
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name if stream.layout else None, rate=sr)
        seen: int | None = None
        left = want
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if seen is None:
                        # encoder priming that the container marks with negative timestamps
                        # (e.g. AAC in mp4 with an edit list) lies before t = 0: drop it
                        pts = frame.pts if frame.pts is not None and frame.time_base is not None else 0
                        seen = min(0, int(round(float(pts * frame.time_base) * sr))) if pts else 0
                    for rf in resampler.resample(frame):
                        arr = rf.to_ndarray().astype(np.float32, copy=False)  # (C, n)
                        n = arr.shape[1]
                        lo = max(0, start - seen)
                        seen += n
                        if lo >= n:
                            continue
                        block = arr[:, lo:].T
                        if left is not None:
                            block = block[:left]
                            left -= block.shape[0]
                        if block.shape[0]:
                            yield block
                        if left is not None and left <= 0:
                            return
        finally:
            container.close()

    return sr, ch, file_seconds, gen()


def decode_file(
    path: str | Path,
    offset: float = 0.0,
    duration: float | None = None,
    sample_rate: int | None = None,
    keep_native: bool = False,
) -> Decoded:
    """Decode ``[offset, offset + duration)`` of ``path``; mono resampled to ``sample_rate``.

    Raises :class:`InputError` naming the file for every unusable input.
    """
    p = check_audio_path(path)
    _check_range(p, offset, duration)
    use_sf = p.suffix.lower() in SOUNDFILE_EXTS
    errors: list[str] = []
    for backend in (_sf_blocks, _av_blocks) if use_sf else (_av_blocks,):
        try:
            sr, ch, file_seconds, blocks = backend(p, offset, duration)
            expected = (
                max(0.0, file_seconds - offset) if duration is None else min(duration, max(0.0, file_seconds - offset))
            )
            sink = _Sink(sr, ch, sample_rate, keep_native, int(expected * sr * 1.01) + 4096)
            for block in blocks:
                sink.add(block)
            dec = sink.finish(file_seconds)
            if not sink.finite:
                raise bad_file(p, "contains invalid samples (NaN/inf)", CONVERT_FIX)
            break
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - decoder errors have many types; report them all
            # the FFmpeg message (last backend) is the informative one; drop paths from it
            errors = [str(exc).replace(f"'{p}'", p.name).replace(str(p), p.name).strip().rstrip(".")]
    else:
        raise bad_file(
            p, f"could not be decoded - the file is corrupt, truncated or not audio ({'; '.join(errors)})", CONVERT_FIX
        )
    return _check_decoded(p, dec, offset)


def _check_range(p: Path | str, offset: float, duration: float | None) -> None:
    if not np.isfinite(offset) or offset < 0:
        raise bad_file(p, f"start offset {offset} s is negative", "Use a start offset of 0 s or more")
    if duration is not None and (not np.isfinite(duration) or duration <= 0):
        raise bad_file(
            p, f"duration {duration} s is not positive", "Use a positive duration, or 0 / None for 'to the end'"
        )


def _check_decoded(p: Path | str, dec: Decoded, offset: float) -> Decoded:
    got = len(dec.mono) / float(dec.sample_rate)
    if dec.file_seconds <= 0 and offset == 0 and got == 0:
        raise bad_file(
            p, "contains no audio samples (zero length)", "Export the audio again; the file has a header but no sound"
        )
    if got == 0 and offset > 0:
        length = dec.file_seconds
        raise bad_file(
            p,
            f"start offset {offset:.2f} s is past the end of the audio ({length:.2f} s long)",
            f"Use a start offset below {max(length - MIN_SECONDS, 0):.2f} s",
        )
    if got == 0:
        raise bad_file(
            p, "contains no audio samples (zero length)", "Export the audio again; the file has a header but no sound"
        )
    if got < MIN_SECONDS:
        where = f" after the start offset {offset:.2f} s" if offset > 0 else ""
        raise bad_file(
            p,
            f"too short: {got:.2f} s of audio{where}; at least {MIN_SECONDS:.1f} s is needed",
            "Use a longer piece of music or an earlier start offset",
        )
    if dec.peak < SILENCE_PEAK:
        db = 20 * np.log10(max(dec.peak, 1e-12))
        raise bad_file(
            p,
            f"is silent (peak level {db:.0f} dBFS over the chosen {got:.2f} s)",
            "Check the file and the start offset; the music needs audible sound to dance to",
        )
    return dec


def decode_array(
    waveform: np.ndarray,
    native_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
    sample_rate: int | None = None,
    keep_native: bool = False,
    name: str = "AUDIO input",
) -> Decoded:
    """The same as :func:`decode_file` for an in-memory (C, T) or (T,) waveform (ComfyUI AUDIO)."""
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise InputError(
            f"{name}: waveform must be (channels, samples), got shape {x.shape}. Connect a ComfyUI AUDIO output (Load Audio)"
        )
    if native_rate <= 0:
        raise InputError(f"{name}: invalid sample rate {native_rate}. Connect a ComfyUI AUDIO output (Load Audio)")
    _check_range(name, offset, duration)
    total = x.shape[1]
    start = int(round(offset * native_rate))
    stop = total if duration is None else min(total, start + int(round(duration * native_rate)))
    sink = _Sink(native_rate, x.shape[0], sample_rate, keep_native, max(0, stop - start))
    for s in range(start, stop, BLOCK * 4):
        sink.add(x[:, s : min(stop, s + BLOCK * 4)].T)
    dec = sink.finish(total / float(native_rate))
    if not sink.finite:
        raise InputError(f"{name}: contains invalid samples (NaN/inf). Check the node that produced the audio")
    if total == 0:
        raise InputError(f"{name}: contains no audio samples (zero length). Connect audio that has sound")
    return _check_decoded(name, dec, offset)
