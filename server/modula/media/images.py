"""Images with Pillow: the width and height of an upload, and its named sizes made once, on upload.

A file whose bytes say it is an image but that Pillow cannot decode (truncated, corrupt, or more
pixels than MAX_PIXELS) is still stored, as a file without width, height or sizes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

MAX_PIXELS = 50_000_000  # larger images are not decoded (a decompression bomb costs memory, not bytes)

# Types Pillow reads that get dimensions and sizes; and the format each size is written in.
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "PNG", "image/webp": "WEBP", "image/bmp": "PNG",
            "image/tiff": "PNG"}
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_SIZE = re.compile(r"^([a-z][a-z0-9_-]{0,63}):(\d*)x(\d*)(:crop)?(:webp)?$")


@dataclass(frozen=True)
class ImageSize:
    name: str
    width: int | None
    height: int | None
    crop: bool = False
    webp: bool = False  # written as WebP, whatever the original's format


@dataclass(frozen=True)
class Rendition:
    name: str
    path: Path
    width: int
    height: int
    mime_type: str


def parse_sizes(specs: tuple[str, ...]) -> tuple[ImageSize, ...]:
    """`("thumbnail:150x150:crop", "medium:800x", "medium-webp:800x:webp")` -> ImageSizes (`:webp`:
    that size is a WebP variant); a ValueError names a bad spec."""
    sizes = []
    for spec in specs:
        match = _SIZE.match(spec.strip())
        width, height = (int(match[2]) if match and match[2] else None), (int(match[3]) if match and match[3] else None)
        if not match or (width is None and height is None) or 0 in (width, height) \
                or (match[4] and (width is None or height is None)):
            raise ValueError(f"image size {spec!r} (MODULA_MEDIA_SIZES) is not name:WIDTHxHEIGHT[:crop][:webp], "
                             "e.g. thumbnail:150x150:crop, medium:800x or medium-webp:800x:webp (crop needs both sides)")
        sizes.append(ImageSize(match[1], width, height, bool(match[4]), bool(match[5])))
    return tuple(sizes)


def is_image(media_type: str) -> bool:
    return media_type in _FORMATS


def render(source: Path, media_type: str, sizes: tuple[ImageSize, ...], out_dir: Path,
           ) -> tuple[tuple[int, int] | None, list[Rendition]]:
    """(width, height) of the image at `source` and its sizes written under `out_dir`; (None, [])
    when it does not decode. Blocking: run it in a thread."""
    if not is_image(media_type):
        return None, []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None, []
                image.load()
                dimensions = image.size
                renditions = [_rendition(image, size, media_type, source, out_dir) for size in sizes]
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, []
    return dimensions, renditions


def _rendition(image: Image.Image, size: ImageSize, media_type: str, source: Path, out_dir: Path) -> Rendition:
    upright = ImageOps.exif_transpose(image)
    box = (size.width or upright.width * 10, size.height or upright.height * 10)  # an open side never limits
    if size.crop:
        resized = ImageOps.fit(upright, box, Image.Resampling.LANCZOS)
    else:
        resized = upright.copy()
        resized.thumbnail(box, Image.Resampling.LANCZOS)
    image_format = "WEBP" if size.webp else _FORMATS[media_type]
    if image_format == "JPEG" and resized.mode not in ("RGB", "L"):
        resized = resized.convert("RGB")
    elif image_format == "WEBP" and resized.mode not in ("RGB", "RGBA"):
        resized = resized.convert("RGBA" if "A" in resized.mode or "transparency" in resized.info else "RGB")
    path = out_dir / f"{source.name}.{size.name}"
    resized.save(path, format=image_format)
    return Rendition(size.name, path, resized.width, resized.height, _MIME[image_format])
