"""Videos and documents lose their hidden details before they are stored: a phone video's
location and device, a PDF's author and XMP, a Word file's creator. What cannot be cleaned
(a broken box structure, an unreadable PDF, a zip bomb) is refused and nothing is written."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    PdfObject,
    TextStringObject,
)

from media.metadata import clean_office
from media.refusals import MediaRefusedError, RefusalReason
from media.store import MediaStore
from media.video import MAX_BOX_DEPTH, MAX_BOXES
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


def pdf_dictionary(**entries: PdfObject) -> DictionaryObject:
    return DictionaryObject({NameObject("/" + key): value for key, value in entries.items()})


def javascript(code: str) -> DictionaryObject:
    return pdf_dictionary(S=NameObject("/JavaScript"), JS=TextStringObject(code))


def annotation(subtype: str, **entries: PdfObject) -> DictionaryObject:
    corners = ArrayObject([FloatObject(0), FloatObject(0), FloatObject(50), FloatObject(50)])
    return pdf_dictionary(
        Type=NameObject("/Annot"), Subtype=NameObject(subtype), Rect=corners, **entries
    )


def armed_pdf() -> bytes:
    """A one-page report that runs JavaScript when opened, when a page shows, when it closes
    and from a bookmark, carries a program, launches one from a link, and has an XFA form;
    two links are harmless (a web page, the next page)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(report_pdf(pages=1))))
    writer.metadata = None
    root = writer.root_object
    writer.add_open_action(JavaScript("app.alert('naam-boom');"))  # the /JavaScript name tree
    root[NameObject("/OpenAction")] = javascript("app.alert('bij-openen');")
    root[NameObject("/AA")] = pdf_dictionary(WC=javascript("app.alert('bij-sluiten');"))
    root[NameObject("/AcroForm")] = pdf_dictionary(
        Fields=ArrayObject(), XFA=ArrayObject([TextStringObject("<xdp>alert-xfa</xdp>")])
    )
    writer.add_attachment("spel.exe", b"MZ bijlage")
    writer.pages[0][NameObject("/AA")] = pdf_dictionary(O=javascript("app.alert('pagina');"))
    links = [
        annotation(
            "/FileAttachment",
            FS=pdf_dictionary(Type=NameObject("/Filespec"), F=TextStringObject("spel.exe")),
        ),
        annotation("/Screen", A=javascript("app.alert('scherm');")),
        annotation("/Link", A=pdf_dictionary(S=NameObject("/Launch"), F=TextStringObject("cmd"))),
        annotation(
            "/Link",
            A=pdf_dictionary(S=NameObject("/URI"), URI=TextStringObject("javascript:alert(1)")),
        ),
        annotation(
            "/Link",
            A=pdf_dictionary(
                S=NameObject("/URI"),
                URI=TextStringObject("https://www.school.example/"),
                Next=javascript("app.alert('keten');"),
            ),
        ),
        annotation("/Link", A=pdf_dictionary(S=NameObject("/Named"), N=NameObject("/NextPage"))),
    ]
    for link in links:
        writer.add_annotation(0, link)
    bookmark = writer.add_outline_item(title="Begin", page_number=0)
    bookmark.get_object()[NameObject("/A")] = javascript("app.alert('bladwijzer');")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


async def test_a_pdf_loses_its_actions_scripts_and_embedded_files(store: MediaStore):
    source = armed_pdf()
    assert source.count(b"alert") == 9 and b"MZ bijlage" in source and b"/OpenAction" in source

    stored = await store.store_file(source, kind=MediaKind.DOCUMENT, filename="verslag.pdf")

    data = store.path_of(stored).read_bytes()
    for gone in (b"alert", b"MZ bijlage", b"cmd", b"spel", b"/Launch", b"/Screen", b"/AA"):
        assert gone not in data, gone
    for gone in (b"/OpenAction", b"/JavaScript", b"/JS", b"/EmbeddedFile", b"/XFA"):
        assert gone not in data, gone
    reader = PdfReader(io.BytesIO(data))
    assert reader.attachments == {}
    [page] = reader.pages
    assert page.get_contents().get_data() == b"BT /F1 12 Tf 20 100 Td (Bladzijde 1) Tj ET"
    actions = [link.get_object().get("/A") for link in page["/Annots"]]
    assert [link.get_object()["/Subtype"] for link in page["/Annots"]] == ["/Link"] * 4
    assert actions[:2] == [None, None]  # the launch and the javascript: link, now dead
    assert actions[2] == {"/S": "/URI", "/URI": "https://www.school.example/"}
    assert actions[3] == {"/S": "/Named", "/N": "/NextPage"}
    assert [item.title for item in reader.outline] == ["Begin"]


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


# --- macros and links to outside the file ------------------------------------------------------

WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
RELATIONSHIP = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def content_types(*entries: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + "".join(entries) + "</Types>"
    )


def override(part: str, content_type: str) -> str:
    return f'<Override PartName="{part}" ContentType="{content_type}"/>'


def relationships(*entries: tuple[str, str, str, str | None]) -> str:
    """(id, type, target, target mode) each; a type without a scheme is one of the
    officeDocument relationships."""
    listed = "".join(
        f'<Relationship Id="{rid}" Type="{kind if "://" in kind else f"{RELATIONSHIP}/{kind}"}"'
        f' Target="{target}"' + (f' TargetMode="{mode}"' if mode else "") + "/>"
        for rid, kind, target, mode in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f"{listed}</Relationships>"
    )


def package(parts: dict[str, str | bytes]) -> bytes:
    """A zip of these parts, in this order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def word_file(types: str = "", **parts: str | bytes) -> dict[str, str | bytes]:
    return {
        "[Content_Types].xml": content_types(override("/word/document.xml", WORD_MAIN), types),
        "_rels/.rels": relationships(("rId1", "officeDocument", "word/document.xml", None)),
        "word/document.xml": DOCUMENT,
        **parts,
    }


VBA_PROJECT_RELATIONSHIP = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)

MACRO_FILES = {
    "a VBA project under another name": word_file(
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>',
        **{"word/gegevens.bin": OLE_HEADER},
    ),
    "a VBA project with an override": word_file(
        override("/word/plaatje.png", "application/vnd.ms-office.vbaProject"),
        **{"word/plaatje.png": OLE_HEADER},
    ),
    "a vbaProject.bin": word_file(**{"word/vbaProject.bin": OLE_HEADER}),
    "a macro-enabled document (.docm)": {
        "[Content_Types].xml": content_types(
            override("/word/document.xml", "application/vnd.ms-word.document.macroEnabled.main+xml")
        ),
        "word/document.xml": DOCUMENT,
    },
    "macro-enabled, written with a character reference": {
        "[Content_Types].xml": content_types(
            override("/word/document.xml", "application/vnd.ms-word.document.&#x6D;acroEnabled")
        ),
        "word/document.xml": DOCUMENT,
    },
    "a relationship to a VBA project": word_file(
        **{
            "word/_rels/document.xml.rels": relationships(
                ("rId9", VBA_PROJECT_RELATIONSHIP, "data.dat", None)
            ),
            "word/data.dat": OLE_HEADER,
        }
    ),
    "an ActiveX control": word_file(
        '<Default Extension="bin" ContentType="application/vnd.ms-office.activeX"/>',
        **{"word/activeX/activeX1.bin": OLE_HEADER},
    ),
    "an OLE object (a packed program)": word_file(
        '<Default Extension="bin" '
        'ContentType="application/vnd.openxmlformats-officedocument.oleObject"/>',
        **{"word/embeddings/oleObject1.bin": OLE_HEADER},
    ),
    "an Excel 4 macro sheet": {
        "[Content_Types].xml": content_types(
            override("/xl/macrosheets/sheet1.xml", "application/vnd.ms-excel.macrosheet+xml")
        ),
        "xl/workbook.xml": "<workbook/>",
        "xl/macrosheets/sheet1.xml": "<xm:macrosheet/>",
    },
    "a macro-enabled presentation (.pptm)": {
        "[Content_Types].xml": content_types(
            override(
                "/ppt/presentation.xml",
                "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
            )
        ),
        "ppt/presentation.xml": "<p:presentation/>",
    },
}


@pytest.mark.parametrize("case", sorted(MACRO_FILES))
async def test_office_files_with_macros_are_refused_by_their_content(store: MediaStore, case: str):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(
            package(MACRO_FILES[case]), kind=MediaKind.DOCUMENT, filename="werk.docx"
        )
    assert refused.value.reason is RefusalReason.MACROS
    assert stored_files(store) == []


async def test_office_xml_with_a_document_type_declaration_is_refused(store: MediaStore):
    # OOXML never has one; its entities could spell "macroEnabled" where we do not look.
    hidden = content_types(
        override("/word/document.xml", "application/vnd.ms-word.document.&m;.main+xml")
    ).replace("<Types", '<!DOCTYPE Types [<!ENTITY m "macroEnabled">]><Types', 1)
    data = package({"[Content_Types].xml": hidden, "word/document.xml": DOCUMENT})

    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(data, kind=MediaKind.DOCUMENT, filename="werk.docx")
    assert refused.value.reason is RefusalReason.CANNOT_CLEAN
    assert stored_files(store) == []


def relationship_ids(data: bytes, part: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = ElementTree.fromstring(archive.read(part))
    return [element.attrib["Id"] for element in root]


async def test_a_word_file_loses_its_links_to_outside_except_plain_hyperlinks(
    store: MediaStore,
):
    parts = word_file(
        '<Default Extension="png" ContentType="image/png"/>',
        **{
            "word/_rels/document.xml.rels": relationships(
                ("rId1", "image", "media/image1.png", None),
                ("rId2", "hyperlink", "https://www.school.example/krachten", "External"),
                ("rId3", "hyperlink", "file://evil.example/share/spel.exe", "External"),
                ("rId4", "oleObject", "\\\\evil.example\\share\\link.xlsx", "External"),
                ("rId5", "image", "http://evil.example/pixel.png", "External"),
                ("rId6", "subDocument", "http://evil.example/deel.docx", None),
                ("rId7", "hyperlink", "mailto:juf@school.example", "External"),
                ("rId8", "frame", "//evil.example/share/kader.htm", None),
            ),
            "word/media/image1.png": b"\x89PNG\r\n\x1a\n",
            "word/settings.xml": "<w:settings/>",
            "word/_rels/settings.xml.rels": relationships(
                ("rId1", "attachedTemplate", "http://evil.example/sjabloon.dotm", "External")
            ),
        },
    )

    stored = await store.store_file(package(parts), kind=MediaKind.DOCUMENT, filename="werk.docx")

    data = store.path_of(stored).read_bytes()
    assert b"evil" not in data
    assert relationship_ids(data, "word/_rels/document.xml.rels") == ["rId1", "rId2", "rId7"]
    assert relationship_ids(data, "word/_rels/settings.xml.rels") == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Nothing left to drop: kept byte for byte.
        assert archive.read("_rels/.rels").decode() == parts["_rels/.rels"]
        assert archive.read("word/document.xml").decode() == DOCUMENT
        kept = archive.read("word/_rels/document.xml.rels").decode()
    assert 'Target="https://www.school.example/krachten" TargetMode="External"' in kept


ODF_NAMESPACES = (
    ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
    ' xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0"'
    ' xmlns:xlink="http://www.w3.org/1999/xlink"'
)


def odt(body: str = "", **parts: str) -> bytes:
    content = (
        f"<office:document-content{ODF_NAMESPACES}><office:scripts/><office:body><office:text>"
        f"<text:p>Mijn verslag</text:p>{body}</office:text></office:body>"
        "</office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.text",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("content.xml", content)
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


RUN_MACRO = "vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"
ODF_WITH_MACROS = {
    "a Basic library": odt(**{"Basic/Standard/Module1.xml": "<script:module/>"}),
    "a macro on opening": odt(
        '<office:event-listeners><script:event-listener script:language="ooo:script" '
        f'script:event-name="dom:load" xlink:href="{RUN_MACRO}"/></office:event-listeners>'
    ),
    "a link that runs a macro": odt(
        f'<text:p><text:a xlink:href="{RUN_MACRO}">klik</text:a></text:p>'
    ),
    "a link that runs a macro, in character references": odt(
        f'<text:p><text:a xlink:href="&#118;{RUN_MACRO[1:]}">klik</text:a></text:p>'
    ),
    "an OLE object": odt("<draw:frame><draw:object-ole/></draw:frame>"),
}


@pytest.mark.parametrize("case", sorted(ODF_WITH_MACROS))
async def test_opendocument_files_with_macros_are_refused(store: MediaStore, case: str):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(
            ODF_WITH_MACROS[case], kind=MediaKind.DOCUMENT, filename="verslag.odt"
        )
    assert refused.value.reason is RefusalReason.MACROS
    assert stored_files(store) == []


async def test_an_opendocument_file_with_an_ordinary_link_is_kept_as_sent(store: MediaStore):
    source = odt('<text:p><text:a xlink:href="https://www.school.example/">site</text:a></text:p>')

    stored = await store.store_file(source, kind=MediaKind.DOCUMENT, filename="verslag.odt")

    assert store.path_of(stored).read_bytes() == source
