#!/usr/bin/env python3
"""Checks a screenshot of the 3D geology demo (stdlib only).

    python3 scripts/check_screenshot.py demo.png

Passes when the debug panel is there (its dark fill at the top left), the
terrain shows at least four material colours of assets/materials.ron (matched
by chromaticity, since lighting changes brightness), and no more than 30% of
the view (16 x 9 cells outside the panel) is background or one flat colour.
"""

import re
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                sys.exit(f"{path}: expected 8-bit RGB(A), non-interlaced")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        prev = line
    return width, height, rows


def palette():
    with open("assets/materials.ron") as f:
        text = f.read()
    return {
        name: tuple(int(v) for v in rgb)
        for name, *rgb in re.findall(r'name:\s*"(\w+)",\s*colour:\s*\((\d+),\s*(\d+),\s*(\d+)\)', text)
    }


def chroma(p):
    s = sum(p)
    return tuple(c / s for c in p) if s else (1 / 3, 1 / 3, 1 / 3)


def close(p, q, tolerance):
    return max(abs(a - b) for a, b in zip(p, q)) <= tolerance


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    width, height, rows = read_png(sys.argv[1])
    failures = []

    # The panel: egui's dark window at the top left.
    def cells(x0, y0, x1, y1):
        return [rows[y][x] for y in range(int(y0 * height), int(y1 * height)) for x in range(int(x0 * width), int(x1 * width))]

    panel = cells(0.02, 0.06, 0.2, 0.4)
    dark = sum(1 for p in panel if max(p) < 70 and max(p) - min(p) < 16) / len(panel)
    print(f"panel: {dark:.0%} of its region is the panel's dark fill")
    if dark < 0.4:
        failures.append("no debug panel at the top left")

    def in_panel(x, y):
        return x < 0.3 * width and y < 0.75 * height

    # The background: the most common colour of the top row outside the panel.
    top = [rows[0][x] for x in range(int(0.3 * width), width)]
    background = max(set(top), key=top.count)

    # Materials, by chromaticity (lighting changes brightness, not hue much).
    materials = {n: chroma(c) for n, c in palette().items() if n != "air"}
    counts = {n: 0 for n in materials}
    scene = 0
    for y in range(0, height, 2):
        for x in range(0, width, 2):
            if in_panel(x, y):
                continue
            p = rows[y][x]
            if close(p, background, 10) or sum(p) < 60:
                continue
            scene += 1
            c = chroma(p)
            name, d = min(((n, max(abs(a - b) for a, b in zip(c, m))) for n, m in materials.items()), key=lambda t: t[1])
            if d <= 0.035:
                counts[name] += 1
    seen = sorted(n for n, k in counts.items() if scene and k / scene >= 0.003)
    print(f"terrain shows materials: {', '.join(seen)}")
    if len(seen) < 4:
        failures.append(f"only {len(seen)} material colours in the view")

    # No large empty area: cells of the view (outside the panel) that are all
    # background or all one colour.
    empty, total = 0, 0
    for cy in range(9):
        for cx in range(16):
            x0, x1 = cx * width // 16, (cx + 1) * width // 16
            y0, y1 = cy * height // 9, (cy + 1) * height // 9
            if in_panel(x0, y0) and in_panel(x1 - 1, y1 - 1):
                continue
            total += 1
            pixels = [rows[y][x] for y in range(y0, y1, 3) for x in range(x0, x1, 3)]
            flat = sum(1 for p in pixels if close(p, background, 10) or close(p, pixels[0], 6)) / len(pixels)
            if flat > 0.97:
                empty += 1
    print(f"empty: {empty} of {total} cells are background or one flat colour")
    if empty > total * 0.3:
        failures.append(f"{empty} of {total} cells empty")
    if failures:
        sys.exit("screenshot check FAILED: " + "; ".join(failures))
    print("screenshot check passed")


if __name__ == "__main__":
    main()
