"""Golden values for src/datasets/image-io.ts and bmp.ts, computed with Pillow + torchvision
semantics (the public VCP-CLIP data pipeline).

Writes tests/fixtures/datasets/image/: source images (PNG, JPEG, TIFF, BMP variants) and what
Pillow makes of them: decoded RGB, Image.resize((S, S), BICUBIC) outputs, CLIP-normalised
tensors and masks binarised after a bilinear Resize((S, S)).

Run: .venv-golden/bin/python python/golden/make_image_golden.py
"""
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "datasets" / "image"
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def source_rgb(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 90 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255 * (x + 2 * y) / (width + 2 * height)
    b = 128 + 60 * np.sign(np.sin(x / 3.0 + y / 4.0))
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def clip_tensor(rgb_u8):
    # torchvision ToTensor + Normalize, in float32: [3, S, S]
    t = rgb_u8.astype(np.float32) / np.float32(255)
    return ((t - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def bmp16(pixels, masks):
    """A bottom-up 16-bit BMP of [H, W] uint16 pixels; `masks` (R, G, B) → BI_BITFIELDS, None → BI_RGB 5-5-5."""
    height, width = pixels.shape
    stride = (width * 2 + 3) // 4 * 4
    rows = b"".join(
        pixels[y].astype("<u2").tobytes().ljust(stride, b"\0") for y in range(height - 1, -1, -1)
    )
    extra = 12 if masks else 0
    offset = 14 + 40 + extra
    header = struct.pack("<2sIHHI", b"BM", offset + len(rows), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 3 if masks else 0, len(rows), 2835, 2835, 0, 0)
    return header + info + (struct.pack("<III", *masks) if masks else b"") + rows


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"resize": [], "mask": [], "decode": []}

    rgb = Image.fromarray(source_rgb(150, 100, 1))
    rgb.save(OUT / "src_rgb.png")
    for size in (64, 128, 160):  # shrink both axes; shrink x / enlarge y; enlarge both
        out = np.asarray(rgb.resize((size, size), Image.BICUBIC))
        np.save(OUT / f"src_rgb_bicubic{size}.npy", out)
        manifest["resize"].append({"source": "src_rgb.png", "size": size, "expected": f"src_rgb_bicubic{size}.npy"})
    np.save(OUT / "src_rgb_clip64.npy", clip_tensor(np.asarray(rgb.resize((64, 64), Image.BICUBIC))))

    gray = Image.fromarray(source_rgb(45, 31, 2)[:, :, 0], mode="L")
    gray.save(OUT / "src_gray.png")
    np.save(OUT / "src_gray_bicubic40.npy", np.asarray(gray.convert("RGB").resize((40, 40), Image.BICUBIC)))
    manifest["resize"].append({"source": "src_gray.png", "size": 40, "expected": "src_gray_bicubic40.npy"})

    # Mask: blobs of 255 plus a few faint non-zero pixels, which the public loader counts as defect.
    y, x = np.mgrid[0:100, 0:150]
    m = (((x - 40) ** 2 + (y - 30) ** 2) < 15 ** 2) | ((np.abs(x - 110) < 3) & (y > 20) & (y < 90))
    mask = np.where(m, 255, 0).astype(np.uint8)
    mask[80:83, 20:23] = 1
    Image.fromarray(mask, mode="L").save(OUT / "mask.png")
    for size in (64, 160):
        binary = Image.fromarray(((mask > 0) * 255).astype(np.uint8), mode="L")
        resized = np.asarray(binary.resize((size, size), Image.BILINEAR)).astype(np.float32) / 255
        np.save(OUT / f"mask_bin{size}.npy", (resized > 0.5).astype(np.uint8))
        manifest["mask"].append({"source": "mask.png", "size": size, "expected": f"mask_bin{size}.npy"})

    # Decoders: what Pillow's convert('RGB') makes of each file.
    small = Image.fromarray(source_rgb(7, 5, 3))  # odd width exercises BMP row padding
    variants = {
        "rgb24.bmp": small,
        "rgba32.bmp": Image.fromarray(np.dstack([np.asarray(small), np.full((5, 7), 200, np.uint8)]), mode="RGBA"),
        "gray8.bmp": small.convert("L"),
        "pal8.bmp": small.convert("P", palette=Image.ADAPTIVE, colors=16),
        "bw1.bmp": small.convert("1"),
        "rgb.tif": small,
        "q95.jpg": rgb,
    }
    # 16-bit BMPs, which Pillow reads but does not write: packed here by hand (5-6-5 bit-fields
    # and the default 5-5-5), decoded by Pillow. Every 5- and 6-bit level appears once.
    levels = np.arange(64, dtype=np.uint16)
    for name, masks in (("rgb565.bmp", (0xF800, 0x07E0, 0x001F)), ("rgb555.bmp", None)):
        r, g, b = levels % 32, levels, (31 - levels) % 32
        if masks is None:
            g = g % 32
            pixels = (r << 10) | (g << 5) | b
        else:
            pixels = (r << 11) | (g << 5) | b
        (OUT / name).write_bytes(bmp16(pixels.reshape(8, 8)[:, :7], masks))
        decoded = np.asarray(Image.open(OUT / name).convert("RGB"))
        np.save(OUT / f"{name}.npy", decoded)
        manifest["decode"].append({"source": name, "expected": f"{name}.npy"})

    for name, image in variants.items():
        if name.endswith(".jpg"):
            image.save(OUT / name, quality=95)
        else:
            image.save(OUT / name)
        decoded = np.asarray(Image.open(OUT / name).convert("RGB"))
        np.save(OUT / f"{name}.npy", decoded)
        manifest["decode"].append({"source": name, "expected": f"{name}.npy"})

    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
