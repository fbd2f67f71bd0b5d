#!/usr/bin/env python3
"""Writes the camera test frames in crates/media/tests/fixtures/ (run again only to change them).

One 64x48 test picture (colour bars, a grey ramp, a colour gradient and a checkerboard) as a
camera would deliver it in each format the converter accepts: pattern.ppm (RGB), .bgr, .gray,
.yuyv, .nv12 and .i420 (BT.601 limited range, as webcams send), and pattern.jpg (MJPEG, 4:2:2,
made by ImageMagick) with pattern-jpg.ppm, ImageMagick's own decoding of it: the reference the
MJPEG path is checked against. Stdlib Python plus ImageMagick's `convert`.
"""
import os
import subprocess
import sys

W, H = 64, 48
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "media", "tests", "fixtures")


def picture():
    bars = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
            (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    px = []
    for y in range(H):
        for x in range(W):
            if y < 16:
                px.append(bars[x * len(bars) // W])
            elif y < 24:
                g = x * 255 // (W - 1)
                px.append((g, g, g))
            elif y < 40:
                px.append((x * 4 % 256, (y - 24) * 16 % 256, 255 - x * 4 % 256))
            else:
                on = ((x // 4) + (y // 4)) % 2
                px.append((230, 230, 230) if on else (20, 40, 60))
    return px


def yuv(r, g, b):
    """BT.601 limited range, as floats."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def clamp(v):
    return max(0, min(255, int(round(v))))


def main():
    os.makedirs(OUT, exist_ok=True)
    px = picture()
    rgb = bytes(c for p in px for c in p)
    with open(os.path.join(OUT, "pattern.ppm"), "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (W, H) + rgb)
    with open(os.path.join(OUT, "pattern.bgr"), "wb") as f:
        f.write(bytes(c for p in px for c in reversed(p)))
    with open(os.path.join(OUT, "pattern.gray"), "wb") as f:
        f.write(bytes(clamp(0.299 * r + 0.587 * g + 0.114 * b) for r, g, b in px))
    full = [yuv(*p) for p in px]
    yy = [clamp(p[0]) for p in full]
    # 4:2:2 chroma: each horizontal pair averaged.
    yuyv = bytearray()
    for y in range(H):
        for x in range(0, W, 2):
            a, b = full[y * W + x], full[y * W + x + 1]
            yuyv += bytes([yy[y * W + x], clamp((a[1] + b[1]) / 2), yy[y * W + x + 1], clamp((a[2] + b[2]) / 2)])
    with open(os.path.join(OUT, "pattern.yuyv"), "wb") as f:
        f.write(yuyv)
    # 4:2:0 chroma: each 2x2 block averaged.
    u, v = [], []
    for cy in range(H // 2):
        for cx in range(W // 2):
            block = [full[(2 * cy + dy) * W + 2 * cx + dx] for dy in (0, 1) for dx in (0, 1)]
            u.append(clamp(sum(p[1] for p in block) / 4))
            v.append(clamp(sum(p[2] for p in block) / 4))
    with open(os.path.join(OUT, "pattern.i420"), "wb") as f:
        f.write(bytes(yy) + bytes(u) + bytes(v))
    with open(os.path.join(OUT, "pattern.nv12"), "wb") as f:
        f.write(bytes(yy) + bytes(c for pair in zip(u, v) for c in pair))
    jpg = os.path.join(OUT, "pattern.jpg")
    subprocess.run(["convert", os.path.join(OUT, "pattern.ppm"), "-sampling-factor", "2x1",
                    "-quality", "92", jpg], check=True)
    subprocess.run(["convert", jpg, "-depth", "8", os.path.join(OUT, "pattern-jpg.ppm")], check=True)
    print("wrote", sorted(os.listdir(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
