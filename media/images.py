"""The image pipeline: check a picture, take everything but its pixels out, re-encode it.

`prepare_image` turns the bytes of a photo (one Telegram compressed, or an image sent as a
file) into a clean JPEG, its thumbnail and, if asked, a clean full-resolution copy. It touches
no disk and no database: `media.store.MediaStore.store_image` runs it in a worker thread and
writes what it returns. Every refusal is a `MediaRefusedError` (see `media.refusals`).

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
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

from media.refusals import MAX_BYTES, MediaRefusedError, RefusalReason, check_size
from media.sniffing import UNSUPPORTED_IMAGE_EXTENSIONS, file_extension, sniff_image

__all__ = [
    "EncodedImage",
    "ImageOptions",
    "PreparedImage",
    "heif_available",
    "prepare_image",
]

MAX_SIDE: Final = 2048
THUMB_SIDE: Final = 320
MAX_PIXELS: Final = 40_000_000
JPEG_QUALITY: Final = 85
THUMB_QUALITY: Final = 80
ORIGINAL_QUALITY: Final = 92
# Draft mode and whole-factor reduction may land this far below max_side (docstring, step 5).
DRAFT_SLACK: Final = 0.9


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """One encoded picture: its bytes and its size in pixels."""

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
    """The limits and JPEG qualities of the pipeline (the defaults are what the bot uses)."""

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
    mime = sniff_image(data)
    if mime == "image/heic" and "HEIF" not in options.formats:
        return MediaRefusedError(RefusalReason.HEIC_UNSUPPORTED)
    accepted = {_MIME_OF_FORMAT[name] for name in options.formats}
    if mime in accepted:
        return MediaRefusedError(RefusalReason.BROKEN, f"{mime} signature, header unreadable")
    if mime is not None:
        return MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, mime)
    if file_extension(filename) in UNSUPPORTED_IMAGE_EXTENSIONS:
        return MediaRefusedError(RefusalReason.UNSUPPORTED_FORMAT, file_extension(filename))
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
    check_size(data, options.max_bytes)
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
