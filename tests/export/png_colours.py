#!/usr/bin/env python3
"""Print the number of distinct colours in an 8-bit RGB/RGBA PNG (stdlib only: zlib + struct).

usage: png_colours.py FILE.png [RRGGBB ...]
  first line: the number of distinct colours (a blank screenshot has 1; a rendered page many);
  then per colour asked for: "RRGGBB PIXELS FIRST_ROW LAST_ROW" (-1 -1 when absent), so a test
  can check that a chart's colour is drawn, and where on the page (rows from the top).
"""
import struct
import sys
import zlib


def main() -> int:
    data = open(sys.argv[1], "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        print("not a PNG", file=sys.stderr)
        return 1
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                print("unsupported PNG format", file=sys.stderr)
                return 1
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours = set()
    wanted = {bytes.fromhex(h.lstrip("#")): [0, -1, -1] for h in sys.argv[2:]}
    i = 0
    for row in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        for x in range(0, stride, bpp * 4):  # every 4th pixel is plenty
            colours.add(bytes(line[x:x + 3]))
        if wanted:
            for x in range(0, stride, bpp):
                hit = wanted.get(bytes(line[x:x + 3]))
                if hit is not None:
                    hit[0] += 1
                    hit[1] = row if hit[1] < 0 else hit[1]
                    hit[2] = row
        prev = line
    print(len(colours))
    for h in sys.argv[2:]:
        n, first, last = wanted[bytes.fromhex(h.lstrip("#"))]
        print(h.lstrip("#").lower(), n, first, last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
