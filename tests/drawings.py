"""Test pictures drawn with PIL: a schematic figure the bundled NudeNet detector reports as exposed (about 0.75),
and the same figure dressed, which it reports clean. No image files, no network."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter

SKIN = (224, 172, 140)


def figure(dressed: bool, background: tuple[int, int, int] = (90, 120, 160)) -> Image.Image:
    image = Image.new("RGB", (512, 512), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((180, 40, 330, 200), fill=SKIN)
    draw.rectangle((150, 200, 360, 512), fill=SKIN)
    for cx in (205, 305):
        draw.ellipse((cx - 55, 250, cx + 55, 360), fill=(230, 180, 150))
        draw.ellipse((cx - 10, 300, cx + 10, 320), fill=(170, 100, 90))
    if dressed:
        draw.rectangle((140, 215, 370, 512), fill=(40, 90, 60))
    return image.filter(ImageFilter.GaussianBlur(3))
