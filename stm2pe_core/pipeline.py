"""The whole chain as plain function calls: music (+ photo) -> dance video with the music.

``dance(DanceRequest)`` is what ``python -m stm2pe_core dance`` runs:

1. Load Music (decode the excerpt, beats) -> per-frame music features (librosa, + beat channel
   when the M2PEnc wants one);
2. M2PEnc (the bundled default unless ``m2penc`` names other weights) -> SMPL ``Motion``;
3. either the **preview** (embedded default; nothing downloaded): the motion rendered as
   guidance maps / skeleton, streamed into an mp4 with the music; or the **photoreal** video
   when a photo is given and every model file is present: per 5-second segment, guidance ->
   denoise (continuing the previous segment) -> blend -> decode -> mp4, holding the latents of
   the current and previous segment only (:mod:`.diffusion.continuation`,
   :mod:`.diffusion.stitch`).

When the photoreal video was asked for (or could be), the result lists exactly which files
are missing and where they go.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .diffusion.continuation import DEFAULT_OFFSET_NOISE, DEFAULT_PRIOR_SIGNAL
from .diffusion.segments import DEFAULT_OVERLAP, DEFAULT_SEGMENT_FRAMES
from .errors import InputError
from .progress import Progress, tqdm_progress
from .types import DEFAULT_FPS
from .video.preview import PREVIEW_STYLES
from .weights.paths import MODEL_FOLDERS, ModelTree

log = logging.getLogger("STM2PE")

GUIDANCE_CHOICES = ("m2penc", "PDNS", "DNS", "P")
# CHAMP guidance encoder of each map (file guidance_encoder_<name>.pth in models/champ)
ABLATION_MAPS = {
    "PDNS": ("dwpose", "depth", "normal", "semantic_map"),
    "DNS": ("depth", "normal", "semantic_map"),
    "P": ("dwpose",),
}


@dataclass
class DanceRequest:
    """Everything ``dance`` needs; defaults are the CLI's."""

    music: Path
    out: Path = Path("dance.mp4")
    image: Path | None = None
    models: Path | None = None
    guidance: str = "m2penc"
    seconds: float | None = None  # excerpt length (None = to the end)
    offset: float = 0.0
    seed: int = 42
    steps: int = 20
    cfg: float = 3.5
    size: int = 512
    fps: float = DEFAULT_FPS
    m2penc: str | None = None  # weights file; None = bundled default
    preview_style: str = "auto"
    preview_size: int | None = None  # None = ``size``
    segment_frames: int = DEFAULT_SEGMENT_FRAMES
    overlap: int = DEFAULT_OVERLAP
    prior_signal: float = DEFAULT_PRIOR_SIGNAL
    offset_noise: float = DEFAULT_OFFSET_NOISE
    tie_until: float = 0.8
    device: str = "auto"
    compile: bool = False  # torch.compile + Triton temporal attention (CUDA; the first segment compiles)
    context: int = 24  # motion-module window (frames) inside a segment
    context_overlap: int = 4

    def __post_init__(self) -> None:
        self.music = Path(self.music)
        self.out = Path(self.out)
        self.image = None if self.image is None else Path(self.image)
        self.models = None if self.models is None else Path(self.models)
        if self.guidance not in GUIDANCE_CHOICES:
            raise InputError(f"--guidance {self.guidance!r} is not one of {', '.join(GUIDANCE_CHOICES)}")
        if self.out.suffix.lower() != ".mp4":
            raise InputError(f"--out {self.out}: the video is written as mp4; give a file name ending in .mp4")
        if self.seconds is not None and self.seconds <= 0:
            raise InputError(f"--seconds must be > 0, got {self.seconds}")
        if self.offset < 0:
            raise InputError(f"--offset must be >= 0 seconds, got {self.offset}")
        if not 64 <= self.size <= 2048 or self.size % 8:
            raise InputError(f"--size must be a multiple of 8 between 64 and 2048, got {self.size}")
        if self.preview_style not in PREVIEW_STYLES:
            raise InputError(f"--preview {self.preview_style!r} is not one of {', '.join(PREVIEW_STYLES)}")
        if self.steps < 1 or self.cfg < 0:
            raise InputError(f"--steps must be >= 1 and --cfg >= 0, got {self.steps}, {self.cfg}")


@dataclass
class DanceResult:
    path: Path
    mode: str  # "preview" | "photoreal"
    n_frames: int
    fps: float
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # files that would enable the photoreal video
    notes: list[str] = field(default_factory=list)
    photoreal_guidance: str = ""  # the --guidance that ``missing`` is for


# ---- which files the photoreal video needs ------------------------------------------------------


def photoreal_slots(guidance: str) -> list[str]:
    """The model slots (:data:`stm2pe_core.weights.champ.SLOTS`) the photoreal video needs."""
    slots = ["denoising_unet", "motion_module", "reference_unet", "vae", "image_encoder"]
    return slots + [f"guidance_encoder_{m}" for m in ABLATION_MAPS.get(guidance, ())]


def missing_photoreal_files(tree: ModelTree, guidance: str) -> list[str]:
    """One line per photoreal file not found in ``tree`` (empty = all present); presence only,
    ``python -m stm2pe_core check-models`` checks their keys."""
    from .weights.champ import SLOTS, locate

    out = []
    for slot in photoreal_slots(guidance):
        if locate(tree, slot) is None:
            key, names, what = SLOTS[slot]
            where = tree.folder(key) or Path("<models>") / key
            others = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
            out.append(f"{where / names[0]}{others}: {what}")
    return out


def _m2penc_guidance_problem(model: Any) -> str | None:
    from .motion_inference import has_trained_guidance

    if has_trained_guidance(model):
        return None
    return (
        "--guidance m2penc needs M2PEnc weights with a trained pose-guidance head (the bundled default has none; "
        "train one with guidance targets and pass --m2penc FILE); with these weights the photoreal video uses "
        "--guidance PDNS (the dance rendered as SMPL maps -> CHAMP's guidance encoders)"
    )


# ---- the chain -------------------------------------------------------------------------------------


class _Timer:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.times: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self.t, 3)
        self.t = now


def load_audio(request: DanceRequest) -> Any:
    """Load Music for the request (excerpt, beats) with the excerpt's own audio for the sound track."""
    from .audio import load_music

    return load_music(request.music, request.offset, request.seconds, request.fps, keep_audio=True)


def features_for(model: Any, loaded: Any) -> Any:
    """Per-frame features of the kind (and width) this M2PEnc was trained on."""
    from .audio import encode_music
    from .audio.features import with_beat_channel

    cfg = model.config
    feats = encode_music(loaded.music, "jukebox" if cfg.feature_kind == "jukebox" else "librosa")
    if cfg.in_dim == feats.dim + 1:  # trained with the one-hot beat channel
        feats = with_beat_channel(feats, loaded.music)
    return feats


def dance(request: DanceRequest, progress: Progress | None = None) -> DanceResult:
    """Music (+ photo) -> mp4 at ``request.out`` (see the module docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    timer = _Timer()
    for path, what, flag in ((request.music, "music file", "--music"), (request.image, "image", "--image")):
        if path is not None and path.is_dir():
            raise InputError(
                f"{path}: is a folder, not {'an' if what[0] in 'aeiou' else 'a'} {what}. Give {flag} one file"
            )
        if path is not None and not path.is_file():
            raise InputError(f"{path}: {what} not found. Check the path given to {flag}")
    tree = ModelTree(request.models) if request.models is not None else ModelTree.default()
    # decoding + beat tracking (librosa/numba start-up) and, for the preview, building the body
    # overlap with torch and the M2PEnc loading
    with ThreadPoolExecutor(2, thread_name_prefix="stm2pe-load") as pool:
        music_job = pool.submit(load_audio, request)
        try:
            missing = missing_photoreal_files(tree, request.guidance)
            if request.image is None or missing:
                from .body.model import load_body

                pool.submit(load_body, "auto")  # cached: preview_frames gets it at once
            from .motion_inference import load_m2penc, music_to_motion

            model = load_m2penc(request.m2penc)
            timer.lap("load_m2penc")
            loaded = music_job.result()
        except BaseException:
            music_job.cancel()
            raise
    timer.lap("load_music_and_body")
    features = features_for(model, loaded)
    audio = (loaded.audio, loaded.audio_rate) if loaded.audio is not None else loaded.music
    timer.lap("features")

    notes: list[str] = []
    photoreal_guidance = request.guidance
    if request.guidance == "m2penc":
        problem = _m2penc_guidance_problem(model)
        if problem:
            notes.append(problem)
            photoreal_guidance = "PDNS"  # the route these weights can take: list its files
            missing = missing_photoreal_files(tree, photoreal_guidance)
    if request.image is not None and not missing:
        if photoreal_guidance != request.guidance:
            log.warning("STM2PE: these M2PEnc weights have no guidance head; using --guidance %s", photoreal_guidance)
            request = replace(request, guidance=photoreal_guidance)
        return _photoreal(request, tree, model, loaded.music, features, audio, timer, progress)
    if request.image is not None:
        notes.insert(0, "a photo was given but the photoreal video cannot be made yet; writing the guidance preview")
    with _torch_threads(1):
        motion = music_to_motion(features, model)
        timer.lap("m2penc")
        n = _write_preview(request, motion, audio, progress)
    timer.lap("render_and_write")
    return DanceResult(
        path=request.out,
        mode="preview",
        n_frames=n,
        fps=request.fps,
        seconds=n / request.fps,
        timings=timer.times,
        missing=missing,
        notes=notes,
        photoreal_guidance=photoreal_guidance,
    )


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Limit torch's intra-op threads for the preview's small models and ops.

    The bundled M2PEnc (a few MB) and the body posing run ops too small to split: with two
    OpenMP workers each op ends in a barrier, and on a busy 2-core machine the workers spin or
    wait for a core. Measured on 30 s of music: M2PEnc 2.0 s CPU / 3.0 s wall with 2 threads,
    0.26 s / 0.39 s with 1. Rendering (llvmpipe) and x264 have their own threads.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _write_preview(request: DanceRequest, motion: Any, audio: Any, progress: Progress | None) -> int:
    from .video.preview import prefetch, preview_frames
    from .video.writer import write_video

    size = request.preview_size or request.size
    frames = prefetch(preview_frames(motion, size, request.preview_style))
    # x264 "ultrafast": half the CPU of "veryfast" on these flat renders (the preview's budget is
    # 10 s for 30 s of music), at ~1.2 Mb/s for a 512-px grid. One x264 thread: the render thread
    # holds the other core, and frame threads cost ~0.1 s more CPU for 450 frames (0.64 vs 0.75 s)
    write_video(
        request.out,
        frames,
        request.fps,
        audio=audio,
        progress=progress,
        total=motion.n_frames,
        preset="ultrafast",
        threads=1,
    )
    return motion.n_frames


def iter_song_latents(
    total: int,
    guidance_for: Any,
    unet: Any,
    reference: Any,
    *,
    segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    continuation: Any = None,
    steps: int = 20,
    cfg: float = 3.5,
    seed: int = 42,
    context_size: int | None = None,
    context_overlap: int | None = None,
    progress: Progress | None = None,
) -> Any:
    """Yield ``(segment, latents (1, 4, F, h, w))`` for every segment of a ``total``-frame song.

    ``guidance_for(start, stop)`` -> guidance features (F, 320, h, w) for those frames (each
    frame is asked for once; a segment reuses what it shares with the previous one), or None.
    Each segment starts from the noise prior and is tied to the previous one over the overlap
    (:mod:`.diffusion.continuation`); only the previous segment's latents are kept.
    ``progress`` counts sampler steps over the whole song.
    """
    import torch

    from .diffusion.context import DEFAULT_CONTEXT
    from .diffusion.context import DEFAULT_OVERLAP as CONTEXT_OVERLAP
    from .diffusion.continuation import ContinuationConfig, denoise_song, noise_prior
    from .diffusion.sampling import denoise_segment
    from .diffusion.scheduler import make_scheduler
    from .diffusion.segments import GuidanceFeed, plan_segments

    cont = continuation or ContinuationConfig()
    plan = plan_segments(total, segment_frames, cont.overlap)
    sched = make_scheduler()
    gen = torch.Generator().manual_seed(int(seed))
    n_seg = len(plan)
    ctx = context_size or DEFAULT_CONTEXT  # checked (1-32) and fitted to the segment by denoise_segment
    ctx_overlap = CONTEXT_OVERLAP if context_overlap is None else context_overlap

    def init(seg: Any) -> Any:
        return noise_prior(reference.latent.float().cpu(), seg.length, sched, gen, cont.prior_signal, cont.offset_noise)

    def denoise(seg: Any, guidance: Any, init_latents: Any, hook: Any) -> Any:
        def step_progress(done: int, _total: int) -> None:
            if progress is not None:
                progress(seg.index * steps + done, n_seg * steps)

        return denoise_segment(
            unet,
            reference,
            guidance,
            num_frames=seg.length,
            steps=steps,
            cfg=cfg,
            seed=int(seed) + seg.index,
            scheduler=sched,
            context_size=ctx,
            context_overlap=ctx_overlap,
            init_latents=init_latents,
            step_hook=hook,
            progress=step_progress,
        )

    if progress is not None:
        progress(0, n_seg * steps)
    feed = GuidanceFeed(plan, guidance_for, axis=0)
    yield from denoise_song(plan, iter(feed), denoise, init, steps, cont, gen)


def generate_song(
    total: int,
    guidance_for: Any,
    unet: Any,
    reference: Any,
    decode: Any,
    writer: Any = None,
    *,
    decode_chunk: int = 8,
    keep_frames: bool = False,
    on_segment: Any = None,
    **song_options: Any,
) -> Any:
    """Denoise a whole song (:func:`iter_song_latents`) and stream the decoded frames to ``writer``.

    Segments are blended, decoded in chunks and written as soon as they are final, so only the
    current and the previous segment's latents and guidance are alive: memory does not grow with
    the song. ``on_segment(segment, latents)`` sees every segment's latents (tests, debugging).
    Returns the :class:`~stm2pe_core.diffusion.stitch.SongAssembler`.
    """
    from .diffusion.segments import plan_segments
    from .diffusion.stitch import SongAssembler

    cont = song_options.get("continuation")
    overlap = cont.overlap if cont is not None else DEFAULT_OVERLAP
    plan = plan_segments(total, song_options.get("segment_frames", DEFAULT_SEGMENT_FRAMES), overlap)
    asm = SongAssembler(plan, decode, writer, keep_frames=keep_frames, chunk=decode_chunk)
    for seg, latents in iter_song_latents(total, guidance_for, unet, reference, **song_options):
        if on_segment is not None:
            on_segment(seg, latents)
        asm.add(seg, latents)
    return asm


def song_segments(
    models: Any,
    reference: Any,
    *,
    pose_guidance: Any = None,
    guidance_maps: Any = None,
    guidance_set: str = "PDNS",
    num_frames: int = 0,
    progress: Progress | None = None,
    **song_options: Any,
) -> list[Any]:
    """The Denoise Song node's work: every segment of the song as ``SegmentLatents`` (for Stitch
    Segments). Guidance comes from M2PEnc's POSE_GUIDANCE or rendered GUIDANCE_MAPS, per segment."""
    from .diffusion.sampling import SegmentLatents, segment_guidance

    if pose_guidance is not None:
        total = int(pose_guidance.features.shape[0])
    elif guidance_maps is not None:
        total = int(guidance_maps.n_frames)
    elif num_frames > 0:
        total = int(num_frames)
    else:
        raise InputError("Denoise Song needs pose guidance, guidance maps or a frame count")
    hw = tuple(int(s) for s in reference.latent.shape[-2:])

    def guidance_for(a: int, b: int) -> Any:
        return segment_guidance(models, slice(a, b), hw, pose_guidance, guidance_maps, guidance_set)

    out = []
    with models.use("denoising_unet"):
        for seg, latents in iter_song_latents(
            total, guidance_for, models.denoising_unet, reference, progress=progress, **song_options
        ):
            out.append(SegmentLatents(latents, seg.start, seg.stop, seg.overlap_prev, info={"segment": seg.index}))
    return out


def load_photoreal(tree: ModelTree, guidance: str, device: str = "auto", compile: bool = False) -> Any:
    """The photoreal networks (:func:`stm2pe_core.weights.champ.load_models`; fp16 on a GPU,
    bf16 when compiled, the precision the compiled path is measured in)."""
    from .weights.champ import load_models

    maps = ABLATION_MAPS.get(guidance, ())
    return load_models(
        tree,
        dtype="bf16" if compile else "fp16",
        device=device,
        guidance_types=maps,
        with_guidance_encoders=bool(maps),
        compile=compile,
    )


def _read_image(path: Path) -> Any:
    import cv2
    import numpy as np

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot be read as an image. Use a PNG or JPEG photo")
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] >= 3:
        img = np.concatenate([img[..., 2::-1], img[..., 3:]], axis=-1)  # BGR(A) -> RGB(A)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / scale


def _photoreal(request, tree, model, music, features, audio, timer, progress) -> DanceResult:  # noqa: ANN001
    """Photo + music -> photoreal dance video, segment by segment (see ``generate_song``)."""
    import numpy as np

    from .diffusion.continuation import ContinuationConfig
    from .diffusion.reference import reference_from_image
    from .diffusion.sampling import segment_guidance
    from .diffusion.stitch import vae_decoder
    from .motion_inference import music_to_guidance, music_to_motion
    from .types import GuidanceMaps
    from .video.writer import VideoWriter

    models = load_photoreal(tree, request.guidance, request.device, compile=request.compile)
    timer.lap("load_photoreal")
    photo = _read_image(request.image)
    reference = reference_from_image(models, photo, request.size, request.size)
    timer.lap("reference")
    total = int(features.features.shape[0])
    hw = (request.size // 8, request.size // 8)

    if request.guidance == "m2penc":

        def guidance_for(a: int, b: int) -> Any:
            pg = music_to_guidance(features, model, frames=slice(a, b))
            return segment_guidance(models, slice(0, b - a), hw, pose_guidance=pg)

    else:
        from .body.model import load_body
        from .body.motion import slice_frames
        from .render.api import choose_camera
        from .render.guidance import render_guidance

        motion = music_to_motion(features, model)
        body = load_body("auto")
        # the photo as the networks see it (fitted to the working size), so the body lands on the person
        rgb8 = (reference.image.float().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        camera, _, _ = choose_camera(motion, body, request.size, request.size, "reference", reference=rgb8)
        types = ABLATION_MAPS[request.guidance]

        def guidance_for(a: int, b: int) -> Any:
            maps: GuidanceMaps = render_guidance(
                slice_frames(motion, a, b), body, width=request.size, height=request.size, maps=types, camera=camera
            )
            return segment_guidance(models, slice(0, b - a), hw, guidance_maps=maps, guidance_set=request.guidance)

    cont = ContinuationConfig(request.overlap, request.prior_signal, request.offset_noise, request.tie_until)
    with VideoWriter(request.out, request.fps, audio) as writer, models.use("denoising_unet", "vae"):
        asm = generate_song(
            total,
            guidance_for,
            models.denoising_unet,
            reference,
            vae_decoder(models.vae, static_shapes="compiled" in models.sources),
            writer,
            segment_frames=request.segment_frames,
            continuation=cont,
            steps=request.steps,
            cfg=request.cfg,
            seed=request.seed,
            context_size=request.context,
            context_overlap=request.context_overlap,
            progress=progress,
        )
    timer.lap("denoise_decode_write")
    return DanceResult(
        request.out, "photoreal", asm.frames_done, request.fps, asm.frames_done / request.fps, timer.times
    )


# ---- CLI --------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dance",
        help="music (+ photo) -> dance video with the music",
        description="Make a dance video from a music file. With nothing downloaded it writes the guidance "
        "preview (the bundled M2PEnc's dance, rendered); with --image and the CHAMP/SD weights "
        "under --models it writes the photoreal video.",
    )
    p.add_argument("--music", required=True, type=Path, help="music file (wav, flac, ogg, mp3, m4a, ...)")
    p.add_argument("--image", type=Path, help="photo of the person (photoreal video; needs the model files)")
    p.add_argument("--out", type=Path, default=Path("dance.mp4"), help="output mp4 (default dance.mp4)")
    p.add_argument("--models", type=Path, help="models folder laid out like ComfyUI's models/ (default $STM2PE_MODELS)")
    p.add_argument(
        "--guidance",
        choices=GUIDANCE_CHOICES,
        default="m2penc",
        help="pose guidance: M2PEnc features or CHAMP maps (ablations)",
    )
    p.add_argument("--seconds", type=float, help="length of the excerpt in seconds (default: to the end)")
    p.add_argument("--offset", type=float, default=0.0, help="start of the excerpt in seconds")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", type=int, default=20, help="DDIM steps (photoreal)")
    p.add_argument("--cfg", type=float, default=3.5, help="classifier-free guidance scale (photoreal)")
    p.add_argument("--size", type=int, default=512, help="working size in pixels (square)")
    p.add_argument("--m2penc", help="M2PEnc weights (.safetensors); default: the bundled model")
    p.add_argument("--preview", dest="preview_style", choices=PREVIEW_STYLES, default="auto", help="preview look")
    p.add_argument("--preview-size", type=int, help="preview size in pixels (default --size)")
    p.add_argument("--segment-frames", type=int, default=DEFAULT_SEGMENT_FRAMES, help="frames per diffusion segment")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="frames shared by neighbouring segments")
    p.add_argument(
        "--prior-signal",
        type=float,
        default=DEFAULT_PRIOR_SIGNAL,
        help="noise prior: share of the photo's latent kept in x_T (0 = off)",
    )
    p.add_argument(
        "--tie-until", type=float, default=0.8, help="fraction of steps the overlap is tied to the previous segment"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (photoreal)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="CUDA: torch.compile the denoiser and VAE decoder (bf16; ~1-2 min once, then ~1.5x faster segments)",
    )
    p.add_argument("--context", type=int, default=24, help="motion-module window in frames (1-32; CHAMP: 24)")
    p.add_argument(
        "--context-overlap",
        type=int,
        default=4,
        help="frames shared by neighbouring windows (--context 27 --context-overlap 3: fewest passes per 75 frames)",
    )
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import gc

    # a fresh CLI process imports torch, librosa/scipy/numba and pyrender: with CPython's default
    # thresholds (700, 10, 10) that triggers ~7 full collections over the big heap, 0.7 s of CPU
    # for 30 s of music; 10 000 new objects per young collection leaves one (pyrender's own)
    gc.set_threshold(10_000, 10, 10)
    fields = DanceRequest.__dataclass_fields__
    req = DanceRequest(**{k: v for k, v in vars(args).items() if k in fields})
    result = dance(req, progress=tqdm_progress("video"))
    t = sum(result.timings.values())
    print(
        f"wrote {result.path} ({result.mode}: {result.n_frames} frames at {result.fps:g} fps, {result.seconds:.1f} s, in {t:.1f} s)"
    )
    log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    for note in result.notes:
        print(f"note: {note}")
    if result.mode == "preview" and result.missing:
        where = req.models or "--models DIR (or $STM2PE_MODELS)"
        opts = "--image PHOTO" + (
            f" --guidance {result.photoreal_guidance}" if result.photoreal_guidance != req.guidance else ""
        )
        print(f"This is the guidance preview. For the photoreal video pass {opts} and put these files under {where}:")
        for line in result.missing:
            print(f"  - {line}")
        print(
            "  (where each file comes from: README, 'Model files'; folders: " + ", ".join(sorted(MODEL_FOLDERS)) + ")"
        )
    return 0
