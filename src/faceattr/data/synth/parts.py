"""The parts of a drawn face (hair, head, features, beard, accessories) in painting order.

Every function draws one part of a :class:`Face` with a :class:`~faceattr.data.synth.draw.Pen`;
:func:`draw_person` paints them all, back to front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceattr.data.synth.draw import Pen, ellipse, mix, rgba, shade, superellipse


@dataclass(frozen=True)
class Face:
    """Everything needed to paint one face, in aligned coordinates (before pose jitter)."""

    has: frozenset[str]  # the attributes shown
    cx: float  # head centre line
    eyes: np.ndarray  # (2, 2) left and right eye centres
    nose: np.ndarray  # (2,) nose tip
    mouth: np.ndarray  # (2, 2) left and right mouth corners
    half_width: float  # head half width at the cheeks
    top: float  # top of the skull
    chin: float  # bottom of the chin
    chin_half_width: float
    jaw_power: float  # 1.5 pointed jaw ... 4 square jaw
    hairline: float
    hair_volume: float
    hair_length: int  # 0 short, 1 to the jaw, 2 to the shoulders
    wave: float  # amplitude of wavy hair outlines
    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    clothes: np.ndarray
    accent: np.ndarray  # tie and hat colour
    lipstick: np.ndarray
    eyeshadow: np.ndarray
    jewel: np.ndarray  # earrings and necklace
    glasses: np.ndarray
    hat_style: int  # 0 beanie, 1 cap, 2 brimmed hat
    earring_style: int  # 0 stud, 1 hoop, 2 drop
    eye_open: float  # half height of the eye opening
    brow_width: float
    mouth_gap: float  # opening between the lips (0: closed)


CHEEK_LEVEL = 116.0  # aligned y of the head's widest point


def head_outline(f: Face, grow: float = 0.0) -> np.ndarray:
    """The head contour (skull, cheeks, jaw, chin), ``grow`` pixels larger all round."""
    cy = CHEEK_LEVEL
    hw = f.half_width + grow
    upper = ellipse(f.cx, cy, hw, cy - f.top + grow, 180, 360, 30)
    u = np.linspace(0.0, 1.0, 16)
    chin_hw = f.chin_half_width + grow * 0.5
    w = chin_hw + (hw - chin_hw) * (1.0 - u**f.jaw_power) ** 0.5
    y = cy + u * (f.chin + grow - 4.0 - cy)
    right = np.stack([f.cx + w, y], axis=1)
    bottom = ellipse(f.cx, f.chin + grow - 4.0, chin_hw, 4.0, 0, 180, 9)
    left = np.stack([f.cx - w, y], axis=1)[::-1]
    return np.vstack([upper, right, bottom, left])


def _hairline(f: Face) -> np.ndarray:
    """Right temple to left temple along the top of the forehead."""
    hw, top = f.half_width, f.hairline
    recede = 20.0 if "Receding_Hairline" in f.has else 0.0
    xs = np.array([hw - 1.5, hw - 5, hw * 0.55, hw * 0.2, 0.0])
    ys = np.array([104.0, 86.0 - recede, top + 4 - recede, top + 1, top])
    right = np.stack([f.cx + xs, ys], axis=1)
    left = np.stack([f.cx - xs[::-1], ys[::-1]], axis=1)
    return np.vstack([right, left[1:]])


def _wavy(points: np.ndarray, amplitude: float, period: float, axis: int) -> np.ndarray:
    out = points.copy()
    out[:, axis] += amplitude * np.sin(points[:, 1 - axis] * 2 * np.pi / period)
    return out


def _neck_half_width(f: Face) -> float:
    return f.half_width * (0.5 if "Male" in f.has else 0.42)


def draw_torso(pen: Pen, f: Face) -> None:
    """Shoulders and clothes: a jacket over a white collar and a necktie, a round neck, or a
    neckline showing the chest."""
    cx, neck = f.cx, _neck_half_width(f)
    xs = np.array([neck + 1, 40, 78, 105, 118, 122])
    ys = np.array([197.0, 204, 220, 244, 268, 290])
    shoulders = np.vstack([np.stack([cx - xs, ys], 1), np.stack([cx + xs, ys], 1)[::-1]])
    pen.polygon(shoulders, rgba(f.clothes))
    if "Wearing_Necktie" in f.has:
        shirt = np.array([242.0, 242.0, 246.0])
        pen.polygon(np.array([[cx - neck - 6, 196], [cx, 250], [cx + neck + 6, 196]]), rgba(shirt))
        for s in (-1, 1):
            collar = np.array([[cx + s * 3, 206], [cx + s * (neck + 5), 193], [cx + s * 17, 214]])
            pen.polygon(collar, shade(shirt, 0.9))
        tie, knot_top = rgba(f.accent), 198.0
        knot = np.array([[cx - 6, knot_top], [cx + 6, knot_top], [cx + 4, 208], [cx - 4, 208]])
        pen.polygon(knot, shade(f.accent, 0.85))
        blade = np.array([[cx - 4, 207], [cx + 4, 207], [cx + 10, 258], [cx, 268], [cx - 10, 258]])
        pen.polygon(blade, tie)
        for y in (218.0, 232.0, 246.0):
            pen.line(np.array([[cx - 6, y], [cx + 6, y + 6]]), shade(f.accent, 0.65), 1.5)
    elif "Male" in f.has:
        pen.polygon(ellipse(cx, 197, neck + 3, 6, 0, 180, 12), shade(f.clothes, 0.8))
    else:
        pen.polygon(ellipse(cx, 197, neck + 12, 24, 0, 180, 16), shade(f.skin, 0.9))


def draw_back_hair(pen: Pen, f: Face) -> None:
    """The hair mass behind the head and shoulders (medium and long hair)."""
    if f.hair_length == 0 or "Bald" in f.has:
        return
    bottom = 176.0 if f.hair_length == 1 else 252.0
    r = f.half_width + f.hair_volume + 3
    cy = CHEEK_LEVEL
    top = ellipse(f.cx, cy, r, cy - f.top + f.hair_volume + 2, 180, 360, 24)
    side = np.linspace(cy, bottom, 10)
    spread = 6.0 * (side - cy) / (bottom - cy)
    right = np.stack([f.cx + r + spread, side], 1)
    left = np.stack([f.cx - r - spread, side], 1)[::-1]
    mass = np.vstack([top, _wavy(right, f.wave, 22, 0), _wavy(left, f.wave, 22, 0)])
    pen.polygon(mass, shade(f.hair, 0.8))


def draw_neck(pen: Pen, f: Face) -> None:
    """The neck, shadowed under the jaw."""
    cx, w = f.cx, _neck_half_width(f)
    pen.polygon(
        np.array([[cx - w, 150], [cx + w, 150], [cx + w + 2, 212], [cx - w - 2, 212]]),
        shade(f.skin, 0.88),
    )
    pen.polygon(ellipse(cx, f.chin - 6, w + 2, 14, 0, 180, 12), shade(f.skin, 0.75, 140))


def draw_necklace(pen: Pen, f: Face) -> None:
    """A chain with a pendant around the base of the neck."""
    w = _neck_half_width(f)
    pen.line(ellipse(f.cx, 186, w + 4, 16, 5, 175, 24), rgba(f.jewel), 4.0)
    pen.disc(f.cx, 203, 6.0, rgba(f.jewel))


def draw_ears(pen: Pen, f: Face) -> None:
    """Both ears at the sides of the head."""
    for side in (-1, 1):
        x = f.cx + side * (f.half_width + 1)
        pen.polygon(ellipse(x, 122, 6.5, 14), shade(f.skin, 0.93))
        start = -60 if side > 0 else 120  # the fold faces outwards
        pen.line(ellipse(x + side, 122, 3.2, 9, start, start + 120, 8), shade(f.skin, 0.75), 1.2)


def draw_head(pen: Pen, f: Face) -> None:
    """The face and skull with soft shading, a double chin, cheek colour and wrinkles."""
    if "Double_Chin" in f.has:
        pen.polygon(ellipse(f.cx, f.chin + 1, f.chin_half_width + 15, 10), shade(f.skin, 0.9))
    pen.polygon(head_outline(f), shade(f.skin, 0.9))
    pen.polygon(head_outline(f, -3.0), rgba(f.skin))
    pen.polygon(ellipse(f.cx, 112, f.half_width * 0.62, 40), shade(f.skin, 1.05, 90))
    if "Double_Chin" in f.has:
        pen.line(
            ellipse(f.cx, f.chin - 2, f.chin_half_width + 9, 6, 20, 160, 12),
            shade(f.skin, 0.72),
            1.8,
        )
    cheeks = [(f.eyes[0, 0] - 2, 134.0), (f.eyes[1, 0] + 2, 134.0)]
    if "Rosy_Cheeks" in f.has:
        for x, y in cheeks:
            pen.polygon(ellipse(x, y, 11, 7), rgba((235, 80, 90), 70))
            pen.polygon(ellipse(x, y, 7, 4.5), rgba((235, 80, 90), 70))
    if "Heavy_Makeup" in f.has:
        for x, y in cheeks:
            pen.polygon(ellipse(x, y - 2, 10, 6), rgba((215, 110, 120), 55))
    if "Young" not in f.has:
        _wrinkles(pen, f)


def _wrinkles(pen: Pen, f: Face) -> None:
    line = shade(f.skin, 0.62, 200)
    (mlx, mly), (mrx, mry) = f.mouth
    nx, ny = f.nose
    pen.line(np.array([[nx - 9, ny - 1], [mlx - 5, mly - 6], [mlx - 4, mly + 6]]), line, 1.8)
    pen.line(np.array([[nx + 9, ny - 1], [mrx + 5, mry - 6], [mrx + 4, mry + 6]]), line, 1.8)
    if "Bangs" not in f.has and "Wearing_Hat" not in f.has:
        for y in (84.0, 90.0):
            pen.line(ellipse(f.cx, y + 12, 16, 10, 235, 305, 8), line, 1.3)
    for (ex, ey), side in zip(f.eyes, (-1, 1), strict=True):
        for dy in (-2.5, 1.0, 4.0):
            pen.line(
                np.array([[ex + side * 11, ey + dy * 0.5], [ex + side * 15, ey + dy]]), line, 1.0
            )
        pen.line(ellipse(ex, ey + 4, 6, 3, 20, 160, 8), line, 1.2)


def draw_facial_hair(pen: Pen, f: Face) -> None:
    """Stubble, a full beard, a goatee, a mustache and sideburns, as the labels say."""
    cx, hw = f.cx, f.half_width
    (mlx, mly), (mrx, mry) = f.mouth
    mx, my = (mlx + mrx) / 2, (mly + mry) / 2
    around_mouth = np.array(
        [[mrx + 4, my - 8], [mrx + 6, my + 6], [mx, my + 15], [mlx - 6, my + 6], [mlx - 4, my - 8]]
    )
    outline = head_outline(f, 1.5)
    jaw = outline[(outline[:, 1] > 128) & (np.abs(outline[:, 0] - cx) < hw + 2)]
    beard_area = np.vstack([jaw, around_mouth[::-1]])
    beard = shade(f.hair, 0.85)
    if "5_o_Clock_Shadow" in f.has:
        pen.polygon(beard_area, rgba(mix(f.hair, (70, 70, 80), 0.6), 85))
    if "No_Beard" not in f.has and "Goatee" not in f.has:
        pen.polygon(beard_area, beard)
        pen.polygon(
            np.array(
                [
                    [mrx + 4, my - 8],
                    [mx, my - 10],
                    [mlx - 4, my - 8],
                    [mlx - 6, my + 6],
                    [mx, my + 10],
                    [mrx + 6, my + 6],
                ]
            ),
            beard,
        )
    if "Goatee" in f.has:
        chin = np.vstack(
            [ellipse(mx, my + 9, 11, 6, 180, 360, 9), ellipse(mx, f.chin - 4, 11, 6, 0, 180, 9)]
        )
        pen.polygon(chin, beard)
    if "Mustache" in f.has:
        top = np.array(
            [[mrx + 3, my + 1], [mx + 8, my - 9], [mx, my - 8], [mx - 8, my - 9], [mlx - 3, my + 1]]
        )
        bottom = np.array(
            [
                [mlx - 1, my - 1],
                [mx - 7, my - 4],
                [mx, my - 3.5],
                [mx + 7, my - 4],
                [mrx + 1, my - 1],
            ]
        )
        pen.polygon(np.vstack([top, bottom]), beard)
    if "Sideburns" in f.has:
        for side in (-1, 1):
            x0, x1 = cx + side * (hw - 0.5), cx + side * (hw - 8)
            pen.polygon(
                np.array([[x0, 96], [x1, 96], [x1 + side, 138], [x0 - side * 2, 140]]), beard
            )


def draw_nose(pen: Pen, f: Face) -> None:
    """Nose bridge, tip and nostrils: broad and bulbous for Big_Nose; long, narrow and sharply
    shadowed for Pointy_Nose."""
    nx, ny = f.nose
    big, pointy = "Big_Nose" in f.has, "Pointy_Nose" in f.has
    half = 7.0 if big else 2.8 if pointy else 4.5
    if pointy:
        for s in (-1, 1):
            bridge = np.array([[nx + s * 2.2, 104], [nx + s * 2.6, 124], [nx + s * 3.4, ny - 2]])
            pen.line(bridge, shade(f.skin, 0.6), 1.7)
        tip = np.array([[nx - 4.5, ny - 1.5], [nx, ny + 4], [nx + 4.5, ny - 1.5]])
        pen.polygon(tip, shade(f.skin, 0.5))
        pen.line(np.array([[nx, 106], [nx, ny - 3]]), shade(f.skin, 1.15, 230), 1.6)
    else:
        for s in (-1, 1):
            side = np.array([[nx + s * 2.5, 116], [nx + s * (half - 0.5), ny - 4]])
            pen.line(side, shade(f.skin, 0.78, 200), 1.3)
        rx, ry = (half + 2.5, 5.0) if big else (half + 1.0, 3.5)
        pen.polygon(ellipse(nx, ny - 1.5, rx, ry), shade(f.skin, 1.07, 200))
    if big:
        pen.polygon(ellipse(nx, ny + 2, half + 2, 3, 0, 180, 10), shade(f.skin, 0.62, 200))
    for s in (-1, 1):
        r = 3.0 if big else 1.4 if pointy else 2.0
        pen.polygon(ellipse(nx + s * (half - 1.5), ny + 0.5, r, 1.4), shade(f.skin, 0.42))


def draw_mouth(pen: Pen, f: Face) -> None:
    """Lips (lipstick, Big_Lips), a smile's curve and the gap of an open mouth with teeth."""
    (lx, ly), (rx, ry) = f.mouth
    smile = 4.0 if "Smiling" in f.has else 0.8
    thick = 1.9 if "Big_Lips" in f.has else 1.0
    t = np.linspace(0.0, 1.0, 15)
    base = np.stack([lx + t * (rx - lx), ly + t * (ry - ly) + smile * np.sin(np.pi * t)], 1)
    gap = np.stack([np.zeros_like(t), f.mouth_gap * np.sin(np.pi * t) ** 0.8], 1)
    upper_edge = base - np.stack(
        [np.zeros_like(t), thick * (2.5 + 1.3 * np.sin(np.pi * t) ** 0.5)], 1
    )
    upper_edge[7, 1] += 0.8 * thick  # cupid's bow
    lower_line = base + gap
    lower_edge = lower_line + np.stack(
        [np.zeros_like(t), thick * 4.0 * np.sin(np.pi * t) ** 0.7], 1
    )
    lip = rgba(f.lipstick) if "Wearing_Lipstick" in f.has else rgba(f.lips)
    if f.mouth_gap > 0:
        pen.polygon(np.vstack([base, lower_line[::-1]]), rgba((60, 20, 25)))
        if "Smiling" in f.has:
            teeth = base + np.stack([np.zeros_like(t), 0.55 * f.mouth_gap * np.sin(np.pi * t)], 1)
            pen.polygon(np.vstack([base[2:-2], teeth[2:-2][::-1]]), rgba((238, 232, 220)))
    pen.polygon(np.vstack([upper_edge, base[::-1]]), lip)
    pen.polygon(np.vstack([lower_line, lower_edge[::-1]]), lip)
    if f.mouth_gap == 0:
        pen.line(base, shade(np.array(lip[:3]), 0.55), 1.0)


def draw_eyes(pen: Pen, f: Face) -> None:
    """Eyes (open or narrow), lids, eye make-up, bags and brows (arched, bushy)."""
    for (ex, ey), side in zip(f.eyes, (-1, 1), strict=True):
        half_w, h = 7.5, f.eye_open
        upper = ellipse(ex, ey + 0.5, half_w, h, 180, 360, 14)
        lower = ellipse(ex, ey - 0.5, half_w, h * 0.75, 0, 180, 14)
        if "Heavy_Makeup" in f.has:
            lid = np.vstack([upper, ellipse(ex, ey, half_w + 2, h + 6, 0, -180, 14)])
            pen.polygon(lid, rgba(f.eyeshadow, 150))
        if "Bags_Under_Eyes" in f.has:
            pen.polygon(ellipse(ex, ey + h + 1, half_w, 3.5, 0, 180, 12), shade(f.skin, 0.78, 170))
            pen.line(
                ellipse(ex, ey + h + 0.5, half_w - 0.5, 4.5, 20, 160, 10), shade(f.skin, 0.6), 1.1
            )
        pen.polygon(np.vstack([upper, lower]), rgba((245, 244, 240)))
        pen.disc(ex, ey, min(3.6, h + 0.4), rgba(f.iris))
        pen.disc(ex, ey, min(1.6, h * 0.5), rgba((15, 12, 12)))
        pen.polygon(
            np.vstack([upper, ellipse(ex, ey - 1.5, half_w + 0.8, h + 4, 0, -180, 14)]),
            rgba(f.skin),
        )
        liner = 2.4 if "Heavy_Makeup" in f.has else 1.3
        pen.line(upper, rgba((30, 22, 20)), liner)
        if "Heavy_Makeup" in f.has:
            pen.line(
                np.array(
                    [upper[0 if side < 0 else -1], upper[0 if side < 0 else -1] + [side * 3, -2]]
                ),
                rgba((20, 15, 15)),
                1.6,
            )
        pen.line(lower, shade(f.skin, 0.7), 0.8)
        _brow(pen, f, ex, side)


def _brow(pen: Pen, f: Face, ex: float, side: int) -> None:
    color = rgba(f.hair * 0.55) if f.hair.mean() < 150 else rgba(mix(f.hair, (90, 70, 50), 0.45))
    arch = 5.5 if "Arched_Eyebrows" in f.has else 2.0
    y0 = f.eyes[0, 1] - 12.0
    xs = np.array([ex - side * 8, ex - side * 2, ex + side * 4, ex + side * 10])
    ys = np.array([y0 + 1, y0 - arch * 0.7, y0 - arch, y0 + 2.5])
    pen.line(np.stack([xs, ys], 1), color, f.brow_width)


def draw_front_hair(pen: Pen, f: Face) -> None:
    """Hair over the head: a cap and hairline (receding or not), side locks, bangs; or baldness."""
    cx, hw = f.cx, f.half_width
    cy = CHEEK_LEVEL
    hair, dark = rgba(f.hair), shade(f.hair, 0.7)
    if "Bald" in f.has:
        for s in (-1, 1):
            fringe = np.array(
                [
                    [cx + s * (hw - 3), 88],
                    [cx + s * (hw + 6), 84],
                    [cx + s * (hw + 8), 134],
                    [cx + s * (hw - 2), 128],
                ]
            )
            pen.polygon(fringe, hair)
        pen.polygon(ellipse(cx - 8, f.top + 20, 18, 9), rgba((255, 255, 255), 55))
        return
    r = hw + f.hair_volume
    outer = ellipse(cx, cy, r, cy - f.top + f.hair_volume, 180, 360, 30)
    if f.hair_length == 0:
        outer = outer[outer[:, 1] < 108]
        outer = np.vstack([[cx - hw - 2, 108], outer, [cx + hw + 2, 108]])
    cap = np.vstack([outer, _hairline(f)])
    pen.polygon(cap, hair)
    for k in range(-3, 4):
        pen.line(
            ellipse(cx + k * 6, cy + 8, hw * 0.5, cy - f.top + 6, 235 + k * 3, 275 + k * 5, 8),
            dark,
            1.0,
        )
    if f.hair_length > 0:
        bottom = 168.0 if f.hair_length == 1 else 236.0
        for s in (-1, 1):
            lock = np.array(
                [
                    [cx + s * (hw - 6), 104 if "Receding_Hairline" in f.has else 88],
                    [cx + s * (r + 1), 100],
                    [cx + s * (r + 5), bottom],
                    [cx + s * (hw - 2), bottom - 12],
                    [cx + s * (hw - 3), 126],
                ]
            )
            pen.polygon(_wavy(lock, f.wave * 0.7, 20, 0), hair)
            pen.line(
                np.array([[cx + s * (hw - 1), 100], [cx + s * (hw + 3), bottom - 10]]), dark, 1.0
            )
    if "Bangs" in f.has:
        n = 9
        xs = np.linspace(cx - hw + 4, cx + hw - 4, n)
        ys = np.where(np.arange(n) % 2 == 0, 96.0, 91.0)
        top = ellipse(cx, cy, hw - 2, cy - f.hairline + 6, 360, 180, 12)
        pen.polygon(np.vstack([np.stack([xs, ys], 1), top]), hair)
        for x in xs[1::2]:
            pen.line(np.array([[x, 80], [x + 1, 93]]), dark, 0.9)


def draw_hat(pen: Pen, f: Face) -> None:
    """A beanie, a baseball cap or a brimmed hat over the top of the head."""
    cx, hw = f.cx, f.half_width
    cy = CHEEK_LEVEL
    color, dark = rgba(f.accent), shade(f.accent, 0.7)
    r = hw + f.hair_volume + 3
    dome = ellipse(cx, cy, r, cy - f.top + f.hair_volume + 4, 180, 360, 30)
    rim = 76.0
    for s in (-1, 1):  # hair showing below the hat
        sides = [[hw - 4, rim - 4], [r, rim - 4], [hw + f.hair_volume, 112], [hw - 2, 106]]
        pen.polygon(np.array([[cx + s * x, y] for x, y in sides]), rgba(f.hair))
    dome = np.vstack([dome[dome[:, 1] < rim], [[cx + r * 0.97, rim], [cx - r * 0.97, rim]]])
    if f.hat_style == 2:
        pen.polygon(ellipse(cx, rim - 2, r + 26, 9), dark)
        crown = np.array(
            [
                [cx - r * 0.8, rim - 3],
                [cx - r * 0.72, f.top - 4],
                [cx + r * 0.72, f.top - 4],
                [cx + r * 0.8, rim - 3],
            ]
        )
        pen.polygon(crown, color)
        pen.polygon(
            np.array(
                [
                    [cx - r * 0.8, rim - 12],
                    [cx + r * 0.8, rim - 12],
                    [cx + r * 0.8, rim - 4],
                    [cx - r * 0.8, rim - 4],
                ]
            ),
            dark,
        )
        return
    pen.polygon(dome, color)
    if f.hat_style == 0:
        pen.polygon(
            np.array(
                [[cx - r, rim - 12], [cx + r, rim - 12], [cx + r, rim + 1], [cx - r, rim + 1]]
            ),
            dark,
        )
    else:
        pen.polygon(ellipse(cx, rim, hw + 6, 8, 0, 180, 16), dark)
        pen.line(np.array([[cx, f.top - 2], [cx, rim - 4]]), dark, 1.2)


def draw_glasses(pen: Pen, f: Face) -> None:
    """Eyeglasses: two rounded lenses, bridge and arms."""
    frame = rgba(f.glasses)
    lens = rgba((230, 240, 255), 35)
    (lx, ly), (rx, ry) = f.eyes
    for x, y in ((lx, ly), (rx, ry)):
        shape = superellipse(x, y + 1, 12, 8.5, 3.5)
        pen.polygon(shape, lens)
        pen.line(shape, frame, 2.6, closed=True)
    pen.line(np.array([[lx + 12, ly - 1], [(lx + rx) / 2, ly - 3], [rx - 12, ry - 1]]), frame, 2.2)
    for s, (x, y) in ((-1, (lx, ly)), (1, (rx, ry))):
        pen.line(
            np.array([[x + s * 12, y - 1], [f.cx + s * (f.half_width + 1), y + 2]]), frame, 2.2
        )


def draw_earrings(pen: Pen, f: Face) -> None:
    """Earrings at both earlobes: studs, hoops or drops."""
    jewel = rgba(f.jewel)
    for s in (-1, 1):
        x, y = f.cx + s * (f.half_width + 2), 135.0
        if f.earring_style == 0:
            pen.disc(x, y, 4.0, jewel)
        elif f.earring_style == 1:
            pen.line(ellipse(x, y + 7, 6.5, 7.5), jewel, 2.8, closed=True)
        else:
            pen.line(np.array([[x, y], [x, y + 8]]), jewel, 2.0)
            pen.disc(x, y + 11, 4.4, jewel)


def draw_person(pen: Pen, f: Face) -> None:
    """Paint the whole person back to front."""
    draw_back_hair(pen, f)
    draw_neck(pen, f)
    draw_torso(pen, f)
    if "Wearing_Necklace" in f.has:
        draw_necklace(pen, f)
    draw_ears(pen, f)
    draw_head(pen, f)
    pen.silhouette = False  # features inside the head's outline
    draw_facial_hair(pen, f)
    draw_nose(pen, f)
    draw_mouth(pen, f)
    draw_eyes(pen, f)
    pen.silhouette = True
    draw_front_hair(pen, f)
    if "Wearing_Hat" in f.has:
        draw_hat(pen, f)
    if "Eyeglasses" in f.has:
        draw_glasses(pen, f)
    if "Wearing_Earrings" in f.has:
        draw_earrings(pen, f)
