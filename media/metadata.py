"""Taking the hidden details out of videos and documents before they are stored.

A phone video knows where it was filmed; a PDF or a Word file knows who wrote it, on which
computer and when. A school portfolio keeps the work, not that. `clean_file` is called by
`media.pipeline.MediaStore.store_file` after the type is known and before anything is written;
the stored sha256 is that of the cleaned bytes. Every refusal is a `MediaRefusedError`, and a
refused file is never stored.

What is cleaned, and how:
 - MP4, MOV and M4A (ISO base media files): the box tree is walked in pure Python and every
   `udta` and `meta` box (location `©xyz`, make and model, dates, Apple's QuickTime keys), and
   XMP in a `uuid` box, at the top level, under `moov` and under each `trak` (and the other
   plain containers) becomes a `free` box of the same size with a zeroed payload. The creation
   and modification times in `mvhd`, `tkhd` and `mdhd` are zeroed ("unknown"). Nothing moves,
   so no chunk offset (`stco`/`co64`) changes and the video plays as before. A file that is
   not a well-formed box structure (a size past its parent's end, a size below its header, a
   64-bit size beyond the file, nesting deeper than any real video, far too many boxes, no
   `moov`) is refused. The walk is iterative and bounded by `MAX_BOX_DEPTH` and `MAX_BOXES`.
 - PDF: rewritten with pypdf without the document information dictionary (author, creator
   tool, producer, dates) and without the XMP metadata streams of the document and its pages.
   Pages are copied as they are. A PDF pypdf cannot read, or one locked with a password, is
   refused.
 - DOCX, XLSX, PPTX: the zip is rewritten with `docProps/core.xml` (creator, last modified by,
   dates) replaced by empty core properties and `docProps/app.xml` (company, template,
   editing time) and `docProps/custom.xml` emptied, so every relationship still points at a
   part; members lose their own timestamps and extra fields, the archive its comment. At most
   `MAX_ZIP_MEMBERS` members and `MAX_UNPACKED_BYTES` unpacked (counted while unpacking, not
   taken from the headers) are accepted: a zip bomb is refused.
 - Kept as sent: plain text (it has no hidden part), OpenDocument files (ODT/ODP/ODS; their
   `meta.xml` may name the author), MP3 and OGG audio (ID3 or Vorbis tags), and WebM video.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Final

from media.pipeline import MediaRefusedError, RefusalReason

__all__ = [
    "MAX_BOXES",
    "MAX_BOX_DEPTH",
    "MAX_UNPACKED_BYTES",
    "MAX_ZIP_MEMBERS",
    "CleanedFile",
    "clean_file",
    "clean_isobmff",
    "clean_office",
    "clean_pdf",
]

MAX_BOX_DEPTH: Final = 12
MAX_BOXES: Final = 20_000
MAX_ZIP_MEMBERS: Final = 5_000
MAX_UNPACKED_BYTES: Final = 200 * 1024 * 1024

_ISOBMFF_TYPES: Final = frozenset({"video/mp4", "video/quicktime", "audio/mp4"})
_OFFICE_TYPES: Final = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


@dataclass(frozen=True, slots=True)
class CleanedFile:
    data: bytes
    # From the file itself (a video's `mvhd`), when it says; None when it does not.
    duration_seconds: int | None = None


def clean_file(data: bytes, mime_type: str) -> CleanedFile:
    """The bytes to store for a file of this (sniffed, canonical) type: cleaned where we know
    how, else unchanged. CPU-bound: call it in a worker thread."""
    if mime_type in _ISOBMFF_TYPES:
        return clean_isobmff(data)
    if mime_type == "application/pdf":
        return CleanedFile(clean_pdf(data))
    if mime_type in _OFFICE_TYPES:
        return CleanedFile(clean_office(data))
    return CleanedFile(data)


# --- MP4 / MOV ---------------------------------------------------------------------------------

# Plain containers: their payload is nothing but boxes. `udta` and `meta` are not walked into
# (they are blanked whole: QuickTime's `udta` may end in a bare 32-bit zero, and `meta` is a
# full box in MP4 but not in QuickTime), nor are sample descriptions.
_CONTAINERS: Final = frozenset(
    {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"mvex", b"moof", b"traf"}
    | {b"mfra", b"tref", b"sinf", b"schi"}
)
_METADATA: Final = frozenset({b"udta", b"meta"})
# Adobe's XMP packet in a `uuid` box.
_XMP_UUID: Final = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
# Boxes whose version 0/1 payload starts with creation and modification time.
_TIMED: Final = frozenset({b"mvhd", b"tkhd", b"mdhd"})


def _broken(detail: str) -> MediaRefusedError:
    return MediaRefusedError(RefusalReason.CANNOT_CLEAN, detail)


@dataclass(frozen=True, slots=True)
class _Box:
    kind: bytes
    start: int  # of the header
    payload: int  # first byte after the header
    end: int
    large: bool  # a 64-bit size follows the type


def _boxes(data: bytes | bytearray, start: int, end: int, *, top: bool, budget: int) -> list[_Box]:
    """The boxes that exactly fill data[start:end], or a refusal (also beyond `budget`)."""
    boxes: list[_Box] = []
    offset = start
    while offset < end:
        if len(boxes) >= budget:
            raise _broken(f"more than {MAX_BOXES} boxes")
        remaining = end - offset
        if remaining < 8:
            if not top and remaining == 4 and data[offset:end] == bytes(4):
                break  # QuickTime ends some atom lists with a 32-bit zero
            raise _broken(f"{remaining} stray bytes at {offset}")
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = bytes(data[offset + 4 : offset + 8])
        header = 8
        large = size == 1
        if large:
            if remaining < 16:
                raise _broken(f"64-bit size cut off at {offset}")
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
            header = 16
        elif size == 0:
            if not top:
                raise _broken(f"size 0 inside a box at {offset}")
            size = remaining  # "to the end of the file", as a recorder may write its mdat
        if kind == b"uuid":
            header += 16
        if size < header or size > remaining:
            raise _broken(f"box {kind!r} at {offset} has size {size}, {remaining} left")
        boxes.append(_Box(kind, offset, offset + header, offset + size, large))
        offset += size
    return boxes


def _zero_times(data: bytearray, box: _Box) -> None:
    version = data[box.payload] if box.payload < box.end else None
    width = {0: 4, 1: 8}.get(version) if version is not None else None
    if width is None or box.payload + 4 + 2 * width > box.end:
        raise _broken(f"{box.kind!r} at {box.start} is too short or of unknown version")
    first = box.payload + 4
    data[first : first + 2 * width] = bytes(2 * width)


def _duration(data: bytes | bytearray, mvhd: _Box) -> int | None:
    version = data[mvhd.payload]
    width = 8 if version == 1 else 4
    at = mvhd.payload + 4 + 2 * width
    if at + 4 + width > mvhd.end:
        return None
    timescale = int.from_bytes(data[at : at + 4], "big")
    duration = int.from_bytes(data[at + 4 : at + 4 + width], "big")
    if timescale == 0 or duration in (0, (1 << (8 * width)) - 1):
        return None  # unknown (a fragmented file says so in its fragments)
    return -(-duration // timescale)


def clean_isobmff(data: bytes) -> CleanedFile:
    """Blank the metadata boxes of an MP4/MOV/M4A in place (see the module docstring)."""
    cleaned = bytearray(data)
    top = _boxes(cleaned, 0, len(cleaned), top=True, budget=MAX_BOXES)
    if not top or top[0].kind != b"ftyp":
        raise _broken("no ftyp box first")
    if not any(box.kind == b"moov" for box in top):
        raise _broken("no moov box: nothing to play")
    duration: int | None = None
    seen = len(top)
    # Iterative, depth-first: (box, depth) pairs still to look at.
    pending = [(box, 1) for box in reversed(top)]
    while pending:
        box, depth = pending.pop()
        if box.kind in _METADATA or (
            box.kind == b"uuid" and cleaned[box.payload - 16 : box.payload] == _XMP_UUID
        ):
            # Keep the size field(s), say "free", zero the rest (a uuid's id included).
            cleaned[box.start + 4 : box.start + 8] = b"free"
            kept = box.start + (16 if box.large else 8)
            cleaned[kept : box.end] = bytes(box.end - kept)
            continue
        if box.kind in _TIMED:
            _zero_times(cleaned, box)
            if box.kind == b"mvhd" and duration is None:
                duration = _duration(cleaned, box)
            continue
        if box.kind not in _CONTAINERS:
            continue
        if depth >= MAX_BOX_DEPTH:
            raise _broken(f"boxes nested deeper than {MAX_BOX_DEPTH}")
        children = _boxes(cleaned, box.payload, box.end, top=False, budget=MAX_BOXES - seen)
        seen += len(children)
        pending.extend((child, depth + 1) for child in reversed(children))
    return CleanedFile(bytes(cleaned), duration)


# --- PDF ---------------------------------------------------------------------------------------


def clean_pdf(data: bytes) -> bytes:
    """The PDF without its document information and XMP metadata (see the module docstring)."""
    # Imported here: only documents need it, and it is a sizeable import.
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise MediaRefusedError(RefusalReason.PASSWORD_PROTECTED, "encrypted PDF")
        pages = len(reader.pages)
        # Dropped from the source before copying: the copy only takes what is still reachable,
        # so the metadata streams are not written at all.
        for private in ("/Metadata", "/PieceInfo"):
            reader.root_object.pop(NameObject(private), None)
        for page in reader.pages:
            page.pop(NameObject("/Metadata"), None)
            page.pop(NameObject("/PieceInfo"), None)
        writer = PdfWriter(clone_from=reader)
        writer.pdf_header = reader.pdf_header
        writer.metadata = None  # no /Info at all, not even pypdf's own /Producer
        if len(writer.pages) != pages:
            raise _broken(f"{pages} pages became {len(writer.pages)}")
        output = io.BytesIO()
        writer.write(output)
    except MediaRefusedError:
        raise
    except Exception as error:
        # Parsers of hostile files raise all kinds of exceptions; each one is a refusal.
        raise _broken(f"PDF: {type(error).__name__}: {error}") from error
    return output.getvalue()


# --- DOCX / XLSX / PPTX ------------------------------------------------------------------------

_EMPTY_PARTS: Final = {
    "docprops/core.xml": (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b"<cp:coreProperties"
        b' xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        b' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        b' xmlns:dcterms="http://purl.org/dc/terms/"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
    ),
    "docprops/app.xml": (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b"<Properties"
        b' xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"'
        b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"/>'
    ),
    "docprops/custom.xml": (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b"<Properties"
        b' xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
        b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"/>'
    ),
}
_CHUNK: Final = 1024 * 1024
# DOS time can not say "unknown"; the zip format's earliest date says nothing.
_NO_DATE: Final = (1980, 1, 1, 0, 0, 0)


def clean_office(
    data: bytes,
    *,
    max_members: int = MAX_ZIP_MEMBERS,
    max_unpacked: int = MAX_UNPACKED_BYTES,
) -> bytes:
    """The Office file without its document properties (see the module docstring)."""
    output = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            members = source.infolist()
            if len(members) > max_members:
                raise MediaRefusedError(RefusalReason.UNPACKS_TOO_LARGE, f"{len(members)} members")
            names = [member.filename for member in members]
            if len(set(names)) != len(names):
                raise _broken("a name occurs twice in the zip")
            unpacked = 0
            with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
                for member in members:
                    clean = zipfile.ZipInfo(member.filename, date_time=_NO_DATE)
                    clean.compress_type = zipfile.ZIP_DEFLATED
                    clean.external_attr = 0o600 << 16
                    if member.is_dir():
                        target.writestr(clean, b"")
                        continue
                    replacement = _EMPTY_PARTS.get(member.filename.lower())
                    if replacement is not None:
                        target.writestr(clean, replacement)
                        continue
                    with source.open(member) as reading, target.open(clean, "w") as writing:
                        while chunk := reading.read(_CHUNK):
                            unpacked += len(chunk)
                            if unpacked > max_unpacked:
                                raise MediaRefusedError(
                                    RefusalReason.UNPACKS_TOO_LARGE,
                                    f"more than {max_unpacked} bytes unpacked",
                                )
                            writing.write(chunk)
    except MediaRefusedError:
        raise
    except Exception as error:
        # Bad CRCs, encrypted members, unknown compression, truncated data ...
        raise _broken(f"zip: {type(error).__name__}: {error}") from error
    return output.getvalue()
