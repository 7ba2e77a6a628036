"""Small MP4 files built box by box for tests: what a phone writes, without any real frames."""

from __future__ import annotations

LOCATION = b"+52.37+004.89/"
FRAMES = b"frame-of-the-experiment " * 8
RECORDED = 3_846_000_000  # seconds since 1904, as QuickTime counts: a day in 2025


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def timed(kind: bytes, created: int, rest: bytes) -> bytes:
    """A version 0 full box that starts with creation and modification time."""
    return box(kind, bytes(4) + created.to_bytes(4, "big") + created.to_bytes(4, "big") + rest)


def phone_mp4(*, seconds: int = 7, padding: int = 0) -> bytes:
    """ftyp, moov (mvhd, a trak with its own udta, udta and meta with make, model, date and
    location), mdat; the chunk offset in stco points at the frames in mdat. `padding` zero
    bytes after the frames make the file as large as a test needs."""

    def build(chunk_offset: int) -> bytes:
        clock = (1000).to_bytes(4, "big") + (seconds * 1000).to_bytes(4, "big")
        mvhd = timed(b"mvhd", RECORDED, clock + bytes(80))
        tkhd = timed(b"tkhd", RECORDED, (1).to_bytes(4, "big") + bytes(68))
        media_clock = (600).to_bytes(4, "big") + (seconds * 600).to_bytes(4, "big")
        mdhd = timed(b"mdhd", RECORDED, media_clock + bytes(4))
        stco = box(b"stco", bytes(4) + (1).to_bytes(4, "big") + chunk_offset.to_bytes(4, "big"))
        trak = box(
            b"trak",
            tkhd
            + box(b"mdia", mdhd + box(b"minf", box(b"stbl", stco)))
            + box(b"udta", box(b"\xa9xyz", b"\x00\x0e\x15\xc7" + LOCATION)),
        )
        udta = box(
            b"udta",
            box(b"\xa9mak", b"\x00\x05\x15\xc7Apple")
            + box(b"\xa9mod", b"\x00\x09\x15\xc7iPhone 15")
            + box(b"\xa9day", b"\x00\x18\x15\xc72025-11-20T10:00:00+0100"),
        )
        meta = box(
            b"meta",
            bytes(4)
            + box(b"hdlr", bytes(8) + b"mdta" + bytes(12))
            + box(b"ilst", box(b"data", b"com.apple.quicktime.location.ISO6709" + LOCATION)),
        )
        moov = box(b"moov", mvhd + trak + udta + meta)
        ftyp = box(b"ftyp", b"isom" + (512).to_bytes(4, "big") + b"isomiso2avc1mp41")
        return ftyp + moov + box(b"mdat", FRAMES + bytes(padding))

    first = build(0)
    return build(first.index(FRAMES))
