"""Drawing a photo of the synthetic world: a scene background and one large outlined object.

Shapes live in a unit box (x and y in [-0.5, 0.5], y down) and are placed with random scale,
shift, small rotation and mirroring, so no two photos of one triple are the same picture. Drawing
happens at ``supersample`` times the size and is box-filtered down, which gives smooth, exactly
reproducible edges; mild Gaussian noise is added last. All randomness comes from the caller's
``numpy.random.Generator``, so a photo is a pure function of its triple and its seed.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from photodialog.data.synth.attributes import COLOURS, Triple

OUTLINE = (30, 25, 35)
# At night a dark outline would vanish into the sky, so objects there get a moonlit rim instead:
# the silhouette must stay readable in every scene.
NIGHT_OUTLINE = (225, 225, 215)
LIGHT = (225, 235, 240)  # windows
TRUNK = (95, 65, 45)

# The background colours of each scene (what every object colour must stand out from).
SCENE_PALETTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "beach": {"sky": (175, 215, 240), "sea": (110, 175, 190), "sand": (236, 220, 185)},
    "park": {"sky": (190, 220, 235), "grass": (140, 170, 120), "bush": (110, 140, 95)},
    "city": {"sky": (205, 205, 212), "building": (135, 135, 145), "window": (190, 190, 170),
             "road": (95, 95, 100)},
    "snow": {"sky": (200, 210, 225), "ground": (245, 247, 250), "flake": (255, 255, 255)},
    "night": {"sky": (20, 25, 60), "ground": (35, 35, 50), "moon": (230, 230, 205),
              "light": (240, 240, 240)},
}

OBJECT_SIZE_RANGE = (0.40, 0.55)  # object box side as a fraction of the image side
SHIFT_RANGE = 0.08  # largest shift of the object centre, as a fraction of the image side
MAX_ROTATION_DEG = 8.0
NOISE_STD = 3.0  # on the 0..255 scale


def render_photo(triple: Triple, rng: np.random.Generator, size: int = 64,
                 supersample: int = 4) -> Image.Image:
    """An RGB ``size`` x ``size`` photo of ``triple``, varied by ``rng``."""
    canvas = size * supersample
    image = Image.new("RGB", (canvas, canvas))
    draw = ImageDraw.Draw(image)
    _BACKGROUNDS[triple.scene](draw, canvas, rng)
    _draw_object(draw, triple, canvas, rng)
    image = image.reduce(supersample)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, NOISE_STD, size=pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------
# Backgrounds: each scene has its own layout and palette, jittered a little per photo.

def _jitter(colour: tuple[int, int, int], rng: np.random.Generator, amount: int = 8) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _sky_and_ground(draw, canvas, rng, sky, ground, horizon_range) -> int:
    horizon = int(canvas * rng.uniform(*horizon_range))
    draw.rectangle([0, 0, canvas, horizon], fill=_jitter(sky, rng))
    draw.rectangle([0, horizon, canvas, canvas], fill=_jitter(ground, rng))
    return horizon


def _dots(draw, canvas, rng, colour, count, top, bottom, radius) -> None:
    for _ in range(count):
        x, y = rng.uniform(0, canvas), rng.uniform(top, bottom)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def _beach(draw, canvas, rng) -> None:
    p = SCENE_PALETTES["beach"]
    horizon = _sky_and_ground(draw, canvas, rng, p["sky"], p["sand"], (0.38, 0.48))
    sea_bottom = horizon + int(canvas * rng.uniform(0.08, 0.13))
    draw.rectangle([0, horizon, canvas, sea_bottom], fill=_jitter(p["sea"], rng))


def _park(draw, canvas, rng) -> None:
    p = SCENE_PALETTES["park"]
    horizon = _sky_and_ground(draw, canvas, rng, p["sky"], p["grass"], (0.42, 0.55))
    for _ in range(int(rng.integers(2, 5))):
        x, r = rng.uniform(0, canvas), canvas * rng.uniform(0.06, 0.12)
        draw.ellipse([x - r, horizon - r, x + r, horizon + r], fill=_jitter(p["bush"], rng))


def _city(draw, canvas, rng) -> None:
    p = SCENE_PALETTES["city"]
    draw.rectangle([0, 0, canvas, canvas], fill=_jitter(p["sky"], rng))
    road_top = int(canvas * rng.uniform(0.82, 0.88))
    x = -rng.uniform(0, 0.1) * canvas
    while x < canvas:
        width = canvas * rng.uniform(0.14, 0.24)
        top = canvas * rng.uniform(0.15, 0.5)
        draw.rectangle([x, top, x + width - 2, road_top], fill=_jitter(p["building"], rng, 12))
        _windows(draw, x, top, width, road_top, canvas, p["window"])
        x += width
    draw.rectangle([0, road_top, canvas, canvas], fill=_jitter(p["road"], rng))


def _windows(draw, left, top, width, bottom, canvas, colour) -> None:
    step = canvas * 0.06
    side = canvas * 0.025
    y = top + step * 0.5
    while y + side < bottom - step * 0.5:
        x = left + step * 0.5
        while x + side < left + width - step * 0.3:
            draw.rectangle([x, y, x + side, y + side], fill=colour)
            x += step
        y += step


def _snow(draw, canvas, rng) -> None:
    p = SCENE_PALETTES["snow"]
    horizon = _sky_and_ground(draw, canvas, rng, p["sky"], p["ground"], (0.42, 0.58))
    _dots(draw, canvas, rng, p["flake"], 14, 0, horizon, canvas * 0.012)


def _night(draw, canvas, rng) -> None:
    p = SCENE_PALETTES["night"]
    horizon = _sky_and_ground(draw, canvas, rng, p["sky"], p["ground"], (0.6, 0.75))
    _dots(draw, canvas, rng, p["light"], 12, 0, horizon * 0.9, canvas * 0.007)
    x = canvas * (0.12 if rng.random() < 0.5 else 0.88)
    y, r = canvas * 0.12, canvas * 0.06
    draw.ellipse([x - r, y - r, x + r, y + r], fill=p["moon"])


_BACKGROUNDS = {"beach": _beach, "park": _park, "city": _city, "snow": _snow, "night": _night}


# ---------------------------------------------------------------------------------------------
# Objects: a list of parts per object, each a polygon or a thick line in unit coordinates.
# Part roles: "body" (the object's colour), "shade" (a darker body colour, for a cube's side),
# "dark" (outline colour: wheels, door), "light" (windows), "trunk".

def _circle(cx: float, cy: float, r: float, n: int = 40) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
            for k in range(n)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star(outer: float = 0.55, inner: float = 0.27) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((r * math.cos(angle), r * math.sin(angle) + 0.04))
    return points


def _arc(cx, cy, r, start_deg, end_deg, n=16) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
            for a in np.linspace(start_deg, end_deg, n)]


def _inside(points, radius: float) -> list[tuple[float, float]]:
    """The points of a line that lie within ``radius`` of the centre (a ball's seams)."""
    return [(x, y) for x, y in points if x * x + y * y <= radius * radius]


SHAPES: dict[str, list[tuple[str, str, list[tuple[float, float]]]]] = {
    # (kind, role, points): kind "poly" is filled and outlined, "line" is a thick stroke.
    "ball": [("poly", "body", _circle(0, 0, 0.5)),
             ("line", "dark", _inside(_arc(-0.75, 0, 0.62, -60, 60, 40), 0.48)),
             ("line", "dark", _inside(_arc(0.75, 0, 0.62, 120, 240, 40), 0.48))],
    # A shallow cube with a strip of tape: its silhouette stays square, never round like a ball.
    "box": [("poly", "body", _rect(-0.5, -0.36, 0.36, 0.5)),
            ("poly", "body", [(-0.5, -0.36), (0.36, -0.36), (0.5, -0.5), (-0.36, -0.5)]),
            ("poly", "shade", [(0.36, -0.36), (0.5, -0.5), (0.5, 0.36), (0.36, 0.5)]),
            ("line", "dark", [(-0.07, -0.36), (-0.07, 0.5)])],
    "tree": [("poly", "trunk", _rect(-0.08, 0.3, 0.08, 0.5)),
             ("poly", "body", [(0, -0.05), (-0.5, 0.35), (0.5, 0.35)]),
             ("poly", "body", [(0, -0.3), (-0.4, 0.12), (0.4, 0.12)]),
             ("poly", "body", [(0, -0.5), (-0.3, -0.12), (0.3, -0.12)])],
    "house": [("poly", "body", _rect(-0.4, -0.05, 0.4, 0.5)),
              ("poly", "body", [(-0.5, -0.02), (0, -0.5), (0.5, -0.02)]),
              ("poly", "dark", _rect(-0.1, 0.2, 0.1, 0.5)),
              ("poly", "light", _rect(0.17, 0.07, 0.32, 0.22))],
    "car": [("poly", "body", [(-0.3, -0.05), (-0.18, -0.35), (0.2, -0.35), (0.32, -0.05)]),
            ("poly", "body", _rect(-0.5, -0.07, 0.5, 0.3)),
            ("poly", "light", [(-0.2, -0.07), (-0.13, -0.27), (0.0, -0.27), (0.0, -0.07)]),
            ("poly", "light", [(0.05, -0.07), (0.05, -0.27), (0.15, -0.27), (0.23, -0.07)]),
            ("poly", "dark", _circle(-0.28, 0.3, 0.14, 20)),
            ("poly", "dark", _circle(0.28, 0.3, 0.14, 20))],
    "cup": [("line", "handle", _arc(0.2, 0.0, 0.2, -80, 80)),
            ("poly", "body", [(-0.45, -0.4), (0.25, -0.4), (0.15, 0.42), (-0.35, 0.42)])],
    "star": [("poly", "body", _star())],
    # The body is an ellipse, a squashed circle: 0.8 wide and 0.5 tall.
    "fish": [("poly", "body", [(-0.2, 0), (-0.5, -0.28), (-0.5, 0.28)]),
             ("poly", "body", [(x, y * 0.62) for x, y in _circle(0.1, 0, 0.4, 40)]),
             ("poly", "dark", _circle(0.3, -0.06, 0.045, 12))],
}


def _draw_object(draw, triple: Triple, canvas: int, rng: np.random.Generator) -> None:
    side = canvas * rng.uniform(*OBJECT_SIZE_RANGE)
    cx = canvas * (0.5 + rng.uniform(-SHIFT_RANGE, SHIFT_RANGE))
    cy = canvas * (0.5 + rng.uniform(-SHIFT_RANGE, SHIFT_RANGE))
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    cos, sin = math.cos(angle), math.sin(angle)

    def place(points):
        return [(cx + side * (cos * mirror * x - sin * y), cy + side * (sin * mirror * x + cos * y))
                for x, y in points]

    body = _jitter(COLOURS[triple.colour], rng, 10)
    outline = NIGHT_OUTLINE if triple.scene == "night" else OUTLINE
    fills = {"body": body, "shade": tuple(int(c * 0.75) for c in body), "dark": OUTLINE,
             "light": LIGHT, "trunk": TRUNK, "handle": body}
    outline_width = max(1, round(side * 0.045))
    for kind, role, points in SHAPES[triple.object]:
        xy = place(points)
        if kind == "poly":
            draw.polygon(xy, fill=fills[role], outline=outline, width=outline_width)
        else:
            _draw_stroke(draw, xy, role, fills[role], side, outline_width, outline)


def _draw_stroke(draw, xy, role: str, colour, side: float, outline_width: int, outline) -> None:
    """A seam (a thin dark line) or a cup handle (a thick line in the body colour, outlined)."""
    if role == "handle":
        width = round(side * 0.14)
        draw.line(xy, fill=outline, width=width, joint="curve")
        draw.line(xy, fill=colour, width=max(1, width - 2 * outline_width), joint="curve")
    else:
        draw.line(xy, fill=OUTLINE, width=outline_width, joint="curve")
