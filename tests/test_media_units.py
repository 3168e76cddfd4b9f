"""The small pure parts of media: sniffing a type from bytes, sanitising names, reading the size
and storage settings."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from modula.config import Settings
from modula.media.images import ImageSize, parse_sizes
from modula.media.names import content_disposition, safe_filename
from modula.media.sniffing import allowed, served_inline, sniff
from modula.media.storage import storage_from_settings


def _image(format_: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format_)
    return out.getvalue()


@pytest.mark.parametrize("data, expected", [
    (_image("PNG"), "image/png"), (_image("JPEG"), "image/jpeg"), (_image("GIF"), "image/gif"),
    (_image("WEBP"), "image/webp"), (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    (b"<svg onload=alert(1)>", "image/svg+xml"), (b"\xef\xbb\xbf<!DOCTYPE html><p>hi", "text/html"),
    (b"  <script>alert(1)</script>", "text/html"), (b"just words, caf\xc3\xa9\n", "text/plain"),
    (b"<?xml version='1.0'?><feed/>", "application/xml"), (b"\x00\x01\x02binary", "application/octet-stream"),
])
def test_the_type_is_sniffed_from_the_first_bytes(data, expected):
    assert sniff(data) == expected


def test_allowed_types_take_families_and_active_types_are_never_inline():
    assert allowed("image/svg+xml", ("image/*",)) and not allowed("text/html", ("image/*", "text/plain"))
    assert served_inline("image/png") and not served_inline("image/svg+xml") and not served_inline("text/html")


@pytest.mark.parametrize("raw, expected", [
    ("cat.jpg", "cat.jpg"), ("../../etc/passwd", "passwd"), ("C:\\Users\\ann\\photo.png", "photo.png"),
    ("a\x00b\x1fc\u202e.png", "abc.png"), (".htaccess", "htaccess"), ("", "file"), ("...", "file"),
    ("what?#&%.txt", "what____.txt"), ("Café  menu .pdf", "Café menu .pdf"),
])
def test_file_names_are_sanitised(raw, expected):
    assert safe_filename(raw) == expected


def test_a_long_name_keeps_its_extension_within_the_limit():
    name = safe_filename("x" * 1000 + ".jpeg")
    assert len(name) == 120 and name.endswith(".jpeg")


def test_image_sizes_are_parsed_and_bad_ones_named():
    assert parse_sizes(("thumbnail:150x150:crop", "medium:800x", "tall:x600", "small-webp:300x300:crop:webp", "w:10x:webp")) == (
        ImageSize("thumbnail", 150, 150, True), ImageSize("medium", 800, None), ImageSize("tall", None, 600),
        ImageSize("small-webp", 300, 300, True, True), ImageSize("w", 10, None, False, True))
    for bad in ("thumb", "big:x", "wide:800x:crop", "zero:0x10", "Caps:10x10", "order:10x10:webp:crop", "w:10x:png"):
        with pytest.raises(ValueError, match="MODULA_MEDIA_SIZES"):
            parse_sizes((bad,))


def test_media_settings_come_from_the_environment(tmp_path: Path):
    settings = Settings.from_env({"MODULA_MEDIA_STORAGE": "Filesystem", "MODULA_MEDIA_DIR": str(tmp_path),
                                  "MODULA_MAX_UPLOAD_BYTES": "1024", "MODULA_MEDIA_TYPES": "image/png, application/pdf",
                                  "MODULA_MEDIA_SIZES": "", "MODULA_S3_BUCKET": "b"})
    assert (settings.media_storage, settings.media_dir, settings.max_upload_bytes) == ("filesystem", tmp_path, 1024)
    assert settings.media_types == ("image/png", "application/pdf") and settings.media_sizes == ()
    assert settings.s3_bucket == "b"
    assert storage_from_settings(settings).name == "filesystem"
    with pytest.raises(ValueError, match="choose one of database, filesystem, s3"):
        storage_from_settings(Settings(media_storage="ftp"))
    with pytest.raises(ValueError, match="MODULA_S3_BUCKET"):
        storage_from_settings(Settings(media_storage="s3"))


@pytest.mark.parametrize("name, fallback, encoded", [
    ("café ünï.jpg", "cafe uni.jpg", "caf%C3%A9%20%C3%BCn%C3%AF.jpg"),
    ('say "cheese" \\ now.jpg', "say _cheese_ _ now.jpg", "say%20%22cheese%22%20%5C%20now.jpg"),
    ("it's 猫.png", "it's _.png", "it%27s%20%E7%8C%AB.png"),
    ("猫", "_", "%E7%8C%AB"),
])
def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name(name, fallback, encoded):
    from urllib.parse import unquote

    header = content_disposition(name, inline=False)
    assert header == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert header.isascii()
    # filename* carries only RFC 8187 attr-chars and %XX, and decodes back to the name.
    assert re.fullmatch(r"[A-Za-z0-9!#$&+\-.^_`|~%]+", encoded) and unquote(encoded, errors="strict") == name
    assert content_disposition(name, inline=True).startswith("inline; ")
