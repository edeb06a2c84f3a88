"""The report's gallery: the same prompts and seeds for every method, clips with controls and a
poster frame, SAMG's scale-field heatmap beside its clip; `Media` places pictures and clips
(files beside the page, or data URIs for a single-file page)."""

from __future__ import annotations

import base64
import hashlib
import html
import shutil
from collections import defaultdict
from pathlib import Path

from .. import catalogue, media
from ..atomic import write_bytes
from ..manifest import clip_path
from .stats import config_key, method_names
from .tables import verdict


def gallery_prompts(rows: list[dict], limit: int = 8) -> list[tuple[str, int]]:
    """(prompt, seed) pairs that every method finished, one per prompt category (first tag, or the
    object count on the bundled model) before a second of any, at most `limit`."""
    done = defaultdict(set)
    for r in rows:
        if "error" not in r:
            done[(r["prompt"], r["seed"])].add(config_key(r["method"]))
    methods = {config_key(r["method"]) for r in rows}
    complete = sorted(k for k, v in done.items() if v == methods)
    category = {(r["prompt"], r["seed"]): (r.get("tags") or [f"{r.get('objects', 1)} object(s)"])[0] for r in rows}
    firsts, seen = [], set()
    for key in complete:
        if category[key] not in seen:
            seen.add(category[key])
            firsts.append(key)
    return (firsts + [k for k in complete if k not in firsts])[:limit]

def clip_caption(name: str, row: dict) -> str:
    parts = [f"prompt met: {verdict(row)}"] if verdict(row) else []
    parts += [f"{catalogue.header(k)} {row[k]:.4f}" for k in catalogue.CAPTION
              if isinstance(row.get(k), (int, float))]
    return f"<b>{html.escape(name)}</b><br>{html.escape(' · '.join(parts))}"

class Media:
    """Where the page's pictures and clips go: files beside the page (gallery/ for clips), or,
    for a single-file page, data URIs up to `budget` bytes of clips (past it a clip is skipped
    and counted)."""

    def __init__(self, out: Path, single_file: bool, budget: int):
        self.out, self.single_file, self.budget, self.used, self.skipped = out, single_file, budget, 0, 0

    def image(self, path: Path) -> str:
        if not self.single_file:
            return path.relative_to(self.out).as_posix()
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    def picture(self, src: Path) -> str:
        """An input image of the sweep (an image-to-video item's first frame), as PNG."""
        import imageio.v3 as iio

        data = iio.imwrite("<bytes>", media.rgb(iio.imread(src)), extension=".png")
        if self.single_file:
            return "data:image/png;base64," + base64.b64encode(data).decode()
        name = f"input_{hashlib.sha256(data).hexdigest()[:12]}.png"
        write_bytes(self.out / "gallery" / name, data)
        return f"gallery/{name}"

    def clip(self, src: Path) -> tuple[str, str] | None:
        """(video URL, poster URL) for a clip file, or None when it is past the budget."""
        data = src.read_bytes()
        poster = poster_png(src)
        if self.single_file:
            size = len(data) + len(poster)
            if self.used + size > self.budget:
                self.skipped += 1
                return None
            self.used += size
            return (f"data:video/mp4;base64,{base64.b64encode(data).decode()}",
                    f"data:image/png;base64,{base64.b64encode(poster).decode()}")
        folder = self.out / "gallery"
        folder.mkdir(parents=True, exist_ok=True)
        if src.parent.resolve() != folder.resolve():
            shutil.copy(src, folder / src.name)
        write_bytes(folder / f"{src.stem}.png", poster)
        return f"gallery/{src.name}", f"gallery/{src.stem}.png"

def poster_png(clip: Path) -> bytes:
    """The clip's first frame as PNG bytes."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", media.read_video(clip)[0], extension=".png")

def gallery(run: Path, rows: list[dict], table: dict, files: Media, limit: int = 8) -> list[str]:
    """HTML blocks, one per chosen prompt: every method's clip (and SAMG's heatmap) with controls,
    a poster frame and its verdict and metrics; a button plays the row together."""
    names = method_names(rows)
    by_key = {(r["prompt"], r["seed"], names[config_key(r["method"])]): r for r in rows if "error" not in r}
    blocks = []
    for prompt, seed in gallery_prompts(rows, limit):
        tags = next((r.get("tags") for r in rows if r["prompt"] == prompt and r.get("tags")), [])
        cells = []
        image = next((r["image"] for r in rows if r["prompt"] == prompt and r.get("image")), None)
        if image and Path(image).is_file():
            cells.append(f'<figure><img class=input src="{files.picture(Path(image))}" alt="input image">'
                         "<figcaption><b>input image</b></figcaption></figure>")
        for name in table:
            r = by_key.get((prompt, seed, name))
            if r is None:
                continue
            videos = []
            for kind in ("", "field"):
                src = clip_path(run, r["id"], kind)
                placed = files.clip(src) if src.is_file() else None
                if placed:
                    videos.append(f'<video src="{placed[0]}" poster="{placed[1]}" controls loop muted playsinline '
                                  'preload="none"></video>')
            cells.append(f"<figure>{''.join(videos)}<figcaption>{clip_caption(name, r)}</figcaption></figure>")
        caption = html.escape(prompt) + f" (seed {seed}" + (f"; {html.escape(', '.join(tags))})" if tags else ")")
        blocks.append(f"<h3>{caption} <button class=play>play row</button></h3><div class='row'>{''.join(cells)}</div>")
    return blocks
