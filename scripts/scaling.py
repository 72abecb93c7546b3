"""How the cost grows: time and peak memory over resolution, batch and threads.

  python scripts/scaling.py --outdir=scaling [--resolutions=32,64,128,256]
      [--batches=1,2,4,8,16] [--threads=1,2] [--modes=generate,train] [--repeats=3]
      [--fmap_base=2048 --fmap_max=128 --latent_size=128 --mapping_layers=2] [--quick]

Every configuration (mode, resolution, batch, threads) runs `scripts/benchmark.py MODE`
in a process of its own (--nolimits, the size flags given here), so that no configuration
inherits another's memory, threads or caches. Its time is the benchmark's (generate:
g_fwd_ms, the best of --repeats G forward passes; train: train_iter_s, all four phases
once); its peak memory `peak_rss_mb` is the child's peak resident set (os.wait4's
ru_maxrss, or the child's own reading where that is higher: what a machine must have), and the memory per image `mb_per_img` is (the peak
during the timed calls - the resident memory once the networks were built) / batch: the
activations, workspaces and traced graphs a batch holds, without the weights and the
one-off peak of tracing (the whole peak where the timed calls' peak is not known).
A train configuration needs an even batch (the path-length penalty takes half of it):
odd batches are skipped.

Writes <outdir>/scaling.csv (a row per configuration, written as it finishes) and
<outdir>/scaling.png (time per image and memory per image against the batch, a line per
resolution, dashed with one thread), then prints one JSON line: where they are, how many
configurations ran, and the batch with the least time per image for each mode,
resolution and thread count. --quick runs a tiny network on a tiny grid (seconds per
configuration) unless the flags say otherwise.
"""

import csv
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf import cli

SCRIPTS = Path(__file__).resolve().parent
MODES = ("generate", "train")
COLUMNS = ("mode", "resolution", "batch", "threads", "status", "seconds", "ms_per_img", "img_per_s",
           "gflop", "gflops_per_s", "peak_rss_mb", "run_peak_rss_mb", "rss_built_mb", "mb_per_img",
           "wall_s")
SIZE_FLAGS = ("fmap_base", "fmap_max", "latent_size", "mapping_layers")
# --quick: flags not given on the command line take these values.
QUICK = {"resolutions": ["8", "16"], "batches": ["1", "2"], "threads": ["1"], "repeats": 1,
         "fmap_base": 32, "fmap_max": 16, "latent_size": 8, "mapping_layers": 1}

OUTDIR = flags.DEFINE_string("outdir", None, "Folder of scaling.csv and scaling.png.")
RESOLUTIONS = flags.DEFINE_list("resolutions", ["32", "64", "128", "256"], "Image resolutions.")
BATCHES = flags.DEFINE_list("batches", ["1", "2", "4", "8", "16"], "Batch sizes.")
THREADS = flags.DEFINE_list("threads", None, "TensorFlow thread counts (default: 1 and every core).")
MODES_FLAG = flags.DEFINE_list("modes", list(MODES), "What to time: generate (G forward), train.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per configuration; the best is kept.",
                               lower_bound=1)
FMAP_BASE = flags.DEFINE_integer("fmap_base", 2048, "Official fmap_base of the networks.", lower_bound=1)
FMAP_MAX = flags.DEFINE_integer("fmap_max", 128, "Most feature maps per layer.", lower_bound=1)
LATENT_SIZE = flags.DEFINE_integer("latent_size", 128, "z and w size.", lower_bound=1)
MAPPING_LAYERS = flags.DEFINE_integer("mapping_layers", 2, "Mapping layers.", lower_bound=1)
TIMEOUT = flags.DEFINE_integer("timeout", 3600, "Seconds one configuration may take.", lower_bound=1)
QUICK_FLAG = flags.DEFINE_boolean(
    "quick", False, "A tiny network on a tiny grid, for tests: flags not given take the values "
    + " ".join(f"--{name}={','.join(value) if isinstance(value, list) else value}"
               for name, value in QUICK.items()))


def _value(flag):
    """The flag's value, or its --quick value when --quick is on and the flag was not given."""
    if QUICK_FLAG.value and flag.name in QUICK and not flags.FLAGS[flag.name].present:
        return QUICK[flag.name]
    return flag.value


def _ints(flag, lower=1):
    values = _value(flag)
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--{flag.name}: expected integers, got {','.join(values)}") from None
    if not numbers or min(numbers) < lower:
        raise app.UsageError(f"--{flag.name}: expected integers >= {lower}, got {','.join(values)}")
    return list(dict.fromkeys(numbers))


def grid():
    """The configurations [(mode, resolution, batch, threads)] the flags ask for."""
    modes = list(dict.fromkeys(MODES_FLAG.value))
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise app.UsageError(f"--modes: expected some of {', '.join(MODES)}, got {','.join(modes)}")
    resolutions = _ints(RESOLUTIONS, 4)
    bad = [r for r in resolutions if r & (r - 1)]
    if bad:
        raise app.UsageError(f"--resolutions: powers of two >= 4 only, got {bad}")
    threads = _ints(THREADS) if _value(THREADS) else sorted({1, os.cpu_count() or 1})
    return [(mode, resolution, batch, thread) for thread in threads for mode in modes
            for resolution in resolutions for batch in _ints(BATCHES)]


def _command(mode, resolution, batch, threads):
    command = [sys.executable, str(SCRIPTS / "benchmark.py"), mode, f"--resolution={resolution}",
               f"--batch={batch}", f"--threads={threads}", f"--repeats={_value(REPEATS)}", "--nolimits"]
    command += [f"--{name}={_value(flags.FLAGS[name])}" for name in SIZE_FLAGS]
    if cli.IMPL.value:
        command.append(f"--impl={cli.IMPL.value}")
    return command


def run_child(command, timeout):
    """(return code, stdout, stderr, peak resident MiB or None, wall seconds) of a child process.

    The peak is the child's own ru_maxrss, read by os.wait4 when it ends (resource usage of
    the children together, RUSAGE_CHILDREN, would be the largest child's so far).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        peak = None
        if hasattr(os, "wait4"):
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - start > timeout:
                    process.kill()
                    pid, status, usage = os.wait4(process.pid, 0)
                    break
                time.sleep(0.05)
            process.returncode = os.waitstatus_to_exitcode(status)
            peak = usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1024)
        else:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read(), peak, wall


def measure(mode, resolution, batch, threads, timeout):
    """A CSV row (dict of COLUMNS) for one configuration."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(mode=mode, resolution=resolution, batch=batch, threads=threads)
    if mode == "train" and batch % 2:
        row["status"] = "skipped: train needs an even batch"
        return row
    code, out, err, peak, wall = run_child(_command(mode, resolution, batch, threads), timeout)
    row["wall_s"] = round(wall, 1)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        reason = "timed out" if wall > timeout else (err.strip().splitlines() or [f"exit code {code}"])[-1]
        row["status"] = f"failed: {reason}"[:300]
        return row
    result = json.loads(lines[-1])
    if mode == "generate":
        seconds, gflop = result["g_fwd_ms"] / 1e3, result["g_fwd_gflop"]
    else:
        seconds, gflop = result["train_iter_s"], result["train_iter_gflop"]
    built, run_peak = result.get("rss_built_mb"), result.get("run_peak_rss_mb")
    # ru_maxrss can miss a high-water mark the child read itself (memory returned without
    # an unmap updates the kernel's mark lazily): the largest of them.
    known = [value for value in (peak, result.get("peak_rss_mb"), run_peak) if value is not None]
    peak = max(known) if known else None
    row.update(status="ok", seconds=round(seconds, 5), ms_per_img=round(seconds * 1e3 / batch, 3),
               img_per_s=round(batch / seconds, 3), gflop=gflop, gflops_per_s=round(gflop / seconds, 2),
               peak_rss_mb=None if peak is None else round(peak, 1), run_peak_rss_mb=run_peak,
               rss_built_mb=built)
    top = run_peak if run_peak is not None else peak
    if top is not None and built is not None:
        row["mb_per_img"] = round(max(top - built, 0) / batch, 2)
    return row


def best_batches(rows):
    """{mode: {"<resolution>px_<threads>t": batch with the least ms per image}}."""
    best = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        key = f"{row['resolution']}px_{row['threads']}t"
        current = best.setdefault(row["mode"], {}).get(key)
        if current is None or row["ms_per_img"] < current[1]:
            best[row["mode"]][key] = (row["batch"], row["ms_per_img"])
    return {mode: {key: value[0] for key, value in entries.items()} for mode, entries in best.items()}


# The plot, drawn with Pillow (matplotlib is not a dependency).

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _log_ticks(low, high):
    """Tick values 1, 2, 5 x 10^k within [low, high] (at least the two ends)."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks if len(ticks) >= 2 else [low, high]


def _dashed_line(draw, points, color, width, dashed):
    if not dashed:
        draw.line(points, fill=color, width=width)
        return
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        steps = max(int(length // 8), 1)
        for step in range(0, steps, 2):
            a, b = step / steps, min((step + 1) / steps, 1)
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                      fill=color, width=width)


def _panel(draw, box, title, series, y_label, fonts):
    """One log-log panel in box (left, top, right, bottom): series {(resolution, threads): [(batch, y)]}."""
    left, top, right, bottom = box
    font, small = fonts
    draw.text((left, top - 26), title, fill="black", font=font)
    points = [(b, y) for values in series.values() for b, y in values if y and y > 0]
    draw.rectangle(box, outline="black")
    if not points:
        draw.text((left + 10, top + 10), "no data", fill="gray", font=small)
        return
    x_low, x_high = min(b for b, _ in points), max(b for b, _ in points)
    y_low, y_high = min(y for _, y in points), max(y for _, y in points)
    if x_high == x_low:
        x_low, x_high = x_low / 2, x_high * 2
    if y_high <= y_low * 1.01:
        y_low, y_high = y_low / 2, y_high * 2
    y_low, y_high = y_low / 1.1, y_high * 1.1

    def at(b, y):
        fx = (math.log2(b) - math.log2(x_low)) / (math.log2(x_high) - math.log2(x_low))
        fy = (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low))
        return left + 12 + fx * (right - left - 24), bottom - 8 - fy * (bottom - top - 16)

    for tick in _log_ticks(y_low, y_high):
        _, y = at(x_low, tick)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), f"{tick:g}", fill="black", font=small, anchor="rm")
    batch = 1
    while batch <= x_high:
        if batch >= x_low:
            x, _ = at(batch, y_low)
            draw.line([(x, top), (x, bottom)], fill=(225, 225, 225))
            draw.text((x, bottom + 6), str(batch), fill="black", font=small, anchor="mt")
        batch *= 2
    draw.text(((left + right) / 2, bottom + 24), "batch", fill="black", font=small, anchor="mt")
    draw.text((left - 6, top - 8), y_label, fill="black", font=small, anchor="rb")
    resolutions = sorted({resolution for resolution, _ in series})
    most_threads = max(threads for _, threads in series)
    for (resolution, threads), values in sorted(series.items()):
        values = sorted((b, y) for b, y in values if y and y > 0)
        color = _COLORS[resolutions.index(resolution) % len(_COLORS)]
        xy = [at(b, y) for b, y in values]
        if len(xy) > 1:
            _dashed_line(draw, xy, color, 2, dashed=threads < most_threads)
        for x, y in xy:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)


def plot(rows, path):
    """scaling.png: time per image and memory per image against the batch, per mode."""
    from PIL import Image, ImageDraw

    modes = [mode for mode in MODES if any(r["mode"] == mode and r["status"] == "ok" for r in rows)] or ["generate"]
    width, panel_h = 1200, 380
    height = 70 + panel_h * len(modes) + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    fonts = (_font(16), _font(12))
    titles = {"generate": "G forward", "train": "training iteration"}
    for index, mode in enumerate(modes):
        top = 60 + index * panel_h
        for column, (key, label) in enumerate((("ms_per_img", "ms / image"), ("mb_per_img", "MiB / image"))):
            series = {}
            for row in rows:
                if row["mode"] == mode and row["status"] == "ok" and row[key] not in ("", None):
                    series.setdefault((row["resolution"], row["threads"]), []).append(
                        (row["batch"], float(row[key])))
            left = 90 + column * (width // 2)
            what = "time" if column == 0 else "memory above the built networks"
            _panel(draw, (left, top, left + width // 2 - 130, top + panel_h - 90),
                   f"{titles[mode]}: {what} per image", series, label, fonts)
    resolutions = sorted({r["resolution"] for r in rows if r["status"] == "ok"})
    threads = sorted({r["threads"] for r in rows if r["status"] == "ok"})
    x = 90
    legend_y = height - 40
    for index, resolution in enumerate(resolutions):
        color = _COLORS[index % len(_COLORS)]
        draw.line([(x, legend_y), (x + 30, legend_y)], fill=color, width=3)
        draw.text((x + 36, legend_y), f"{resolution} px", fill="black", font=fonts[1], anchor="lm")
        x += 110
    if len(threads) > 1:
        draw.text((x + 20, legend_y), f"solid: {threads[-1]} threads, dashed: fewer "
                  f"({', '.join(map(str, threads[:-1]))})", fill="black", font=fonts[1], anchor="lm")
    elif threads:
        draw.text((x + 20, legend_y), f"{threads[0]} thread(s)", fill="black", font=fonts[1], anchor="lm")
    image.save(path)


def main():
    if not OUTDIR.value:
        raise app.UsageError("--outdir is required")
    configurations = grid()
    outdir = cli.outdir_flag(OUTDIR.value)
    csv_path, png_path = outdir / "scaling.csv", outdir / "scaling.png"
    rows = []
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for count, (mode, resolution, batch, threads) in enumerate(configurations, 1):
            row = measure(mode, resolution, batch, threads, TIMEOUT.value)
            rows.append(row)
            writer.writerow(row)
            file.flush()
            print(f"[{count}/{len(configurations)}] {mode} {resolution}px batch {batch} "
                  f"threads {threads}: {row['status']}"
                  + (f", {row['ms_per_img']} ms/img, peak {row['peak_rss_mb']} MiB"
                     if row["status"] == "ok" else ""), file=sys.stderr, flush=True)
    plot(rows, png_path)
    statuses = [row["status"].split(":")[0] for row in rows]
    print(json.dumps({"csv": str(csv_path), "png": str(png_path), "configurations": len(rows),
                      "ok": statuses.count("ok"), "skipped": statuses.count("skipped"),
                      "failed": statuses.count("failed"), "best_batch": best_batches(rows)}),
          flush=True)


if __name__ == "__main__":
    cli.run(main)
