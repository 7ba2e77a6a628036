"""Taking the hidden details and anything that acts on its own out of videos and documents
before they are stored.

A phone video knows where it was filmed; a PDF or a Word file knows who wrote it, on which
computer and when, and may carry code that runs when a teacher opens it. A school portfolio
keeps the work, not that. `clean_file` is called by `media.store.MediaStore.store_file` after
the type is known and before anything is written; the stored sha256 is that of the cleaned
bytes. Every refusal is a `MediaRefusedError`, and a refused file is never stored.

What is cleaned, and how:
 - MP4, MOV and M4A (ISO base media files): their metadata boxes are blanked in place, so the
   video still plays, and the length is read on the way (see `media.video`).
 - PDF: rewritten with pypdf without the document information dictionary (author, creator
   tool, producer, dates) and without the XMP metadata streams of the document and its pages,
   and disarmed (`disarm_pdf`): no action on opening (/OpenAction) and no additional actions
   (/AA) anywhere, no JavaScript (/JS, the /JavaScript name tree), no embedded files
   (/EmbeddedFiles, /EF, /FileAttachment annotations, nor media, sound and 3D annotations
   that carry files), no XFA form. An action on a link or a bookmark stays only when it goes
   to a page of the document, to an http(s) or mailto address, or to the next, previous,
   first or last page; any other (launch a program, JavaScript, open or submit to another
   file, ...) is taken away, the link stays as a dead one. Pages are copied as they are. A
   PDF pypdf cannot read, or one locked with a password, is refused.
 - DOCX, XLSX, PPTX: refused with MACROS when they hold macros or programs, judged by the
   content, not by names: a content type in `[Content_Types].xml` that is macro-enabled, VBA
   (vbaProject, vbaData), an Excel 4 macro sheet or Word key bindings to macros; a part named
   vbaProject*/vbaData*; a part whose content type is an ActiveX control or an OLE object (a
   program packed into the document); a relationship to any of these. Otherwise the zip is
   rewritten with `docProps/core.xml` (creator, last modified by, dates) replaced by empty
   core properties and `docProps/app.xml` (company, template, editing time) and
   `docProps/custom.xml` emptied, so every relationship still points at a part, and without
   relationships to anything outside the file (TargetMode="External": an attached template
   fetched on opening, linked pictures and objects, frames, ...). Only hyperlinks to an
   http(s) or mailto address stay: they go nowhere until the reader clicks them. Office
   reports a missing part at worst; nothing the pupil made is in a link. Members lose their
   own timestamps and extra fields, the archive its comment. At most `MAX_ZIP_MEMBERS`
   members and `MAX_UNPACKED_BYTES` unpacked (counted while unpacking, not taken from the
   headers) are accepted: a zip bomb is refused. XML with a document type declaration
   (which OOXML never has; entities could hide what it says) cannot be cleaned.
 - ODT, ODP, ODS: kept as sent (their `meta.xml` may name the author), after a check with the
   same limits: refused with MACROS when they hold macros (Basic/, Scripts/ or Dialogs/
   folders, embedded scripts, event listeners, macro fields, links to macros) or programs
   (OLE objects, applets, plugins).
 - Kept as sent: plain text (it has no hidden part, and is passed on only as .txt), MP3 and
   OGG audio (ID3 or Vorbis tags), and WebM video.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from media.refusals import MediaRefusedError, RefusalReason, cannot_clean
from media.sniffing import DOCX, ODF_TYPES, PPTX, XLSX
from media.video import clean_isobmff

if TYPE_CHECKING:
    from pypdf.generic import DictionaryObject, PdfObject

__all__ = [
    "MAX_PDF_OBJECTS",
    "MAX_UNPACKED_BYTES",
    "MAX_ZIP_MEMBERS",
    "CleanedFile",
    "check_odf",
    "clean_file",
    "clean_office",
    "clean_pdf",
    "disarm_pdf",
]

MAX_ZIP_MEMBERS: Final = 5_000
MAX_UNPACKED_BYTES: Final = 200 * 1024 * 1024
# Far more dictionaries and arrays than a 20 MB PDF of real work holds; more is a trap.
MAX_PDF_OBJECTS: Final = 500_000

_ISOBMFF_TYPES: Final = frozenset({"video/mp4", "video/quicktime", "audio/mp4"})
_OFFICE_TYPES: Final = frozenset({DOCX, PPTX, XLSX})


@dataclass(frozen=True, slots=True)
class CleanedFile:
    data: bytes
    # From the file itself (a video's `mvhd`), when it says; None when it does not.
    duration_seconds: int | None = None


def clean_file(data: bytes, mime_type: str) -> CleanedFile:
    """The bytes to store for a file of this (sniffed, canonical) type: cleaned where we know
    how, else unchanged. CPU-bound: call it in a worker thread."""
    if mime_type in _ISOBMFF_TYPES:
        video = clean_isobmff(data)
        return CleanedFile(video.data, video.duration_seconds)
    if mime_type == "application/pdf":
        return CleanedFile(clean_pdf(data))
    if mime_type in _OFFICE_TYPES:
        return CleanedFile(clean_office(data))
    if mime_type in ODF_TYPES:
        check_odf(data)
    return CleanedFile(data)


# --- PDF ---------------------------------------------------------------------------------------


def clean_pdf(data: bytes) -> bytes:
    """The PDF without its document information and XMP metadata, disarmed (see the module
    docstring)."""
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
        disarm_pdf(reader.root_object)
        writer = PdfWriter(clone_from=reader)
        writer.pdf_header = reader.pdf_header
        writer.metadata = None  # no /Info at all, not even pypdf's own /Producer
        if len(writer.pages) != pages:
            raise cannot_clean(f"{pages} pages became {len(writer.pages)}")
        output = io.BytesIO()
        writer.write(output)
    except MediaRefusedError:
        raise
    except Exception as error:
        # Parsers of hostile files raise all kinds of exceptions; each one is a refusal.
        raise cannot_clean(f"PDF: {type(error).__name__}: {error}") from error
    return output.getvalue()


# Keys that make a PDF act by itself or carry other files, wherever they are: the document's
# action on opening, additional actions (of the document, pages, fields, annotations),
# JavaScript, the name trees of scripts and embedded files, a file specification's embedded
# file, and XFA forms (which can script too).
_PDF_ACTIVE_KEYS: Final = (
    "/OpenAction",
    "/AA",
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EF",
    "/XFA",
    "/NeedsRendering",
)
# Where an action hangs: a link's or a field's action, a link's previous action, the chain.
_PDF_ACTION_KEYS: Final = ("/A", "/PA", "/Next")
# Annotations that carry a file or play media (which may script or launch).
_PDF_DROPPED_ANNOTATIONS: Final = frozenset(
    {"/FileAttachment", "/Screen", "/Movie", "/Sound", "/RichMedia", "/3D"}
)
_PDF_STANDARD_PAGE_ACTIONS: Final = frozenset({"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"})
_SAFE_LINK_SCHEMES: Final = ("http://", "https://", "mailto:")


def _pdf_text(value: PdfObject | None) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value) if value is not None else ""


def _is_unsafe_action(value: PdfObject) -> bool:
    """Whether an action (or a list of them, a chain's /Next) does more than go to a page or
    a web address. A dictionary without /S is no action (an outline item's /Next is its
    sibling); a list in a list is no chain."""
    from pypdf.generic import ArrayObject, DictionaryObject

    resolved = value.get_object()
    actions = list(resolved) if isinstance(resolved, ArrayObject) else [resolved]
    for item in actions:
        action = item.get_object() if item is not None else None
        if isinstance(action, ArrayObject):
            return True
        if not isinstance(action, DictionaryObject) or "/S" not in action:
            continue
        kind = action["/S"]
        if kind == "/URI":
            safe = _pdf_text(action.get("/URI")).strip().lower().startswith(_SAFE_LINK_SCHEMES)
        elif kind == "/Named":
            safe = action.get("/N") in _PDF_STANDARD_PAGE_ACTIONS
        else:
            safe = kind == "/GoTo"
        if not safe:
            return True
    return False


def _disarm_dictionary(dictionary: DictionaryObject) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject

    for key in _PDF_ACTIVE_KEYS:
        dictionary.pop(key, None)
    for key in _PDF_ACTION_KEYS:
        action = dictionary.get(key)
        if action is not None and _is_unsafe_action(action):
            del dictionary[key]
    annotations = dictionary.get("/Annots")
    if annotations is not None and isinstance(annotations.get_object(), ArrayObject):
        listed = annotations.get_object()
        kept = []
        for annotation in listed:
            resolved = annotation.get_object()
            if not (
                isinstance(resolved, DictionaryObject)
                and resolved.get("/Subtype") in _PDF_DROPPED_ANNOTATIONS
            ):
                kept.append(annotation)
        listed[:] = kept


def disarm_pdf(root: DictionaryObject) -> None:
    """Take away, in place, everything of a PDF that acts by itself or carries other files
    (see the module docstring), in every dictionary reachable from `root`.

    What is taken away is no longer reachable, so a copy made afterwards does not hold it at
    all. Iterative, so a deep PDF cannot exhaust the stack; more than `MAX_PDF_OBJECTS`
    dictionaries and arrays cannot be cleaned."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    pending: list[PdfObject] = [root]
    seen_references: set[tuple[int, int]] = set()
    # By id(), holding each object so that no id is reused for another one during the walk.
    seen_containers: dict[int, PdfObject] = {}
    while pending:
        item: PdfObject | None = pending.pop()
        if isinstance(item, IndirectObject):
            reference = (item.idnum, item.generation)
            if reference in seen_references:
                continue
            seen_references.add(reference)
            item = item.get_object()
        if not isinstance(item, DictionaryObject | ArrayObject) or id(item) in seen_containers:
            continue
        seen_containers[id(item)] = item
        if len(seen_containers) > MAX_PDF_OBJECTS:
            raise cannot_clean(f"PDF: more than {MAX_PDF_OBJECTS} objects")
        if isinstance(item, DictionaryObject):
            _disarm_dictionary(item)
            pending.extend(item.values())
        else:
            pending.extend(item)


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

_CONTENT_TYPES: Final = "[content_types].xml"
# Declared anywhere in [Content_Types].xml, these mean macros: macro-enabled main parts and
# templates (.docm, .xlsm, .pptm, .dotm, ...), VBA projects and their data, Excel 4 macro
# sheets, Word's key bindings to macros.
_MACRO_TYPE_MARKERS: Final = (
    "macroenabled",
    "vbaproject",
    "vbadata",
    "macrosheet",
    "keymapcustomizations",
)
# A part of one of these types is a program packed into the document.
_PROGRAM_PART_MARKERS: Final = ("activex", "oleobject")
_MACRO_PART_NAMES: Final = ("vbaproject", "vbadata")
# Relationship types that point at macros or controls (vbaProject, wordVbaData,
# keyMapCustomizations, xlMacrosheet, xlIntlMacrosheet, activeXControl(Binary)).
_MACRO_RELATIONSHIP_MARKERS: Final = (
    "vbaproject",
    "vbadata",
    "keymapcustomizations",
    "macrosheet",
    "activexcontrol",
)
_RELATIONSHIPS_NAMESPACE: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_RELATIONSHIP_ATTRIBUTES: Final = ("Id", "Type", "Target", "TargetMode")


class _UnpackBudget:
    """What may still be unpacked from one zip: counted while reading, never taken from the
    headers, which a zip bomb lies in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise MediaRefusedError(
                RefusalReason.UNPACKS_TOO_LARGE, f"more than {self.limit} bytes unpacked"
            )

    def chunks(self, source: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[bytes]:
        with source.open(member) as reading:
            while chunk := reading.read(_CHUNK):
                self.take(len(chunk))
                yield chunk

    def read(self, source: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
        return b"".join(self.chunks(source, member))


def _checked_members(source: zipfile.ZipFile, max_members: int) -> list[zipfile.ZipInfo]:
    members = source.infolist()
    if len(members) > max_members:
        raise MediaRefusedError(RefusalReason.UNPACKS_TOO_LARGE, f"{len(members)} members")
    names = [member.filename for member in members]
    if len(set(names)) != len(names):
        raise cannot_clean("a name occurs twice in the zip")
    return members


def _refuse_doctype(*_declaration: object) -> None:
    raise ValueError("XML with a document type declaration")


def _xml_parser(on_element: Callable[[str, dict[str, str]], None]) -> expat.XMLParserType:
    """An XML parser calling `on_element(local name, attributes)` per element.

    The element's local name, whatever its prefix (a file picks its own, and an unbound one is
    no reason to refuse); the attributes as written: OPC's are unprefixed, and a prefixed
    "x:TargetMode" must not pass for the real one. A document type declaration is refused
    (ValueError): neither OOXML nor ODF has one, and its entities could make an attribute say
    one thing to us and another to Office."""
    parser = expat.ParserCreate()

    def start(name: str, attributes: dict[str, str]) -> None:
        on_element(name.rsplit(":", 1)[-1], attributes)

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = _refuse_doctype
    return parser


def _xml_elements(data: bytes) -> list[tuple[str, dict[str, str]]]:
    elements: list[tuple[str, dict[str, str]]] = []
    parser = _xml_parser(lambda name, attributes: elements.append((name, attributes)))
    parser.Parse(data, True)
    return elements


def _macros_refused(detail: str) -> MediaRefusedError:
    return MediaRefusedError(RefusalReason.MACROS, detail)


def _refuse_macro_parts(content_types: bytes, members: list[zipfile.ZipInfo]) -> None:
    """MACROS when [Content_Types].xml declares a macro type, or a part is named or typed as
    macros or a program (see the module docstring)."""
    by_extension: dict[str, str] = {}
    by_part: dict[str, str] = {}
    for name, attributes in _xml_elements(content_types) if content_types else []:
        content_type = attributes.get("ContentType", "").lower()
        if any(marker in content_type for marker in _MACRO_TYPE_MARKERS):
            raise _macros_refused(f"content type {content_type}")
        if name == "Default":
            by_extension[attributes.get("Extension", "").lower()] = content_type
        elif name == "Override":
            by_part[attributes.get("PartName", "").lower().lstrip("/")] = content_type
    for member in members:
        part = member.filename.lower()
        base = part.rsplit("/", 1)[-1]
        if base.startswith(_MACRO_PART_NAMES):
            raise _macros_refused(f"part {member.filename}")
        content_type = by_part.get(part) or by_extension.get(base.rsplit(".", 1)[-1], "")
        if any(marker in content_type for marker in _PROGRAM_PART_MARKERS):
            raise _macros_refused(f"part {member.filename} of type {content_type}")


def _stays(relationship: dict[str, str]) -> bool:
    """Whether a relationship may stay: one to a part of the file, or a plain hyperlink."""
    target = relationship.get("Target", "").strip()
    external = (
        relationship.get("TargetMode", "").lower() == "external"
        # Part names have none of these; a target that does points outside (a scheme, a
        # Windows share, "//server/share"), whatever its mode says.
        or ":" in target
        or "\\" in target
        or target.startswith("//")
    )
    if not external:
        return True
    hyperlink = relationship.get("Type", "").lower().endswith("/hyperlink")
    return hyperlink and target.lower().startswith(_SAFE_LINK_SCHEMES)


def _clean_relationships(data: bytes) -> bytes:
    """A .rels part without relationships to outside the file except plain hyperlinks; the
    same bytes when nothing goes. MACROS for a relationship to macros or controls."""
    relationships = [
        attributes for name, attributes in _xml_elements(data) if name == "Relationship"
    ]
    for relationship in relationships:
        kind = relationship.get("Type", "").lower()
        if any(marker in kind for marker in _MACRO_RELATIONSHIP_MARKERS):
            raise _macros_refused(f"relationship {kind}")
    kept = [relationship for relationship in relationships if _stays(relationship)]
    if len(kept) == len(relationships):
        return data
    # Written anew rather than edited: the four attributes are all a relationship has.
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
        f"<Relationships xmlns={quoteattr(_RELATIONSHIPS_NAMESPACE)}>",
    ]
    for relationship in kept:
        attributes = "".join(
            f" {name}={quoteattr(relationship[name])}"
            for name in _RELATIONSHIP_ATTRIBUTES
            if name in relationship
        )
        lines.append(f"<Relationship{attributes}/>")
    lines.append("</Relationships>")
    return "".join(lines).encode()


def clean_office(
    data: bytes,
    *,
    max_members: int = MAX_ZIP_MEMBERS,
    max_unpacked: int = MAX_UNPACKED_BYTES,
) -> bytes:
    """The Office file without its document properties and external relationships; MACROS
    when it holds macros or programs (see the module docstring)."""
    output = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            members = _checked_members(source, max_members)
            budget = _UnpackBudget(max_unpacked)
            # Read first, wherever it is in the zip: it says what every other part is.
            content_types = b"".join(
                budget.read(source, member)
                for member in members
                if member.filename.lower() == _CONTENT_TYPES
            )
            _refuse_macro_parts(content_types, members)
            with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
                for member in members:
                    clean = zipfile.ZipInfo(member.filename, date_time=_NO_DATE)
                    clean.compress_type = zipfile.ZIP_DEFLATED
                    clean.external_attr = 0o600 << 16
                    name = member.filename.lower()
                    if member.is_dir():
                        target.writestr(clean, b"")
                    elif name in _EMPTY_PARTS:
                        target.writestr(clean, _EMPTY_PARTS[name])
                    elif name == _CONTENT_TYPES:
                        target.writestr(clean, content_types)
                    elif name.endswith(".rels"):
                        relationships = budget.read(source, member)
                        target.writestr(clean, _clean_relationships(relationships))
                    else:
                        with target.open(clean, "w") as writing:
                            for chunk in budget.chunks(source, member):
                                writing.write(chunk)
    except MediaRefusedError:
        raise
    except Exception as error:
        # Bad CRCs, encrypted members, unknown compression, truncated data, broken XML ...
        raise cannot_clean(f"zip: {type(error).__name__}: {error}") from error
    return output.getvalue()


# --- ODT / ODP / ODS ---------------------------------------------------------------------------

# Where LibreOffice keeps a document's macro libraries and scripts.
_ODF_MACRO_FOLDERS: Final = ("basic/", "scripts/", "dialogs/")
# Elements that run macros or hold programs: an embedded script, an event listener (on a
# form control, an object, a slide: "on click, run ..."), a field that runs a macro, an OLE
# object, an applet, a plugin. (`office:scripts`, plural, is an empty container in every file.)
_ODF_ACTIVE_ELEMENTS: Final = frozenset(
    {"script", "event-listener", "execute-macro", "object-ole", "applet", "plugin"}
)
# Links that run a macro instead of opening a page.
_ODF_MACRO_LINKS: Final = ("vnd.sun.star.script", "vnd.sun.star.basic", "macro:")


def _check_odf_element(name: str, attributes: dict[str, str]) -> None:
    if name in _ODF_ACTIVE_ELEMENTS:
        raise _macros_refused(f"element {name}")
    for attribute, value in attributes.items():
        link = value.strip().lower()
        if attribute.rsplit(":", 1)[-1] == "href" and link.startswith(_ODF_MACRO_LINKS):
            raise _macros_refused(f"link {link[:40]}")


def check_odf(
    data: bytes,
    *,
    max_members: int = MAX_ZIP_MEMBERS,
    max_unpacked: int = MAX_UNPACKED_BYTES,
) -> None:
    """Refuse an OpenDocument file with macros or programs (MACROS), a zip bomb
    (UNPACKS_TOO_LARGE) or one that cannot be read (CANNOT_CLEAN); see the module docstring.
    Every XML part is read, as it streams, with the same limits as `clean_office`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            members = _checked_members(source, max_members)
            budget = _UnpackBudget(max_unpacked)
            for member in members:
                name = member.filename.lower()
                if name.startswith(_ODF_MACRO_FOLDERS):
                    raise _macros_refused(f"part {member.filename}")
                if member.is_dir() or not name.endswith(".xml"):
                    continue
                parser = _xml_parser(_check_odf_element)
                for chunk in budget.chunks(source, member):
                    parser.Parse(chunk, False)
                parser.Parse(b"", True)
    except MediaRefusedError:
        raise
    except Exception as error:
        raise cannot_clean(f"ODF: {type(error).__name__}: {error}") from error
