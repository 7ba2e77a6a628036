"""Videos and documents lose their hidden details before they are stored: a phone video's
location and device, a PDF's author and XMP, a Word file's creator. What cannot be cleaned
(a broken box structure, an unreadable PDF, a zip bomb) is refused and nothing is written."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, DecodedStreamObject

from media.metadata import MAX_BOX_DEPTH, MAX_BOXES, clean_office
from media.pipeline import MediaRefusedError, MediaStore, RefusalReason
from storage.models import MediaKind
from tests.videos import FRAMES, LOCATION, box, phone_mp4

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def stored_files(store: MediaStore) -> list[Path]:
    return [path for path in store.root.rglob("*") if path.is_file()] if store.root.exists() else []


# --- videos -----------------------------------------------------------------------------------


def walk(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes that fill data[start:end]; asserts they do."""
    end = len(data) if end is None else end
    found = []
    while start < end:
        size = int.from_bytes(data[start : start + 4], "big")
        assert 8 <= size <= end - start, f"box at {start} has size {size}"
        found.append((data[start + 4 : start + 8], start + 8, start + size))
        start += size
    return found


def children(data: bytes, parent: tuple[bytes, int, int]) -> list[tuple[bytes, int, int]]:
    return walk(data, parent[1], parent[2])


def only(boxes: list[tuple[bytes, int, int]], kind: bytes) -> tuple[bytes, int, int]:
    [found] = [entry for entry in boxes if entry[0] == kind]
    return found


async def test_a_phone_video_loses_location_device_and_dates_and_still_plays(store: MediaStore):
    source = phone_mp4(seconds=7)
    assert LOCATION in source and b"iPhone" in source

    stored = await store.store_file(source, kind=MediaKind.VIDEO, declared_mime="video/mp4")

    data = store.path_of(stored).read_bytes()
    assert LOCATION not in data and b"iPhone" not in data and b"2025-11-20" not in data
    assert len(data) == len(source) and stored.size_bytes == len(source)
    top = walk(data)
    assert [kind for kind, _start, _end in top] == [b"ftyp", b"moov", b"mdat"]
    moov = children(data, only(top, b"moov"))
    assert [kind for kind, _start, _end in moov] == [b"mvhd", b"trak", b"free", b"free"]
    trak = children(data, only(moov, b"trak"))
    assert [kind for kind, _start, _end in trak] == [b"tkhd", b"mdia", b"free"]
    for _kind, start, end in [entry for entry in moov + trak if entry[0] == b"free"]:
        assert data[start:end] == bytes(end - start)
    # The recording time is gone, the track's clock (timescale, duration) is not.
    mvhd = only(moov, b"mvhd")
    assert data[mvhd[1] + 4 : mvhd[1] + 12] == bytes(8)
    assert int.from_bytes(data[mvhd[1] + 12 : mvhd[1] + 16], "big") == 1000
    # The chunk offset still points at the very same frames.
    stbl = children(
        data, only(children(data, only(children(data, only(trak, b"mdia")), b"minf")), b"stbl")
    )
    stco = only(stbl, b"stco")
    offset = int.from_bytes(data[stco[1] + 8 : stco[1] + 12], "big")
    assert data[offset : offset + len(FRAMES)] == FRAMES
    # The length comes from the file itself when Telegram did not say it.
    assert stored.duration_seconds == 7
    assert stored.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_video_longer_than_allowed_is_refused_by_its_own_length(store: MediaStore):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(
            phone_mp4(seconds=300),
            kind=MediaKind.VIDEO,
            filename="film.mp4",
            max_duration_seconds=120,
        )
    assert refused.value.reason is RefusalReason.TOO_LONG and refused.value.limit == 120
    assert stored_files(store) == []


def nested(depth: int) -> bytes:
    inner = box(b"mvhd", bytes(100))
    for _ in range(depth):
        inner = box(b"trak", inner)
    return inner


FTYP = box(b"ftyp", b"isom" + bytes(4) + b"isom")
HOSTILE_VIDEOS = {
    "size 0 inside moov": FTYP + box(b"moov", bytes(4) + b"trak" + bytes(16)),
    "size past the end": FTYP + (10_000).to_bytes(4, "big") + b"moov" + bytes(32),
    "child past its parent": FTYP + box(b"moov", (500).to_bytes(4, "big") + b"trak" + bytes(8)),
    "huge 64-bit size": FTYP
    + (1).to_bytes(4, "big")
    + b"moov"
    + (2**63).to_bytes(8, "big")
    + bytes(16),
    "size below its header": FTYP + box(b"moov", (3).to_bytes(4, "big") + b"trak" + bytes(8)),
    "deep nesting": FTYP + box(b"moov", nested(MAX_BOX_DEPTH + 5)),
    "very deep nesting": FTYP + box(b"moov", nested(5_000)),
    "too many boxes": FTYP + box(b"moov", box(b"free") * (MAX_BOXES + 10)),
    "no moov": FTYP + box(b"mdat", FRAMES),
    "stray bytes at the end": phone_mp4() + b"\x00\x01\x02",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_VIDEOS))
async def test_a_hostile_box_structure_is_refused_quickly(store: MediaStore, case: str):
    started = time.perf_counter()
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(
            HOSTILE_VIDEOS[case], kind=MediaKind.VIDEO, declared_mime="video/mp4"
        )
    assert refused.value.reason is RefusalReason.CANNOT_CLEAN
    assert time.perf_counter() - started < 2.0
    assert stored_files(store) == []


# --- PDF ---------------------------------------------------------------------------------------


def report_pdf(pages: int = 2) -> bytes:
    writer = PdfWriter()
    for number in range(pages):
        page = writer.add_blank_page(300, 200)
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 20 100 Td (Bladzijde {number + 1}) Tj ET".encode())
        page.replace_contents(ContentStream(content, writer))
    writer.add_metadata({"/Author": "Juf Geheim", "/Creator": "Schrijfprogramma 12"})
    writer.xmp_metadata = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Juf Geheim</dc:creator>'
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


async def test_a_pdf_loses_its_author_and_xmp_and_keeps_its_pages(store: MediaStore):
    source = report_pdf(pages=3)
    assert source.count(b"Juf Geheim") == 2

    stored = await store.store_file(source, kind=MediaKind.DOCUMENT, filename="verslag.pdf")

    data = store.path_of(stored).read_bytes()
    assert b"Juf Geheim" not in data and b"Schrijfprogramma" not in data
    reader = PdfReader(io.BytesIO(data))
    assert reader.metadata is None and reader.xmp_metadata is None
    assert "/Metadata" not in reader.root_object
    original = PdfReader(io.BytesIO(source))
    assert len(reader.pages) == 3
    for before, after in zip(original.pages, reader.pages, strict=True):
        assert after.get_contents().get_data() == before.get_contents().get_data()
    assert stored.size_bytes == len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        b"%PDF-1.7\n" + bytes(2000),
        report_pdf()[:400],
    ],
    ids=["no cross-reference", "zeros", "cut off"],
)
async def test_a_broken_pdf_is_refused(store: MediaStore, data: bytes):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(data, kind=MediaKind.DOCUMENT, filename="verslag.pdf")
    assert refused.value.reason is RefusalReason.CANNOT_CLEAN
    assert stored_files(store) == []


async def test_a_pdf_locked_with_a_password_is_refused(store: MediaStore):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(report_pdf())))
    writer.encrypt(user_password="geheim", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(buffer.getvalue(), kind=MediaKind.DOCUMENT, filename="slot.pdf")
    assert refused.value.reason is RefusalReason.PASSWORD_PROTECTED
    assert stored_files(store) == []


# --- Office ------------------------------------------------------------------------------------

CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:dcterms="http://purl.org/dc/terms/">'
    "<dc:creator>Meester Verborgen</dc:creator>"
    "<cp:lastModifiedBy>Meester Verborgen</cp:lastModifiedBy>"
    "<dcterms:created>2025-11-20T10:00:00Z</dcterms:created>"
    "</cp:coreProperties>"
)
APP = (
    "<Properties><Company>Basisschool De Verborgen Eik</Company>"
    "<TotalTime>42</TotalTime></Properties>"
)
DOCUMENT = (
    "<w:document><w:body><w:p><w:r><w:t>Mijn verslag over krachten</w:t></w:r></w:p>"
    "</w:body></w:document>"
)


def office_docx(**extra: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", DOCUMENT)
        archive.writestr("docProps/core.xml", CORE)
        archive.writestr("docProps/app.xml", APP)
        for name, text in extra.items():
            archive.writestr(name, text)
        archive.comment = b"made on the laptop of Meester Verborgen"
    return buffer.getvalue()


async def test_a_word_file_loses_its_creator_and_keeps_its_text(store: MediaStore):
    stored = await store.store_file(office_docx(), kind=MediaKind.DOCUMENT, filename="verslag.docx")

    assert stored.mime_type == DOCX
    data = store.path_of(stored).read_bytes()
    assert b"Verborgen" not in data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.comment == b""
        names = archive.namelist()
        core = archive.read("docProps/core.xml").decode()
        app = archive.read("docProps/app.xml").decode()
        assert archive.read("word/document.xml").decode() == DOCUMENT
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert names == [
        "[Content_Types].xml",
        "_rels/.rels",
        "word/document.xml",
        "docProps/core.xml",
        "docProps/app.xml",
    ]
    assert "coreProperties" in core and "creator" not in core and "lastModifiedBy" not in core
    assert "created" not in core and "Company" not in app and "TotalTime" not in app


def test_a_zip_bomb_is_refused_while_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            for _ in range(12):
                member.write(bytes(1024 * 1024))
    bomb = buffer.getvalue()
    assert len(bomb) < 100_000

    with pytest.raises(MediaRefusedError) as refused:
        clean_office(bomb, max_unpacked=10 * 1024 * 1024)
    assert refused.value.reason is RefusalReason.UNPACKS_TOO_LARGE
    with pytest.raises(MediaRefusedError) as refused:
        clean_office(office_docx(**{f"word/media/{n}.xml": "" for n in range(30)}), max_members=20)
    assert refused.value.reason is RefusalReason.UNPACKS_TOO_LARGE


async def test_a_zip_bomb_sent_as_a_word_file_stores_nothing(store: MediaStore):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", DOCUMENT)
        with archive.open("word/media/image1.bin", "w") as member:
            for _ in range(210):
                member.write(bytes(1024 * 1024))
    started = time.perf_counter()
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(buffer.getvalue(), kind=MediaKind.DOCUMENT, filename="werk.docx")
    assert refused.value.reason is RefusalReason.UNPACKS_TOO_LARGE
    assert time.perf_counter() - started < 10
    assert stored_files(store) == []
