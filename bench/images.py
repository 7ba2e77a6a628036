"""The image pipeline on a 12 MP phone JPEG, against a plain Pillow open + save.

Prints images/s for `media.images.prepare_image` (check, draft decode, orientation, strip,
encode, thumbnail), for `MediaStore.store_image` (the same plus sha256 and synced atomic
writes), and for a plain `Image.open(...).save(JPEG)` of the same file; their ratio (the
pipeline should take at most 0.6x the plain round trip, thanks to draft mode); the same photo
with a non-sRGB ICC profile (an iPhone's Display P3 is converted to sRGB, which costs extra);
latency p50/p95; throughput with concurrent uploads; peak RSS; and the machine it ran on.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import PIL
from PIL import ExifTags, Image, ImageCms, ImageDraw, features

from media.images import heif_available, prepare_image
from media.store import MediaStore

PHONE_SIZE = (4032, 3024)  # 12 MP, as an iPhone or a mid-range Android takes it


def phone_jpeg(size: tuple[int, int] = PHONE_SIZE) -> bytes:
    """A JPEG that compresses like a photo (gradients, noise, edges), with phone EXIF."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    blue = Image.blend(red.transpose(Image.Transpose.ROTATE_180), noise, 0.5)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 97):
        draw.line((x, 0, size[0] - x, size[1]), fill=(x % 255, 80, 200), width=5)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Model] = "Phone 15"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 1.5)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def with_foreign_profile(data: bytes) -> bytes:
    """The same photo with an ICC profile the pipeline converts to sRGB, as it would an
    iPhone's Display P3: an sRGB profile renamed, so its conversion costs the same."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    renamed = srgb.replace("sRGB".encode("utf-16-be"), "Test".encode("utf-16-be"))
    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92, exif=image.getexif(), icc_profile=renamed)
    return buffer.getvalue()


def plain_round_trip(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.save(io.BytesIO(), "JPEG")


def timed(
    functions: dict[str, Callable[[], object]], iterations: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of each function, the functions taking turns: a neighbour's load
    or a frequency change then hits all of them alike instead of skewing the ratio."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {label: [] for label in functions}
    for _ in range(iterations):
        for label, function in functions.items():
            started = time.perf_counter()
            function()
            times[label].append(time.perf_counter() - started)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_machine() -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"machine   {cpu_model()}, {os.cpu_count()} cores ({usable} usable)")
    print(f"system    {platform.platform()}")
    print(f"python    {platform.python_version()} ({platform.python_implementation()})")
    heif = "absent"
    if heif_available():
        import pillow_heif  # only for its version

        heif = pillow_heif.__version__
    jpeg = features.version("libjpeg_turbo") or features.version("jpg")
    print(f"pillow    {PIL.__version__}, libjpeg-turbo {jpeg}, pillow-heif {heif}")


def report(label: str, times: list[float]) -> None:
    mean = statistics.fmean(times)
    p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
    print(
        f"{label:34} {1 / mean:7.2f} images/s   mean {mean * 1000:7.1f} ms   "
        f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"
    )


async def store_many(data: bytes, root: Path, count: int, workers: int) -> float:
    """Seconds for `count` uploads with `workers` at a time, each into its own media dir
    (a shared dir would deduplicate every write after the first)."""
    stores = [MediaStore(root / f"run-{index}", max_concurrent=workers) for index in range(count)]
    gate = asyncio.Semaphore(workers)

    async def one(store: MediaStore) -> None:
        async with gate:
            await store.store_image(data)

    started = time.perf_counter()
    await asyncio.gather(*(one(store) for store in stores))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench images", description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    arguments = parser.parse_args()
    iterations, warmup = max(1, arguments.iterations), max(0, arguments.warmup)

    print_machine()
    data = phone_jpeg()
    data_icc = with_foreign_profile(data)
    prepared = prepare_image(data)
    print(
        f"input     {PHONE_SIZE[0]}x{PHONE_SIZE[1]} JPEG q92 with EXIF/GPS, "
        f"{len(data) / 1e6:.1f} MB -> stored {prepared.image.width}x{prepared.image.height} "
        f"({len(prepared.image.data) / 1e3:.0f} kB) + thumbnail "
        f"{prepared.thumbnail.width}x{prepared.thumbnail.height} "
        f"({len(prepared.thumbnail.data) / 1e3:.0f} kB)"
    )
    print(f"runs      {iterations} timed after {warmup} warm-up, taking turns, one at a time\n")

    with tempfile.TemporaryDirectory(prefix="bench-images-") as directory:
        root = Path(directory)
        counter = iter(range(10**9))

        def store_once() -> None:
            # A fresh media dir each time: in a shared one every write after the first
            # would be a deduplicated no-op.
            store = MediaStore(root / f"seq-{next(counter)}")
            asyncio.run(store.store_image(data))

        times = timed(
            {
                "plain Pillow open + save": lambda: plain_round_trip(data),
                "pipeline (prepare_image)": lambda: prepare_image(data),
                "pipeline, non-sRGB ICC profile": lambda: prepare_image(data_icc),
                "store_image (+ sha256, fsync)": store_once,
            },
            iterations,
            warmup,
        )
        workers = os.cpu_count() or 2
        concurrent_seconds = asyncio.run(store_many(data, root / "par", iterations, workers))

    for label, values in times.items():
        report(label, values)
    print(
        f"{'store_image, ' + str(workers) + ' at a time':34} "
        f"{iterations / concurrent_seconds:7.2f} images/s"
    )
    plain = times["plain Pillow open + save"]
    print("\nratio to the plain open + save (target: at most 0.60)")
    for label in list(times)[1:]:
        mean_ratio = statistics.fmean(times[label]) / statistics.fmean(plain)
        median_ratio = statistics.median(times[label]) / statistics.median(plain)
        print(f"          {label:32} mean {mean_ratio:.2f}   median {median_ratio:.2f}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak RSS  {peak_kib / 1024:.0f} MiB")
