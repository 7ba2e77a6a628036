"""The file pipeline for evidence: check what pupils send, clean it, store it by content.

Nothing here touches the database or Telegram (see `storage.media_files` for the rows). Every
refusal is a `MediaRefusedError` whose `reason` (`RefusalReason`) the bot layer turns into a
friendly, translated message; nothing is written to disk when a file is refused.

Images (`MediaStore.store_image`: photos Telegram compressed, and images sent as files)
 1. Size: empty -> EMPTY, over `max_bytes` (20 MB, Telegram's bot download limit) -> TOO_LARGE.
 2. Identify with `Image.open(formats=...)` limited to JPEG (and MPO, which Pillow reports
    for JPEGs with a multi-picture extension, as iPhones write for HDR gain maps), PNG, WebP,
    GIF, BMP, AVIF (Pillow's own plugin) and HEIF/HEIC (only when `pillow_heif` imports).
    The decoders of TIFF, SGI, FLI, JPEG 2000, TGA, PSD, ICO and the rest are never reached:
    fuzzing keeps finding crashes there and a school photo never needs them. Unidentified
    bytes are classified by their magic bytes: a known but unsupported image format ->
    UNSUPPORTED_FORMAT, HEIC without the plugin -> HEIC_UNSUPPORTED, the signature of an
    accepted format that still does not parse -> BROKEN, anything else -> NOT_AN_IMAGE.
 3. Pixels: width x height from the header is checked against `max_pixels` (40 MP) before a
    single pixel is decoded -> TOO_MANY_PIXELS. Pillow's own DecompressionBombError (and its
    warning, when a warnings filter turns it into an exception) maps to the same reason.
    `max_pixels` may not exceed `Image.MAX_IMAGE_PIXELS`, so any image Pillow would merely
    warn about is refused by our check straight after: the warning is, in effect, an error.
    We do not wrap decoding in `warnings.catch_warnings()`: it swaps process-global state
    and is not thread-safe before Python 3.14, and this pipeline runs in worker threads.
 4. Animation: an animated GIF, PNG (APNG), WebP or AVIF is refused (ANIMATED) rather than
    silently cut to its first frame; Telegram sends real animations as MP4 anyway, so the bot
    can ask for a video. MPO and multi-image HEIF are stills: their primary image is used.
 5. Decode. JPEGs larger than `max_side` use Pillow's draft mode: libjpeg scales by 1/2, 1/4
    or 1/8 while decoding, so a 12 MP photo decodes as 3 MP. The scale is chosen so the long
    side stays at least 90% of `max_side`: a 4032 px phone photo becomes 2016 px, not 2048,
    an invisible difference that halves the time (see `python -m bench images`). Other
    formats get the same rule through a whole-factor box reduction before any Lanczos
    resize, so a 12 MP HEIC or PNG also ends at 2016 px, and cheaply. Truncated
    data -> TRUNCATED (`ImageFile.LOAD_TRUNCATED_IMAGES` stays off), other decoder errors ->
    BROKEN. Decoders of hostile files raise all kinds of exceptions, so every exception from
    the decoding step becomes a refusal instead of a crash.
 6. Clean: normalise the mode (16-bit to 8-bit, palettes expanded), downscale to `max_side`,
    convert an embedded ICC profile to sRGB (profiles can carry text and device details, so
    none is kept; a profile that fails to parse is dropped, costing only colour accuracy),
    flatten transparency onto white, and apply the EXIF orientation. Orientation is read
    with a guard and applied with the same transposes as `ImageOps.exif_transpose`, because
    that function copies EXIF back into `info` and broken EXIF must not refuse a photo.
    `info` is cleared before saving: Pillow writes `info["comment"]`, XMP and ICC back.
 7. Encode as JPEG, quality 85 (thumbnail: 320 px, quality 80). Decision: every image is
    stored as a JPEG, also a transparent PNG (composited onto white, i.e. paper): one format
    that Telegram's sendPhoto, browsers and PDF exports all take, small, and Telegram turns
    every photo into a JPEG anyway. Nothing of the source file survives: no EXIF (GPS,
    camera serial), XMP, IPTC/Photoshop, ICC or comments.
 8. `keep_original=True` also stores the full-resolution picture as an extra file, but
    re-encoded (quality 92) and clean, not the original bytes: those carry the GPS position
    of wherever the pupil was, which a school portfolio must never keep. It is only made
    when the image is larger than `max_side` (otherwise it would equal the main image).

Other files (`MediaStore.store_file`: documents, voice messages, videos) get a size check and
a type check by magic bytes, with an allow-list per kind, and are then cleaned of metadata:
 - DOCUMENT: PDF (must start with `%PDF-`), UTF-8 plain text, DOCX/PPTX/XLSX (zip with the
   OOXML main part; macro-enabled files with a vbaProject.bin are refused), ODT/ODP/ODS (zip
   whose first entry is the ODF `mimetype`), MP3/OGG/M4A audio, MP4/MOV/WebM video.
 - VOICE: OGG (Opus/Vorbis), MP3, M4A. VIDEO: MP4, MOV (iPhones), WebM (Android recorders).
 Image bytes are refused with IS_IMAGE: they must go through `store_image` so their metadata
 is stripped; the bot routes an image sent as a file with `looks_like_image()`. When the
 declared MIME type or the file name's extension claims a type we know and the bytes are of
 another family (a "PDF" that is a zip) the file is refused with TYPE_MISMATCH. Then
 `media.metadata.clean_file` takes the metadata out of MP4/MOV/M4A (location, device,
 dates; in place, so the video still plays), PDF (author, tools, dates, XMP) and
 DOCX/XLSX/PPTX (document properties); a file it cannot clean is refused (CANNOT_CLEAN,
 PASSWORD_PROTECTED, UNPACKS_TOO_LARGE). Plain text, OpenDocument files, MP3/OGG audio and
 WebM are stored as sent (see that module). A video longer than `max_duration_seconds` (by
 Telegram's word or its own `mvhd`) is refused with TOO_LONG. `store_thumbnail` stores only
 the thumbnail of an image, for Telegram's thumbnail of a video.

Storage: content-addressed under `root` as `ab/cd/<sha256>.<ext>`, the sha256 of the STORED
(cleaned) bytes; the extension follows from the stored MIME type, so `relative_path_for` is a pure
function of the `media_file` row. Files are written to a temporary file in the target folder,
fsynced and renamed into place before the caller commits the row, so a row never points at a
half-written file; a crash in between leaves an orphan that `sweep_orphans` removes after a
grace period. Identical uploads share one file; storing an existing file refreshes its mtime
so the sweep's grace period protects it until the new row is committed. All decoding, hashing
and disk work runs in `asyncio.to_thread`, at most `max_concurrent` images at a time (a 40 MP
image needs some hundreds of MB while it is processed).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import hashlib
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

from storage.models import MediaKind

__all__ = [
    "EXTENSIONS",
    "ImageOptions",
    "MediaRefusedError",
    "MediaStore",
    "PreparedImage",
    "RefusalReason",
    "StoredFile",
    "StoredImage",
    "StoredVideo",
    "heif_available",
    "identify_file",
    "looks_like_image",
    "prepare_image",
    "relative_path_for",
    "sniff_mime",
]

MAX_BYTES: Final = 20 * 1024 * 1024
MAX_SIDE: Final = 2048
THUMB_SIDE: Final = 320
MAX_PIXELS: Final = 40_000_000
JPEG_QUALITY: Final = 85
THUMB_QUALITY: Final = 80
ORIGINAL_QUALITY: Final = 92
# Draft mode and whole-factor reduction may land this far below max_side (docstring, step 5).
DRAFT_SLACK: Final = 0.9


class RefusalReason(enum.StrEnum):
    """Why a file was not stored. Stable values: the bot layer picks a message by them."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"
    BROKEN = "broken"
    ANIMATED = "animated"
    HEIC_UNSUPPORTED = "heic_unsupported"
    TYPE_MISMATCH = "type_mismatch"
    IS_IMAGE = "is_image"
    CANNOT_CLEAN = "cannot_clean"
    PASSWORD_PROTECTED = "password_protected"
    UNPACKS_TOO_LARGE = "unpacks_too_large"
    TOO_LONG = "too_long"


class MediaRefusedError(Exception):
    """A file was refused; `reason` is for the user, `detail` only for logs, `limit` the
    number the user may hear (the longest video, in seconds, for TOO_LONG)."""

    def __init__(
        self, reason: RefusalReason, detail: str = "", *, limit: int | None = None
    ) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.limit = limit


# --- types and paths ---------------------------------------------------------------------------

# Canonical MIME type -> extension of the stored file. The path of a stored file is derived
# from (sha256, MIME type), so an entry may be added but never changed once files exist.
EXTENSIONS: Final = MappingProxyType(
    {
        "image/jpeg": "jpg",
        "application/pdf": "pdf",
        "text/plain": "txt",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "application/vnd.oasis.opendocument.text": "odt",
        "application/vnd.oasis.opendocument.presentation": "odp",
        "application/vnd.oasis.opendocument.spreadsheet": "ods",
        "audio/mpeg": "mp3",
        "audio/ogg": "ogg",
        "audio/mp4": "m4a",
        "video/mp4": "mp4",
        "video/quicktime": "mov",
        "video/webm": "webm",
    }
)

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ODF_TYPES: Final = frozenset(
    {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
_AUDIO: Final = frozenset({"audio/mpeg", "audio/ogg", "audio/mp4"})
_VIDEO: Final = frozenset({"video/mp4", "video/quicktime", "video/webm"})
ALLOWED_TYPES: Final = MappingProxyType(
    {
        MediaKind.DOCUMENT: frozenset(
            {"application/pdf", "text/plain", _DOCX, _PPTX, _XLSX, *_ODF_TYPES, *_AUDIO, *_VIDEO}
        ),
        MediaKind.VOICE: _AUDIO,
        MediaKind.VIDEO: _VIDEO,
    }
)

# Types whose mutual "mismatch" means nothing (an .m4a labelled video/mp4 is the same
# container) share a family; a declared type is only held against the bytes across families.
_FAMILIES: Final = MappingProxyType(
    {
        "application/pdf": "pdf",
        "text/plain": "text",
        _DOCX: "office",
        _PPTX: "office",
        _XLSX: "office",
        **dict.fromkeys(_ODF_TYPES, "office"),
        "audio/mpeg": "mp3",
        "audio/ogg": "ogg",
        "audio/mp4": "isobmff",
        "video/mp4": "isobmff",
        "video/quicktime": "isobmff",
        "video/webm": "webm",
    }
)
_DECLARED_ALIASES: Final = MappingProxyType(
    {
        "application/x-pdf": "application/pdf",
        "text/csv": "text/plain",
        "text/markdown": "text/plain",
        "audio/mp3": "audio/mpeg",
        "audio/x-mpeg": "audio/mpeg",
        "audio/opus": "audio/ogg",
        "application/ogg": "audio/ogg",
        "audio/x-m4a": "audio/mp4",
        "audio/m4a": "audio/mp4",
        "audio/aac": "audio/mp4",
        "video/x-m4v": "video/mp4",
        "video/mov": "video/quicktime",
    }
)
_EXTENSION_CLAIMS: Final = MappingProxyType(
    {
        "pdf": "application/pdf",
        "txt": "text/plain",
        "csv": "text/plain",
        "md": "text/plain",
        "docx": _DOCX,
        "pptx": _PPTX,
        "xlsx": _XLSX,
        "odt": "application/vnd.oasis.opendocument.text",
        "odp": "application/vnd.oasis.opendocument.presentation",
        "ods": "application/vnd.oasis.opendocument.spreadsheet",
        "mp3": "audio/mpeg",
        "ogg": "audio/ogg",
        "oga": "audio/ogg",
        "opus": "audio/ogg",
        "m4a": "audio/mp4",
        "mp4": "video/mp4",
        "m4v": "video/mp4",
        "mov": "video/quicktime",
        "webm": "video/webm",
        **dict.fromkeys(
            ("jpg", "jpeg", "png", "gif", "webp", "bmp", "heic", "heif", "avif"), "image/*"
        ),
    }
)
# Unrecognised bytes named like these are an image format we refuse, not "not an image".
_UNSUPPORTED_IMAGE_EXTENSIONS: Final = frozenset(
    {"tif", "tiff", "tga", "psd", "sgi", "rgb", "fli", "flc", "j2k", "jp2", "jpf", "ico", "cur"}
    | {"dds", "pcx", "ppm", "pgm", "pbm", "xcf", "svg", "raw", "dng", "cr2", "nef", "arw"}
)

_STORED_NAME = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{1,5}")
_RELATIVE_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.[a-z0-9]{1,5}")
TEMP_PREFIX: Final = ".tmp-"


def relative_path_for(sha256: str, mime_type: str) -> str:
    """Where a stored file lives under the media root: `ab/cd/abcd....ext`."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a sha256 hex digest")
    extension = EXTENSIONS.get(mime_type, "bin")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def is_stored_name(name: str) -> bool:
    """Whether a file name is one this module writes (the orphan sweep touches nothing else)."""
    return _STORED_NAME.fullmatch(name) is not None


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


class MediaRef(Protocol):
    """Anything that names a stored file: a `StoredFile` or a `MediaFile` row."""

    @property
    def sha256(self) -> str: ...

    @property
    def mime_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file on disk, as `storage.media_files.record_media` needs it for its row."""

    sha256: str
    relative_path: str
    kind: MediaKind
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A stored image: the main picture, its thumbnail and, if kept, the full resolution."""

    image: StoredFile
    thumbnail: StoredFile
    original: StoredFile | None
    source_format: str

    @property
    def files(self) -> tuple[StoredFile, ...]:
        kept = (self.original,) if self.original is not None else ()
        return (self.image, self.thumbnail, *kept)


@dataclass(frozen=True, slots=True)
class StoredVideo:
    """A stored video and, when Telegram made one, its cleaned thumbnail."""

    video: StoredFile
    thumbnail: StoredFile | None


@dataclass(frozen=True, slots=True)
class EncodedImage:
    data: bytes
    width: int
    height: int
    mime_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """The cleaned bytes of an image, before they are written anywhere."""

    image: EncodedImage
    thumbnail: EncodedImage
    original: EncodedImage | None
    source_format: str


# --- sniffing by magic bytes ---------------------------------------------------------------


def _ftyp_brands(data: bytes) -> list[bytes]:
    """The major and compatible brands of an ISO base media file (MP4, MOV, HEIF, AVIF)."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return []
    box_size = int.from_bytes(data[0:4], "big")
    end = min(max(box_size, 16), len(data), 256)
    return [data[8:12]] + [data[i : i + 4] for i in range(16, end - 3, 4)]


_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1", b"heif"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_M4A_BRANDS: Final = frozenset({b"M4A ", b"M4B ", b"M4P "})


def _sniff_isobmff(data: bytes) -> str | None:
    brands = _ftyp_brands(data)
    if not brands:
        return None
    if brands[0] in _AVIF_BRANDS or (
        brands[0] in _HEIF_GENERIC_BRANDS and _AVIF_BRANDS & {*brands}
    ):
        return "image/avif"
    if {*brands} & (_HEIF_BRANDS | _HEIF_GENERIC_BRANDS):
        return "image/heic"
    if brands[0] in _M4A_BRANDS:
        return "audio/mp4"
    if brands[0] == b"qt  ":
        return "video/quicktime"
    # isom, iso2..iso6, mp41, mp42, avc1, 3gp*, M4V, dash, ...: phones use many brands.
    return "video/mp4"


def _sniff_image(data: bytes) -> str | None:
    """The image type of `data` by its signature, including formats we refuse."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    # "BM" alone is too weak (a text starting with "BMX"): also require a BMP header size.
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in {
        12,
        40,
        52,
        56,
        64,
        108,
        124,
    }:
        return "image/bmp"
    isobmff = _sniff_isobmff(data)
    if isobmff is not None and isobmff.startswith("image/"):
        return isobmff
    signatures: tuple[tuple[bytes, str], ...] = (
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"II+\x00", "image/tiff"),
        (b"8BPS", "image/vnd.adobe.photoshop"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
        (b"\xffO\xffQ", "image/j2k"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"\x00\x00\x02\x00", "image/x-icon"),
        (b"\x01\xda", "image/sgi"),
        (b"DDS ", "image/vnd.ms-dds"),
        (b"icns", "image/icns"),
        (b"qoif", "image/qoi"),
        (b"gimp xcf", "image/x-xcf"),
    )
    for signature, mime in signatures:
        if head.startswith(signature):
            return mime
    # FLI/FLC keep their magic number at offset 4.
    if len(head) >= 16 and head[4:6] in (b"\x11\xaf", b"\x12\xaf"):
        return "image/flic"
    return None


def looks_like_image(data: bytes) -> bool:
    """Whether bytes carry an image signature, supported or not: the bot layer uses it to
    route an image sent as a file to `store_image`. Cheap: only the first bytes are read."""
    return _sniff_image(data[:256]) is not None


def _sniff_zip(data: bytes) -> str | None:
    # ODF puts an uncompressed "mimetype" entry first, so its type sits at a fixed offset.
    if data[30:38] == b"mimetype":
        for mime in _ODF_TYPES:
            if data[38 : 38 + len(mime)] == mime.encode():
                return mime
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        return None  # macros: not evidence, and a classic way in for malware
    if "word/document.xml" in names:
        return _DOCX
    if "ppt/presentation.xml" in names:
        return _PPTX
    if "xl/workbook.xml" in names:
        return _XLSX
    return None


def _looks_like_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(ord(char) < 32 and char not in "\t\n\r\f" for char in text)


def sniff_mime(data: bytes) -> str | None:
    """The canonical MIME type of `data` judged by its bytes, or None when unknown.

    Images come back as their image type (also unsupported ones such as image/tiff).
    Zip containers are opened to tell DOCX from PPTX (only the directory is read).
    """
    image = _sniff_image(data)
    if image is not None:
        return image
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    isobmff = _sniff_isobmff(data)
    if isobmff is not None:
        return isobmff
    if data.startswith(b"OggS"):
        # The first page carries the codec's identification header.
        if data[28:36] == b"OpusHead" or data[28:35] == b"\x01vorbis":
            return "audio/ogg"
        return None
    if data.startswith(b"ID3") or (
        len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06 == 0x02
    ):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio layer III frame header
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:64] else None
    if _looks_like_text(data):
        return "text/plain"
    return None


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].strip().lower()


def _claimed_families(declared_mime: str | None, filename: str | None) -> set[str]:
    claims: set[str] = set()
    if declared_mime:
        mime = declared_mime.split(";", 1)[0].strip().lower()
        mime = _DECLARED_ALIASES.get(mime, mime)
        if mime.startswith("image/"):
            claims.add("image")
        elif mime in _FAMILIES:
            claims.add(_FAMILIES[mime])
    claimed = _EXTENSION_CLAIMS.get(_extension(filename))
    if claimed == "image/*":
        claims.add("image")
    elif claimed is not None:
        claims.add(_FAMILIES[claimed])
    return claims


def identify_file(
    data: bytes,
    *,
    kind: MediaKind,
    declared_mime: str | None = None,
    filename: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> str:
    """The canonical MIME type under which `data` may be stored as `kind`, or a refusal."""
    if kind not in ALLOWED_TYPES:
        raise ValueError(f"{kind} is not stored with store_file")
    _check_size(data, max_bytes)
    sniffed = sniff_mime(data)
    if sniffed is not None and sniffed.startswith("image/"):
        raise MediaRefusedError(RefusalReason.IS_IMAGE, sniffed)
    claims = _claimed_families(declared_mime, filename)
    family = _FAMILIES.get(sniffed) if sniffed else None
    # Bytes of one known type claimed as another, or unknown bytes claiming a type that has a
    # signature (a "PDF" not starting with %PDF-). Text has no signature: a Latin-1 .txt is
    # unsupported, not a lie.
    if (family is not None and claims - {family}) or (family is None and claims - {"text"}):
        raise MediaRefusedError(
            RefusalReason.TYPE_MISMATCH, f"claimed {sorted(claims)}, bytes are {sniffed}"
        )
    if sniffed is None or sniffed not in ALLOWED_TYPES[kind]:
        raise MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, f"{sniffed} as {kind}")
    return sniffed


def _check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise MediaRefusedError(RefusalReason.EMPTY)
    if len(data) > max_bytes:
        raise MediaRefusedError(RefusalReason.TOO_LARGE, f"{len(data)} bytes")


# --- images ------------------------------------------------------------------------------------


@functools.cache
def heif_available() -> bool:
    """Whether HEIF/HEIC (iPhone photos) can be opened; registers the plugin once."""
    try:
        import pillow_heif  # optional: without it HEIC is refused
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@functools.cache
def _available_formats(*, heif: bool) -> tuple[str, ...]:
    Image.init()  # registers plugins so names resolve; only `formats` are ever tried
    wanted = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF"]
    if heif and heif_available():
        wanted.append("HEIF")
    return tuple(name for name in wanted if name in Image.OPEN)


# Formats whose multi-frame files are animations (refused); MPO and HEIF hold stills.
_ANIMATABLE: Final = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
# What `Image.open(formats=...)` may report: jpeg_factory turns some JPEGs into MPO.
_FORMAT_ALIASES: Final = MappingProxyType({"MPO": "JPEG"})
_MIME_OF_FORMAT: Final = MappingProxyType(
    {
        "JPEG": "image/jpeg",
        "PNG": "image/png",
        "WEBP": "image/webp",
        "GIF": "image/gif",
        "BMP": "image/bmp",
        "AVIF": "image/avif",
        "HEIF": "image/heic",
    }
)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    max_side: int = MAX_SIDE
    thumb_side: int = THUMB_SIDE
    max_pixels: int = MAX_PIXELS
    max_bytes: int = MAX_BYTES
    keep_original: bool = False
    quality: int = JPEG_QUALITY
    thumb_quality: int = THUMB_QUALITY
    original_quality: int = ORIGINAL_QUALITY
    heif: bool = True

    def __post_init__(self) -> None:
        if self.max_side < 1 or self.thumb_side < 1 or self.max_pixels < 1:
            raise ValueError("sides and max_pixels must be positive")
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None and self.max_pixels > pillow_limit:
            # Above Pillow's limit its DecompressionBombWarning would only warn; see step 3.
            raise ValueError(f"max_pixels may not exceed Image.MAX_IMAGE_PIXELS ({pillow_limit})")

    @property
    def formats(self) -> tuple[str, ...]:
        return _available_formats(heif=self.heif)


def _unidentified(data: bytes, filename: str | None, options: ImageOptions) -> MediaRefusedError:
    """Why Pillow, limited to our formats, did not recognise the bytes."""
    mime = _sniff_image(data)
    if mime == "image/heic" and "HEIF" not in options.formats:
        return MediaRefusedError(RefusalReason.HEIC_UNSUPPORTED)
    accepted = {_MIME_OF_FORMAT[name] for name in options.formats}
    if mime in accepted:
        return MediaRefusedError(RefusalReason.BROKEN, f"{mime} signature, header unreadable")
    if mime is not None:
        return MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, mime)
    if _extension(filename) in _UNSUPPORTED_IMAGE_EXTENSIONS:
        return MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, _extension(filename))
    return MediaRefusedError(RefusalReason.NOT_AN_IMAGE, repr(data[:8]))


def _decode_refusal(error: BaseException) -> MediaRefusedError:
    if isinstance(error, MediaRefusedError):
        return error
    if isinstance(error, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return MediaRefusedError(RefusalReason.TOO_MANY_PIXELS, str(error))
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, EOFError) or "truncated" in str(error).lower():
        return MediaRefusedError(RefusalReason.TRUNCATED, detail)
    return MediaRefusedError(RefusalReason.BROKEN, detail)


def _draft_scale(long_side: int, max_side: int) -> int:
    """The largest JPEG DCT scale that keeps the long side within DRAFT_SLACK of max_side."""
    floor = max(1, int(max_side * DRAFT_SLACK))
    for scale in (8, 4, 2):
        if -(-long_side // scale) >= floor:
            return scale
    return 1


def _orientation(image: Image.Image) -> int:
    # Broken EXIF (bad offsets, wrong types) must not refuse a photo: treat it as upright.
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_TRANSPOSE_FOR_ORIENTATION: Final = MappingProxyType(
    {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
)


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or CMYK: the modes the later steps (resize, ICC, JPEG) handle well."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        # A plain convert("L") clips 16-bit values at 255, turning the picture white.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in image.info:
        return image if mode == "RGBA" else image.convert("RGBA")
    if mode in ("RGB", "L", "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")


def _fit(
    image: Image.Image, side: int, *, slack: float | None = None, reducing_gap: float = 3.0
) -> Image.Image:
    """Downscale to at most `side` px on the long side; with `slack`, first by a whole factor
    when that keeps the long side within `slack` of `side` (as draft mode does for JPEG)."""
    if max(image.size) <= side:
        return image
    if slack is not None:
        factor = max(image.size) // max(1, int(side * slack))
        if factor >= 2:
            # A box reduction by a whole factor is cheap and alias-free: a 12 MP HEIC or PNG
            # goes to 2016 px in a tenth of the time of Lanczos to 2048.
            image = image.reduce(factor)
            if max(image.size) <= side:
                return image
    width, height = image.size
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap lets Pillow box-reduce first: close to Lanczos quality at a fraction of it.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=reducing_gap)


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    return ImageCms.getProfileDescription(profile).strip().lower().startswith("srgb")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        return image  # a grey profile only shifts the tone curve a little: dropped
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image.mode == "CMYK" or not _is_srgb(source):
                converted = ImageCms.profileToProfile(
                    image,
                    source,
                    ImageCms.createProfile("sRGB"),
                    outputMode="RGBA" if image.mode == "RGBA" else "RGB",
                )
                if converted is not None:
                    return converted
        except Exception:
            pass  # a broken profile costs colour accuracy, not the photo
    return image.convert("RGB") if image.mode == "CMYK" else image


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    alpha = image.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return image.convert("RGB")
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=alpha)
    return background


def _finish(image: Image.Image, *, icc: bytes | None, orientation: int) -> Image.Image:
    image = _flatten(_to_srgb(image, icc))
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if method is not None:
        image = image.transpose(method)
    return image


def _encode_jpeg(image: Image.Image, quality: int) -> EncodedImage:
    # Pillow copies `info` through every operation and writes its comment, XMP and ICC back
    # on save; cleared, only our pixels (and a bare JFIF header) are written.
    image.info.clear()
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return EncodedImage(buffer.getvalue(), image.width, image.height)


def prepare_image(
    data: bytes, *, options: ImageOptions | None = None, filename: str | None = None
) -> PreparedImage:
    """Check, clean and encode an image (CPU-bound: call it in a worker thread).

    `filename` only refines the reason when the bytes are not recognised at all.
    Raises MediaRefusedError, and nothing else for any input bytes.
    """
    options = options or ImageOptions()
    _check_size(data, options.max_bytes)
    formats = options.formats
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except UnidentifiedImageError:
        raise _unidentified(data, filename, options) from None
    except Exception as error:
        # Header parsers of hostile files raise many types; all of them are a refusal.
        raise _decode_refusal(error) from error
    with image:
        try:
            return _prepare_opened(image, options)
        except Exception as error:
            raise _decode_refusal(error) from error


def _prepare_opened(image: ImageFile.ImageFile, options: ImageOptions) -> PreparedImage:
    source_format = _FORMAT_ALIASES.get(image.format or "", image.format or "")
    if source_format not in options.formats:
        raise MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, str(image.format))
    width, height = image.size
    if width < 1 or height < 1:
        raise MediaRefusedError(RefusalReason.BROKEN, f"size {image.size}")
    if width * height > options.max_pixels:
        raise MediaRefusedError(RefusalReason.TOO_MANY_PIXELS, f"{width}x{height}")
    if source_format in _ANIMATABLE and getattr(image, "is_animated", False):
        raise MediaRefusedError(RefusalReason.ANIMATED, source_format)

    long_side = max(width, height)
    keep_full = options.keep_original and long_side > options.max_side
    if source_format == "JPEG" and not keep_full and long_side > options.max_side:
        scale = _draft_scale(long_side, options.max_side)
        if scale > 1:
            image.draft("RGB", (max(1, width // scale), max(1, height // scale)))
    image.load()

    orientation = _orientation(image)
    icc = image.info.get("icc_profile")
    icc = icc if isinstance(icc, bytes) else None
    pixels = _normalise_mode(image)

    original: EncodedImage | None = None
    if keep_full:
        full = _finish(pixels, icc=icc, orientation=orientation)
        original = _encode_jpeg(full, options.original_quality)
        main = _fit(full, options.max_side, slack=DRAFT_SLACK)
    else:
        fitted = _fit(pixels, options.max_side, slack=DRAFT_SLACK)
        main = _finish(fitted, icc=icc, orientation=orientation)
    # Pillow's thumbnail() gap: at 320 px the coarser box reduction is invisible, and cheaper.
    thumbnail = _fit(main, options.thumb_side, reducing_gap=2.0)
    return PreparedImage(
        image=_encode_jpeg(main, options.quality),
        thumbnail=_encode_jpeg(thumbnail, options.thumb_quality),
        original=original,
        source_format=source_format,
    )


# --- the store ---------------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; not every platform allows it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(root: Path, relative_path: str, data: bytes) -> None:
    """Put `data` at root/relative_path via a synced temporary file and a rename."""
    target = root / relative_path
    if target.exists():
        # Content-addressed: the file is complete already. A fresh mtime keeps the orphan
        # sweep away from it until the caller's new row is committed.
        with contextlib.suppress(OSError):
            os.utime(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


class MediaStore:
    """The media directory: stores cleaned images and checked, cleaned files by their sha256."""

    def __init__(
        self,
        root: Path,
        *,
        max_side: int = MAX_SIDE,
        thumb_side: int = THUMB_SIDE,
        max_pixels: int = MAX_PIXELS,
        max_bytes: int = MAX_BYTES,
        keep_original: bool = False,
        heif: bool = True,
        max_concurrent: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.options = ImageOptions(
            max_side=max_side,
            thumb_side=thumb_side,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            keep_original=keep_original,
            heif=heif,
        )
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 2)

    async def store_image(self, data: bytes, *, filename: str | None = None) -> StoredImage:
        """Clean and store an image (a photo, or an image sent as a file)."""
        _check_size(data, self.options.max_bytes)
        async with self._slots:
            return await asyncio.to_thread(self._store_image_sync, data, filename)

    async def store_thumbnail(self, data: bytes) -> StoredFile:
        """Clean and store only the small picture of an image (Telegram's thumbnail of a
        video): the full-size image would be a file nobody uses."""
        _check_size(data, self.options.max_bytes)
        async with self._slots:
            return await asyncio.to_thread(self._store_thumbnail_sync, data)

    async def store_file(
        self,
        data: bytes,
        *,
        kind: MediaKind,
        filename: str | None = None,
        declared_mime: str | None = None,
        duration_seconds: int | None = None,
        max_duration_seconds: int | None = None,
    ) -> StoredFile:
        """Store a document, voice message or video after checking and cleaning it.

        `duration_seconds` is what Telegram said; without it the file's own is recorded.
        Longer than `max_duration_seconds` (either way) is refused with TOO_LONG."""
        if kind not in ALLOWED_TYPES:
            raise ValueError(f"{kind} is not stored with store_file; use store_image")
        _check_size(data, self.options.max_bytes)
        return await asyncio.to_thread(
            self._store_file_sync,
            data,
            kind,
            filename,
            declared_mime,
            duration_seconds,
            max_duration_seconds,
        )

    def path_of(self, ref: MediaRef | str) -> Path:
        """The absolute path of a stored file, from a StoredFile, MediaFile or relative path."""
        if isinstance(ref, str):
            match = _RELATIVE_PATH.fullmatch(ref)
            if match is None or match[3][:2] != match[1] or match[3][2:4] != match[2]:
                raise ValueError("not a stored media path")
            return self.root / ref
        return self.root / relative_path_for(ref.sha256, ref.mime_type)

    async def read(self, relative_path: str) -> bytes:
        return await asyncio.to_thread(self.path_of(relative_path).read_bytes)

    def _store_image_sync(self, data: bytes, filename: str | None) -> StoredImage:
        prepared = prepare_image(data, options=self.options, filename=filename)
        image = self._put(prepared.image, MediaKind.IMAGE)
        thumbnail = self._put(prepared.thumbnail, MediaKind.THUMBNAIL)
        original = None
        if prepared.original is not None:
            original = self._put(prepared.original, MediaKind.IMAGE)
        return StoredImage(image, thumbnail, original, prepared.source_format)

    def _store_thumbnail_sync(self, data: bytes) -> StoredFile:
        prepared = prepare_image(data, options=self.options)
        return self._put(prepared.thumbnail, MediaKind.THUMBNAIL)

    def _store_file_sync(
        self,
        data: bytes,
        kind: MediaKind,
        filename: str | None,
        declared_mime: str | None,
        duration_seconds: int | None,
        max_duration_seconds: int | None,
    ) -> StoredFile:
        # Imported here: storage.file_metadata builds on this module's refusals.
        from media.metadata import clean_file

        mime_type = identify_file(
            data,
            kind=kind,
            declared_mime=declared_mime,
            filename=filename,
            max_bytes=self.options.max_bytes,
        )
        cleaned = clean_file(data, mime_type)
        known = [d for d in (duration_seconds, cleaned.duration_seconds) if d is not None]
        if max_duration_seconds is not None and known and max(known) > max_duration_seconds:
            raise MediaRefusedError(
                RefusalReason.TOO_LONG, f"{max(known)} s", limit=max_duration_seconds
            )
        return self._write(
            cleaned.data,
            kind,
            mime_type,
            duration_seconds=duration_seconds
            if duration_seconds is not None
            else cleaned.duration_seconds,
        )

    def _put(self, encoded: EncodedImage, kind: MediaKind) -> StoredFile:
        return self._write(
            encoded.data, kind, encoded.mime_type, width=encoded.width, height=encoded.height
        )

    def _write(
        self,
        data: bytes,
        kind: MediaKind,
        mime_type: str,
        *,
        width: int | None = None,
        height: int | None = None,
        duration_seconds: int | None = None,
    ) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        relative_path = relative_path_for(sha256, mime_type)
        write_atomically(self.root, relative_path, data)
        return StoredFile(
            sha256=sha256,
            relative_path=relative_path,
            kind=kind,
            mime_type=mime_type,
            size_bytes=len(data),
            width=width,
            height=height,
            duration_seconds=duration_seconds,
        )
