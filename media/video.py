"""MP4, MOV and M4A files (ISO base media): walking their box tree to blank the metadata
and read the length.

A phone video knows where it was filmed, on which device and when. `clean_isobmff` walks the
box tree in pure Python and every `udta` and `meta` box (location `©xyz`, make and model,
dates, Apple's QuickTime keys), and XMP in a `uuid` box, at the top level, under `moov` and
under each `trak` (and the other plain containers) becomes a `free` box of the same size with a
zeroed payload. The creation and modification times in `mvhd`, `tkhd` and `mdhd` are zeroed
("unknown"). Nothing moves, so no chunk offset (`stco`/`co64`) changes and the video plays as
before. The length comes from `mvhd` on the way. A file that is not a well-formed box
structure (a size past its parent's end, a size below its header, a 64-bit size beyond the
file, nesting deeper than any real video, far too many boxes, no `moov`) is refused with
CANNOT_CLEAN. The walk is iterative and bounded by `MAX_BOX_DEPTH` and `MAX_BOXES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from media.refusals import cannot_clean

__all__ = ["MAX_BOXES", "MAX_BOX_DEPTH", "CleanedVideo", "clean_isobmff"]

MAX_BOX_DEPTH: Final = 12
MAX_BOXES: Final = 20_000


@dataclass(frozen=True, slots=True)
class CleanedVideo:
    """The bytes of an MP4/MOV (or M4A: the same container) with its metadata blanked."""

    data: bytes
    # From `mvhd`, rounded up to whole seconds; None when the file does not say.
    duration_seconds: int | None


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
            raise cannot_clean(f"more than {MAX_BOXES} boxes")
        remaining = end - offset
        if remaining < 8:
            if not top and remaining == 4 and data[offset:end] == bytes(4):
                break  # QuickTime ends some atom lists with a 32-bit zero
            raise cannot_clean(f"{remaining} stray bytes at {offset}")
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = bytes(data[offset + 4 : offset + 8])
        header = 8
        large = size == 1
        if large:
            if remaining < 16:
                raise cannot_clean(f"64-bit size cut off at {offset}")
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
            header = 16
        elif size == 0:
            if not top:
                raise cannot_clean(f"size 0 inside a box at {offset}")
            size = remaining  # "to the end of the file", as a recorder may write its mdat
        if kind == b"uuid":
            header += 16
        if size < header or size > remaining:
            raise cannot_clean(f"box {kind!r} at {offset} has size {size}, {remaining} left")
        boxes.append(_Box(kind, offset, offset + header, offset + size, large))
        offset += size
    return boxes


def _zero_times(data: bytearray, box: _Box) -> None:
    version = data[box.payload] if box.payload < box.end else None
    width = {0: 4, 1: 8}.get(version) if version is not None else None
    if width is None or box.payload + 4 + 2 * width > box.end:
        raise cannot_clean(f"{box.kind!r} at {box.start} is too short or of unknown version")
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


def clean_isobmff(data: bytes) -> CleanedVideo:
    """Blank the metadata boxes of an MP4/MOV/M4A in place (see the module docstring)."""
    cleaned = bytearray(data)
    top = _boxes(cleaned, 0, len(cleaned), top=True, budget=MAX_BOXES)
    if not top or top[0].kind != b"ftyp":
        raise cannot_clean("no ftyp box first")
    if not any(box.kind == b"moov" for box in top):
        raise cannot_clean("no moov box: nothing to play")
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
            raise cannot_clean(f"boxes nested deeper than {MAX_BOX_DEPTH}")
        children = _boxes(cleaned, box.payload, box.end, top=False, budget=MAX_BOXES - seen)
        seen += len(children)
        pending.extend((child, depth + 1) for child in reversed(children))
    return CleanedVideo(bytes(cleaned), duration)
