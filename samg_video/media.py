"""Video files in and out: writing (mp4 / webm / avi through imageio-ffmpeg, gif, PNG frames),
streaming decoding in bounded chunks (imageio-ffmpeg pipe, or decord), output and input
path checks, and the one normaliser of in-memory clips (`frames_hwc`, `array_frames`).

Frames are (F, H, W, 3), float in [0, 1] or uint8. Every file is written through
`samg_video.atomic`, so an interrupted write never leaves a truncated video behind.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from .atomic import atomic_path, commit, discard, temp_path, write_text  # noqa: F401  (write_text re-exported)

FORMATS = ("mp4", "webm", "avi", "gif", "png")
# ffmpeg encoder and options per container (imageio-ffmpeg ships an ffmpeg with all three)
FFMPEG_CODECS = {
    "mp4": ("libx264", "yuv420p", ["-crf", "12"]),
    "webm": ("libvpx-vp9", "yuv420p", ["-crf", "15", "-b:v", "0", "-deadline", "realtime"]),
    "avi": ("mjpeg", "yuvj420p", ["-q:v", "2"]),
}


def to_uint8(frames) -> np.ndarray:
    """(F, H, W, 3) float in [0, 1] or uint8 -> uint8."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"Expected frames of shape (F, H, W, 3), got {arr.shape}.")
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (F, H, W, 3) by an integer factor (keeps pixels crisp)."""
    if factor <= 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def enlargement(frame: np.ndarray, tolerance: float = 2.0) -> int:
    """The factor k (16, 8 or 4) by which an (H, W, 3) uint8 frame looks nearest-neighbour enlarged:
    the largest k dividing H and W for which every k x k block is flat, mean |frame - its block
    mean| < `tolerance` grey levels (room for the encoder's noise), while the blocks differ; 1 if none."""
    x = frame.astype(np.float32)
    h, w = x.shape[:2]
    for k in (16, 8, 4):
        if h % k or w % k or h // k < 2 or w // k < 2:
            continue
        blocks = x.reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
        flat = np.abs(x - blocks.repeat(k, 0).repeat(k, 1)).mean()
        if flat < tolerance and blocks.std() > 4 * tolerance:
            return k
    return 1


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The output format: `fmt` when given (it must agree with the path's extension), else the
    extension; no extension (or .png) means a folder of PNG frames."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"Unknown output format {fmt!r}; use one of {', '.join(FORMATS)}.")
        if suffix in FORMATS and suffix != fmt and not (fmt == "png" and suffix == "png"):
            raise ValueError(f"--format {fmt} does not match {str(path)!r}; name the output .{fmt}"
                             + (" (or a folder)" if fmt == "png" else "") + " or drop --format.")
        return fmt
    if suffix in FORMATS and suffix != "png":
        return suffix
    if suffix in ("", "png"):
        return "png"
    raise ValueError(f"Cannot tell the format of {str(path)!r}; end it in .mp4, .webm, .avi or .gif, "
                     "or pass a folder for PNG frames.")


def check_writable(path: str | Path) -> None:
    """Raise a one-sentence error unless `path` can be written: its folder exists or can be made
    and is writable, and `path`, if it exists, is a regular file (or a folder of PNG frames),
    never a symbolic link, a device or a pipe, which an atomic write would replace."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    existing = next((p for p in [parent, *parent.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write {str(path)!r}: {str(existing)!r} is not a writable folder.")
    if path.is_symlink():
        raise ValueError(f"Cannot write {str(path)!r}: it is a symbolic link, which the write would replace; "
                         "name the file itself or a new path.")
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise ValueError(f"Cannot write {str(path)!r}: it is a device, pipe or socket, not a regular file; "
                         "name a new file.")
    if path.is_dir() and path.suffix:
        raise ValueError(f"Cannot write {str(path)!r}: a folder of that name exists.")
    if path.is_dir():
        check_frame_folder(path)


def check_frame_folder(folder: Path) -> None:
    """A folder that a clip's PNG frames may replace holds PNG frames only (or nothing)."""
    stray = sorted(p.name for p in folder.iterdir() if not FRAME_NAME.match(p.name))
    if stray:
        raise ValueError(f"Cannot write frames into {folder}: it holds other files ({stray[0]}); name a new folder.")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (after resolving links; by inode when both exist)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_not_inputs(outputs, inputs) -> None:
    """Before any work: no output is one of the command's inputs (or inside an input folder), and no
    two outputs are the same file."""
    outs = [Path(p) for p in outputs if p]
    for i, out in enumerate(outs):
        if any(same_file(out, other) for other in outs[:i]):
            raise ValueError(f"Two outputs are the same file, {str(out)!r}; give each its own path.")
        for given in (Path(p) for p in inputs if p):
            inside = given.is_dir() and out.resolve().is_relative_to(given.resolve())
            if same_file(out, given) or inside:
                raise ValueError(f"The output {str(out)!r} is {'inside ' if inside else ''}the input {str(given)!r}; "
                                 "writing it would overwrite the input, so choose another output path.")


def check_output(path: str | Path, fmt: str | None = None) -> str:
    """Check an output before any work: its format and that it can be written. Returns the format."""
    fmt = format_of(path, fmt)
    if fmt != "png" and Path(path).is_dir():
        raise ValueError(f"Cannot write {str(path)!r} as {fmt}: a folder of that name exists; name a file, or use "
                         "--format png for a folder of frames.")
    check_writable(path)
    return fmt


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image (PNG, JPEG, ... by suffix) atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp)
    return Path(path)


def write_video(frames, path: str | Path, fps: int = 8, fmt: str | None = None, scale: int = 1) -> Path:
    """Write a clip; returns the path written (a folder for PNG frames)."""
    path = Path(path)
    fmt = format_of(path, fmt)
    data = upscale(to_uint8(frames), scale)
    if fmt == "png":
        return _write_pngs(data, path)
    if fps < 1:
        raise ValueError(f"fps must be at least 1, got {fps}.")
    with atomic_path(path, f".{fmt}") as tmp:
        try:
            if fmt in FFMPEG_CODECS:
                _write_ffmpeg(data, tmp, fps, fmt)
            else:
                _write_encoded(tmp, data, ".gif", duration=1000 / fps, loop=0)
        except (OSError, RuntimeError) as err:  # ffmpeg's broken pipe, ENOSPC, ...
            raise write_error(path, tmp, err) from None
        check_written(tmp, path, len(data))
    return path


def write_error(path: Path, tmp: Path, err: Exception) -> ValueError:
    """One sentence for a failed encode: a full disk named as such, else the encoder's first line."""
    import errno
    import shutil

    free = shutil.disk_usage(tmp.parent).free
    if getattr(err, "errno", None) == errno.ENOSPC or free < 1 << 20:
        return ValueError(f"Cannot write {path}: no space left on the device ({free} bytes free); free some space "
                          "or write elsewhere. Nothing was replaced.")
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return ValueError(f"Cannot write {path}: the encoder failed ({first}). Nothing was replaced.")


def check_written(tmp: Path, path: Path, frames: int) -> None:
    """The encoded file decodes to `frames` frames, or a one-sentence error (before it replaces anything).
    A GIF only has to open: its encoder merges identical consecutive frames into one longer frame."""
    try:
        if tmp.suffix == ".gif":
            from PIL import Image

            with Image.open(tmp) as image:
                found = frames if 1 <= image.n_frames <= frames else image.n_frames
        else:
            import imageio_ffmpeg

            found = imageio_ffmpeg.count_frames_and_secs(str(tmp))[0]
    except Exception as err:  # noqa: BLE001  (any decoder failure means the file is broken)
        raise write_error(path, tmp, err) from None
    if found != frames:
        raise write_error(path, tmp, RuntimeError(f"the file holds {found} of {frames} frames"))


def _write_ffmpeg(data: np.ndarray, path: Path, fps: int, fmt: str) -> None:
    """mp4 (H.264), webm (VP9) or avi (MJPEG) through imageio-ffmpeg's bundled ffmpeg."""
    import imageio_ffmpeg

    codec, pix_fmt, params = FFMPEG_CODECS[fmt]
    h, w = data.shape[1:3]
    if h % 2 or w % 2:  # 4:2:0 chroma needs even sizes
        data = np.pad(data, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = data.shape[1:3]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec=codec, pix_fmt_out=pix_fmt,
                                         output_params=params, macro_block_size=1, ffmpeg_log_level="quiet")
    writer.send(None)
    for frame in data:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _write_encoded(path: Path, data: np.ndarray, extension: str, **options) -> None:
    """Encode with imageio in memory, then write the bytes with a plain file: a failed write or close
    (a full disk) raises here, once, instead of again from imageio's file handle at garbage collection."""
    import imageio.v3 as iio

    encoded = iio.imwrite("<bytes>", data, extension=extension, **options)
    with open(path, "wb") as f:
        f.write(encoded)


FRAME_NAME = re.compile(r"^frame_\d{4,}\.png$")


def _write_pngs(data: np.ndarray, folder: Path) -> Path:
    """PNG frames written whole into a fresh folder, then swapped in for `folder` (whose old frames,
    if any, go: a folder holding anything else is refused, never mixed with a new clip)."""
    if folder.is_dir():
        check_frame_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = temp_path(folder, ""), temp_path(folder, "")
    try:
        tmp.mkdir()
        for i, frame in enumerate(data):
            try:
                _write_encoded(tmp / f"frame_{i:04d}.png", frame, ".png")
            except OSError as err:
                raise write_error(folder, tmp, err) from None
        if folder.exists():
            os.replace(folder, old)
        commit(tmp, folder)
    finally:
        discard(tmp)
        discard(old)
    return folder


def load_image(path: str | Path, data: bytes | None = None):
    """An input image (PNG, JPEG, WebP, ...) as an RGB PIL image; one sentence if it cannot be read.
    `data`: the file's bytes, already read (the image is decoded from them, named by `path`)."""
    import io

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if data is None and not path.is_file():
        raise ValueError(f"Cannot read the image {str(path)!r}: no such file.")
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as image:
            image.load()
            return rgb_image(image, path)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"Cannot read the image {str(path)!r}: {err}.") from None


def rgb_image(image, path: str | Path = "image"):
    """A PIL image as RGB with its values kept: 16-bit grey (modes I;16*, and I as PNG's 16-bit grey
    opens) maps 0..65535 to 0..255 (PIL's own convert would clip it to white); float images (F) are
    refused, their range being unknown."""
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"Cannot read the image {str(path)!r}: its integer values span [{values.min():g}, "
                             f"{values.max():g}], outside 16 bits.")
        grey = np.round(values / 257).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        raise ValueError(f"Cannot read the image {str(path)!r}: a floating-point image (mode F) has no fixed value "
                         "range; save it as 8- or 16-bit.")
    return image.convert("RGB")


def load_clip(path: str | Path) -> list:
    """A source clip (video file or folder of frames) as a list of RGB PIL images, one per frame."""
    from PIL import Image

    return [Image.fromarray(np.ascontiguousarray(frame)) for frame in to_uint8(read_video(path))]


def read_video(path: str | Path) -> np.ndarray:
    """Read a whole clip (mp4 / webm / avi / mov / mkv / gif / folder of frames) as uint8 (F, H, W, 3).

    For long videos prefer `iter_frames`, which decodes in chunks.
    """
    import imageio.v3 as iio

    path = Path(path)
    if path.is_dir():
        return np.concatenate(list(_iter_image_folder(path, 32)))
    check_regular(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return np.concatenate(list(_iter_ffmpeg(path, chunk=32)))
    return rgb(np.asarray(iio.imread(path, index=None)))


def rgb(image: np.ndarray) -> np.ndarray:
    """Frames (..., H, W) grey, (..., H, W, 2) grey + alpha, (..., H, W, 4) RGBA -> (..., H, W, 3)."""
    if image.ndim >= 3 and image.shape[-1] in (3, 4):
        return image[..., :3]
    grey = image if image.ndim == 2 or image.shape[-1] not in (1, 2) else image[..., 0]
    return np.repeat(grey[..., None], 3, axis=-1)


def check_regular(path: Path) -> None:
    """A path to read must be a regular file (a FIFO or device would block the reader)."""
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; pass a video file or a folder of frames.")


VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def frames_hwc(video) -> np.ndarray:
    """The one layout normaliser: a numpy array or torch tensor clip, (F, H, W, 3) or (F, 3, H, W),
    as a numpy (F, H, W, 3) array with its values and dtype unchanged (torch dtypes numpy lacks,
    such as bfloat16, become float32)."""
    if hasattr(video, "detach"):
        tensor = video.detach().cpu()
        try:
            arr = tensor.numpy()
        except TypeError:  # bfloat16 and other dtypes numpy has no match for
            arr = tensor.float().numpy()
    else:
        arr = np.asarray(video)
    if arr.ndim != 4:
        raise ValueError(f"Expected a clip of shape (F, H, W, 3) or (F, 3, H, W), got {arr.shape}.")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    return arr


def array_frames(video, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """A numpy / torch clip (F, H, W, 3) or (F, 3, H, W) -> uint8 (F, H, W, 3).

    Value convention: uint8 in [0, 255], or floats in [0, 1]. Anything else (floats outside
    [0, 1], other integer types) needs `value_range=(low, high)`, which maps low..high to
    0..255; without it the clip is refused with the range found, never silently clipped.
    """
    arr = frames_hwc(video)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        first = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise ValueError(f"Frame {first} holds NaN or infinite values; frames must be finite.")
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and 0 < high - low <= float(np.finfo(np.float32).max)):
            raise ValueError(f"value_range must be (low, high), finite, with 0 < high - low within float32; got "
                             f"{tuple(value_range)}.")
        return to_uint8((arr.astype(np.float32) - low) / (high - low))
    if arr.dtype == np.uint8:
        return arr
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not np.issubdtype(arr.dtype, np.floating) or lo < 0 or hi > 1 or not np.isfinite([lo, hi]).all():
        raise ValueError(f"Frames must be uint8, or floats in [0, 1]; got {arr.dtype} values in [{lo:g}, {hi:g}]. "
                         "Pass value_range=(low, high) to say what they mean (e.g. (0, 255) or (-1, 1)).")
    return to_uint8(arr)


CHUNK_BYTES = 32 * 2**20  # decoded bytes per chunk: 32 frames of 480x720, 11 of 1280x720


def frames_per_chunk(height: int, width: int, chunk: int = 32, budget: int = CHUNK_BYTES) -> int:
    """At most `chunk` frames, and at most `budget` bytes of uint8 RGB (at least 2 frames)."""
    return max(2, min(chunk, budget // (height * width * 3)))


DECODERS = ("ffmpeg", "decord")


def iter_frames(source, chunk: int = 32, decoder: str = "ffmpeg", value_range=None):
    """Decode a clip in chunks of uint8 frames (n, H, W, 3), so memory stays bounded.

    A chunk holds at most `chunk` frames and at most CHUNK_BYTES of pixels.

    `source`: an array or tensor, a folder of PNG / JPEG frames, a .gif, or a video file
    (.mp4 .webm .avi .mov .mkv). Video files stream through `decoder`:
    "ffmpeg" (default): imageio-ffmpeg's pipe from an ffmpeg subprocess, which blocks
    while we compute, so at most a chunk (plus the pipe) is ever buffered;
    "decord": decord's VideoReader, whose background thread decodes ahead of a slow
    consumer without bound (dmlc/decord#157, #208; measured here: 2.7 GiB over 600
    frames of 720p), so use it for short clips or random access only.
    Raises FileNotFoundError / ValueError with the path and the reason.
    """
    if decoder not in DECODERS:
        raise ValueError(f"Unknown decoder {decoder!r}; use one of {', '.join(DECODERS)}.")
    if not isinstance(source, (str, Path)):
        frames = array_frames(source, value_range)
        for i in range(0, len(frames), chunk):
            yield frames[i:i + chunk]
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if not path.is_dir():
        check_regular(path)
    if path.is_dir():
        yield from _iter_image_folder(path, chunk)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        yield from (_iter_ffmpeg(path, chunk) if decoder == "ffmpeg" else _iter_decord(path, chunk))
    elif path.suffix.lower() == ".gif":
        yield from iter_frames(read_video(path), chunk)
    else:
        raise ValueError(f"Cannot read {path}: use a video ({', '.join(VIDEO_SUFFIXES)}), a .gif or a folder "
                         "of frames.")


def _iter_image_folder(folder: Path, chunk: int):
    """A folder's PNG / JPEG / BMP frames in name order, each read as `load_image` reads an input (every
    PIL mode to 8-bit RGB with its values: 1-bit, 16-bit grey, palette, alpha dropped)."""
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no PNG or JPEG frames.")
    for f in files:
        check_regular(f)
    first = None
    for i in range(0, len(files), chunk):
        block = [np.asarray(load_image(f)) for f in files[i:i + chunk]]
        first = first or (files[0].name, block[0].shape)
        for f, frame in zip(files[i:i + chunk], block):
            if frame.shape != first[1]:
                raise ValueError(f"Frames of {folder} differ in size: {first[0]} is {first[1][1]}x{first[1][0]}, "
                                 f"{f.name} is {frame.shape[1]}x{frame.shape[0]}.")
        yield np.stack(block)


def _decode_error(path: Path, err: Exception) -> ValueError:
    first = str(err).strip().splitlines()
    return ValueError(f"Cannot decode {path}: {first[0] if first else type(err).__name__}.")


def expected_frames(meta: dict) -> int | None:
    """The frame count a container announces (duration x fps), when it announces one."""
    duration, fps = meta.get("duration"), meta.get("fps")
    if not duration or not fps or not np.isfinite(duration * fps):
        return None
    return int(round(duration * fps))


def check_complete(path: Path, decoded: int, expected: int | None) -> None:
    """A file that decodes to fewer frames than it announces is damaged (cut short): an error, not a score."""
    if expected is not None and decoded < expected - 1:
        raise ValueError(f"{path} decodes to {decoded} of the {expected} frames it announces; the file is "
                         "truncated or damaged.")


def _iter_ffmpeg(path: Path, chunk: int):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        try:
            meta = next(reader)
        except Exception as err:  # imageio-ffmpeg raises OSError / RuntimeError with ffmpeg's log
            raise _decode_error(path, err) from err
        w, h = meta["size"]
        chunk, block, count = frames_per_chunk(h, w, chunk), [], 0
        try:
            for raw in reader:
                block.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
                if len(block) == chunk:
                    count += len(block)
                    yield np.stack(block)
                    block = []
        except (OSError, RuntimeError) as err:
            raise _decode_error(path, err) from err
        if block:
            count += len(block)
            yield np.stack(block)
        if count == 0:
            raise ValueError(f"{path} holds no frames.")
        check_complete(path, count, expected_frames(meta))
    finally:
        reader.close()


def _iter_decord(path: Path, chunk: int):
    import decord

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as err:  # decord raises its own DECORDError
        raise _decode_error(path, err) from err
    if len(reader) == 0:
        raise ValueError(f"{path} holds no frames.")
    height, width = reader[0].shape[:2]
    chunk = frames_per_chunk(height, width, chunk)
    reader.seek(0)
    check_complete(path, len(reader), ffmpeg_expected_frames(path))
    for i in range(0, len(reader), chunk):
        yield reader.get_batch(list(range(i, min(i + chunk, len(reader))))).asnumpy()


def frame_rate(source) -> float | None:
    """Frames per second a video file announces (ffmpeg's reading of its header); None for arrays,
    folders of frames, GIFs and files that announce none."""
    import imageio_ffmpeg

    if not isinstance(source, (str, Path)) or Path(source).suffix.lower() not in VIDEO_SUFFIXES:
        return None
    reader = imageio_ffmpeg.read_frames(str(source))
    try:
        fps = next(reader).get("fps")
    except Exception:  # noqa: BLE001  (an unreadable file fails where it is decoded, with its own error)
        return None
    finally:
        reader.close()
    return float(fps) if fps and np.isfinite(fps) else None


def ffmpeg_expected_frames(path: Path) -> int | None:
    """The announced frame count as ffmpeg reads the header (so both decoders judge a file alike)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return expected_frames(next(reader))
    except Exception:  # noqa: BLE001  (unreadable header: decord's own error will say so)
        return None
    finally:
        reader.close()
