#!/usr/bin/env python3
"""Checks a screenshot of the erosion demo is not blank (stdlib only).

    python3 scripts/check_screenshot.py demo.png

Passes when the debug panel's region (top left) and the section (bottom band)
both differ from the clear colour, and the section shows several distinct
material colours of assets/materials.ron.
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    width, height, rows = read_png(sys.argv[1])
    clear = rows[0][width - 1]  # top right corner: background, outside panel and section
    materials = palette()

    def region(x0, y0, x1, y1):
        return [rows[y][x] for y in range(int(y0 * height), int(y1 * height)) for x in range(int(x0 * width), int(x1 * width))]

    panel = region(0.02, 0.05, 0.2, 0.45)
    section = region(0.3, 0.6, 0.98, 0.98)
    failures = []
    for name, pixels in [("panel", panel), ("section", section)]:
        differing = sum(1 for p in pixels if max(abs(a - b) for a, b in zip(p, clear)) > 8) / len(pixels)
        print(f"{name}: {differing:.0%} of pixels differ from the background colour {clear}")
        if differing < 0.2:
            failures.append(f"{name} looks blank")
    seen = set()
    for p in set(section):
        for name, rgb in materials.items():
            if max(abs(a - b) for a, b in zip(p, rgb)) <= 6:
                seen.add(name)
    print(f"section shows materials: {', '.join(sorted(seen))}")
    if len(seen) < 4:
        failures.append(f"only {len(seen)} material colours in the section")
    if failures:
        sys.exit("screenshot check FAILED: " + "; ".join(failures))
    print("screenshot check passed")


if __name__ == "__main__":
    main()
