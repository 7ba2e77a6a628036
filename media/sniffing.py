"""What kind of file is this: judged by its bytes, never by its name.

`sniff_mime` names the type of some bytes by their magic numbers (zip containers are opened
to tell DOCX from PPTX; only the directory is read), `looks_like_image` says whether bytes
carry any image signature, supported or not, and `identify_file` decides under which type a
document, voice message or video may be stored, with an allow-list per kind:
 - DOCUMENT: PDF (must start with `%PDF-`), UTF-8 plain text, DOCX/PPTX/XLSX (zip with the
   OOXML main part), ODT/ODP/ODS (zip whose first entry is the ODF `mimetype`), MP3/OGG/M4A
   audio, MP4/MOV/WebM video. Macros in Office files are judged while the file is cleaned
   (`media.metadata`), where every part is read anyway.
 - VOICE: OGG (Opus/Vorbis), MP3, M4A. VIDEO: MP4, MOV (iPhones), WebM (Android recorders).
Image bytes are refused with IS_IMAGE: they must go through the image pipeline
(`media.images`) so their metadata is stripped; the bot routes an image sent as a file with
`looks_like_image()`. What a computer would run is refused with ACTIVE_CONTENT, whatever the
name says: text that is a web page, an SVG or XML document, or a script (`#!`, `@echo`), and
programs (Windows, Linux and macOS executables, Java classes, shortcuts, compiled help).
Text that is none of these is kept, and always passed on as `.txt` (`media.store`), so no
computer runs it, whatever it says. When the declared MIME type or the file name's extension
claims a type we know and the bytes are of another family (a "PDF" that is a zip) the file is
refused with TYPE_MISMATCH.
"""

from __future__ import annotations

import io
import re
import zipfile
from types import MappingProxyType
from typing import Final

from media.refusals import MAX_BYTES, MediaRefusedError, RefusalReason, check_size
from storage.models import MediaKind

__all__ = [
    "ACTIVE_TYPES",
    "ALLOWED_TYPES",
    "DOCX",
    "ODF_TYPES",
    "PPTX",
    "UNSUPPORTED_IMAGE_EXTENSIONS",
    "XLSX",
    "file_extension",
    "identify_file",
    "looks_like_image",
    "sniff_image",
    "sniff_mime",
]

# The Office Open XML types, by the names people know them by.
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX: Final = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODF_TYPES: Final = frozenset(
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
            {"application/pdf", "text/plain", DOCX, PPTX, XLSX, *ODF_TYPES, *_AUDIO, *_VIDEO}
        ),
        MediaKind.VOICE: _AUDIO,
        MediaKind.VIDEO: _VIDEO,
    }
)

# What a browser, a viewer or the computer itself would run: refused with ACTIVE_CONTENT.
ACTIVE_TYPES: Final = frozenset(
    {
        "text/html",
        "image/svg+xml",
        "application/xml",
        "text/x-script",
        "application/x-msdownload",
        "application/x-executable",
        "application/x-mach-binary",
        "application/java-vm",
        "application/x-ms-shortcut",
        "application/vnd.ms-htmlhelp",
        "application/wasm",
    }
)

# Types whose mutual "mismatch" means nothing (an .m4a labelled video/mp4 is the same
# container) share a family; a declared type is only held against the bytes across families.
_FAMILIES: Final = MappingProxyType(
    {
        "application/pdf": "pdf",
        "text/plain": "text",
        DOCX: "office",
        PPTX: "office",
        XLSX: "office",
        **dict.fromkeys(ODF_TYPES, "office"),
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
        "docx": DOCX,
        "pptx": PPTX,
        "xlsx": XLSX,
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
UNSUPPORTED_IMAGE_EXTENSIONS: Final = frozenset(
    {"tif", "tiff", "tga", "psd", "sgi", "rgb", "fli", "flc", "j2k", "jp2", "jpf", "ico", "cur"}
    | {"dds", "pcx", "ppm", "pgm", "pbm", "xcf", "svg", "raw", "dng", "cr2", "nef", "arw"}
)


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


def sniff_image(data: bytes) -> str | None:
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
    return sniff_image(data[:256]) is not None


def _sniff_zip(data: bytes) -> str | None:
    # ODF puts an uncompressed "mimetype" entry first, so its type sits at a fixed offset.
    if data[30:38] == b"mimetype":
        for mime in ODF_TYPES:
            if data[38 : 38 + len(mime)] == mime.encode():
                return mime
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return DOCX
    if "ppt/presentation.xml" in names:
        return PPTX
    if "xl/workbook.xml" in names:
        return XLSX
    return None


# Markup at the start ("<!DOCTYPE", "<?xml", "<html", "<svg"; not "<3"), or the elements that
# make a text a web page or a picture that runs code, wherever they are.
_MARKUP_START: Final = re.compile(r"\s*<[!?a-zA-Z]")
_ACTIVE_MARKUP: Final = re.compile(
    r"<\s*(?:script|html|iframe|object|embed|\?xml|!doctype)\b", re.IGNORECASE
)
_SVG: Final = re.compile(r"<\s*svg\b", re.IGNORECASE)
_SCRIPT_START: Final = re.compile(r"\s*(?:#!|@\s*echo\b)", re.IGNORECASE)


def _sniff_text(data: bytes) -> str | None:
    """text/plain for UTF-8 text, the active type for markup and scripts, None for others."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if any(ord(char) < 32 and char not in "\t\n\r\f" for char in text):
        return None
    if _SVG.search(text):
        return "image/svg+xml"
    if _MARKUP_START.match(text):
        return "application/xml" if text.lstrip().startswith("<?") else "text/html"
    if _ACTIVE_MARKUP.search(text):
        return "text/html"
    if _SCRIPT_START.match(text):
        return "text/x-script"
    return "text/plain"


# Programs by their magic numbers. They are never text (they all hold NUL bytes), so they are
# only looked for in bytes that are not: a text that starts with "MZ" is a text.
_PROGRAM_SIGNATURES: Final = (
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    # A Java class and a universal macOS binary share this one.
    (b"\xca\xfe\xba\xbe", "application/java-vm"),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "application/x-ms-shortcut"),
    (b"ITSF", "application/vnd.ms-htmlhelp"),
    (b"\x00asm", "application/wasm"),
)


def _sniff_program(data: bytes) -> str | None:
    for signature, mime in _PROGRAM_SIGNATURES:
        if data.startswith(signature):
            return mime
    return None


def sniff_mime(data: bytes) -> str | None:
    """The canonical MIME type of `data` judged by its bytes, or None when unknown.

    Images come back as their image type (also unsupported ones such as image/tiff), what
    a computer would run as one of `ACTIVE_TYPES`. Zip containers are opened to tell DOCX
    from PPTX (only the directory is read).
    """
    image = sniff_image(data)
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
    return _sniff_text(data) or _sniff_program(data)


def file_extension(filename: str | None) -> str:
    """The extension of a file name, lower case and without the dot ("" when none)."""
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
    claimed = _EXTENSION_CLAIMS.get(file_extension(filename))
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
    check_size(data, max_bytes)
    sniffed = sniff_mime(data)
    if sniffed in ACTIVE_TYPES:
        # Before the claims: "evil.pdf" that is a web page is refused for what it is.
        raise MediaRefusedError(RefusalReason.ACTIVE_CONTENT, sniffed)
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
