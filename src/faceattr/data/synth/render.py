"""Faces drawn from label vectors: CelebA-aligned 178x218 crops plus a transparent person layer.

:func:`render_face` paints a person whose visible attributes are exactly the labels given (after
:func:`resolve_labels` removed contradictions), lit by a soft gradient in front of a blurred
background, with the five landmarks placed like CelebA's aligned crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
from faceattr.data.synth.draw import Pen, apply, mix, similarity
from faceattr.data.synth.parts import Face, draw_person

ALIGNED_SIZE = (178, 218)  # width, height of CelebA's aligned crops
# CelebA's mean aligned landmarks: left eye, right eye, nose, left and right mouth corner.
MEAN_LANDMARKS = np.array([[69, 111], [107, 111], [88, 135], [72, 152], [105, 152]], np.float64)
# The person layer extends past the aligned crop (shoulders for the in-the-wild image); its pixel
# (0, 0) is at aligned coordinate LAYER_ORIGIN.
LAYER_ORIGIN = (-30.0, -10.0)
LAYER_SIZE = (238, 272)
_SUPERSAMPLE = 2
_FADE_START = 232.0  # aligned y where the layer's torso starts fading out

# The attributes drawn from the labels, each visible in the image.
RENDERED_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

_HAIR_COLOURS = ("Gray_Hair", "Blond_Hair", "Black_Hair", "Brown_Hair")  # first one set wins
_MALE_ONLY = ("Mustache", "Goatee", "Sideburns", "5_o_Clock_Shadow")


def resolve_labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` (..., 40) made drawable: one hair colour, no beard on women, no bald head under a
    hat or with bangs, a goatee counted as a beard (``No_Beard`` 0)."""
    out = np.array(labels, dtype=np.uint8, copy=True)
    i = ATTRIBUTE_INDEX
    taken = np.zeros(out.shape[:-1], dtype=bool)
    for name in _HAIR_COLOURS:
        out[..., i[name]] &= ~taken
        taken |= out[..., i[name]] == 1
    female = out[..., i["Male"]] == 0
    for name in _MALE_ONLY:
        out[..., i[name]][female] = 0
    out[..., i["No_Beard"]][female] = 1
    out[..., i["No_Beard"]][out[..., i["Goatee"]] == 1] = 0
    hat = out[..., i["Wearing_Hat"]] == 1
    out[..., i["Bald"]][hat] = 0
    bald = out[..., i["Bald"]] == 1
    out[..., i["Bangs"]][bald] = 0
    out[..., i["Receding_Hairline"]][hat | bald] = 0
    return out


@dataclass(frozen=True)
class FaceTraits:
    """What stays the same across the images of one identity: colours and head shape."""

    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    half_width: float
    top: float
    chin: float
    chin_half_width: float
    jaw_power: float
    hairline: float
    hair_volume: float
    hair_length: int
    wave: float
    brow_width: float


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]]) -> np.ndarray:
    return np.asarray(palette[int(rng.integers(len(palette)))], dtype=np.float64)


def _hair_colour(has: set[str], rng: np.random.Generator) -> np.ndarray:
    u = rng.random()
    if "Gray_Hair" in has:
        return mix((150, 150, 150), (218, 216, 210), u)
    if "Blond_Hair" in has:
        return mix((196, 160, 96), (238, 214, 152), u)
    if "Black_Hair" in has:
        return np.array([28.0, 24.0, 26.0]) + rng.normal(0, 4, 3)
    if "Brown_Hair" in has:
        return mix((98, 60, 30), (132, 84, 44), u)
    return mix((172, 78, 36), (214, 118, 58), u)  # copper to ginger: none of the four colours


def sample_traits(labels: np.ndarray, rng: np.random.Generator) -> FaceTraits:
    """An identity's look from its (resolved) label vector: sex, age, skin, hair and face shape."""
    has = {name for name, v in zip(ATTRIBUTES, labels, strict=True) if v}
    male, chubby, oval = ("Male" in has), ("Chubby" in has), ("Oval_Face" in has)
    if "Pale_Skin" in has:
        skin = np.array([247.0, 224.0, 212.0]) + rng.normal(0, 3, 3)
    else:
        tones = np.array([[226, 180, 148], [198, 146, 108], [160, 108, 74], [104, 68, 46]], float)
        t = 3 * rng.beta(1.2, 3.0)
        k = min(int(t), 2)
        skin = mix(tones[k], tones[k + 1], t - k)
    if "Young" not in has:
        skin = mix(skin, (170, 160, 155), 0.12)
    length_p = [0.85, 0.12, 0.03] if male else [0.03, 0.25, 0.72]
    wave = rng.uniform(2.5, 4.0) if "Wavy_Hair" in has else rng.uniform(0.0, 0.6)
    return FaceTraits(
        skin=skin,
        hair=_hair_colour(has, rng),
        iris=_pick(rng, [(90, 60, 35), (50, 34, 22), (80, 118, 160), (88, 118, 80), (120, 90, 50)]),
        lips=mix(skin, (175, 70, 80), 0.55) * 0.85,
        half_width=44.0 + 2 * male + 5 * chubby - 2 * oval + rng.normal(0, 1.2),
        top=30.0 - 2 * male + rng.normal(0, 2.0),
        chin=185.0 + 3 * male + 4 * oval + rng.normal(0, 1.5),
        chin_half_width=(12.0 if male else 7.0) + 3 * chubby + rng.normal(0, 1.0),
        jaw_power=(3.2 if male else 2.0) + 0.8 * chubby - 0.4 * oval + rng.normal(0, 0.2),
        hairline=62.0 + rng.normal(0, 2.5),
        hair_volume=rng.uniform(3, 7) if male else rng.uniform(6, 12),
        hair_length=int(rng.choice(3, p=length_p)),
        wave=wave,
        brow_width=rng.uniform(4.4, 5.4) if "Bushy_Eyebrows" in has else rng.uniform(1.8, 2.6),
    )


@dataclass(frozen=True, eq=False)
class RenderedFace:
    """One drawn face: the aligned crop, the person alone, and where the face is."""

    image: Image.Image  # RGB, ALIGNED_SIZE
    layer: np.ndarray  # (h, w, 4) uint8 person, premultiplied alpha; pixel (0, 0) at LAYER_ORIGIN
    landmarks: np.ndarray  # (5, 2) float64 aligned coordinates, CelebA's order
    face_corners: np.ndarray  # (4, 2) corners of the face box (ears, skull top, chin), aligned


_CLOTHES = [
    (30, 30, 35),
    (45, 50, 70),
    (200, 200, 205),
    (120, 30, 40),
    (40, 80, 60),
    (150, 150, 160),
    (230, 225, 210),
    (60, 90, 140),
    (20, 20, 20),
]
_ACCENTS = [
    (180, 30, 40),
    (30, 60, 150),
    (220, 180, 40),
    (40, 120, 70),
    (120, 40, 120),
    (200, 90, 30),
    (40, 40, 45),
    (230, 230, 235),
]
_LIPSTICKS = [(196, 28, 48), (222, 70, 112), (150, 26, 66), (226, 88, 76), (176, 40, 40)]
_SHADOWS = [(120, 80, 140), (90, 70, 60), (60, 90, 140), (150, 110, 90), (40, 40, 50)]
_JEWELS = [
    (228, 186, 72),
    (214, 214, 224),
    (242, 236, 226),
    (200, 40, 60),
    (60, 120, 200),
    (30, 30, 34),
]
_FRAMES = [(20, 20, 22), (60, 38, 24), (110, 110, 115), (190, 160, 80)]


def _face(labels: np.ndarray, traits: FaceTraits, rng: np.random.Generator) -> Face:
    has = frozenset(name for name, v in zip(ATTRIBUTES, labels, strict=True) if v)
    yaw = rng.normal(0, 1.2)
    eye_y, eye_half = 111.0 + rng.normal(0, 0.7), 19.0 + rng.normal(0, 0.6)
    smiling = "Smiling" in has
    mouth_y, mouth_half = (150.5, 17.5) if smiling else (153.0, 15.5)
    mouth_x = 88.5 + 1.3 * yaw + rng.normal(0, 0.5)
    open_gap = rng.uniform(3.5, 6.0) if smiling else rng.uniform(2.5, 4.5)
    eye_open = rng.uniform(1.8, 2.3) if "Narrow_Eyes" in has else rng.uniform(3.4, 4.2)
    return Face(
        has=has,
        cx=88.0 - 0.3 * yaw,
        eyes=np.array([[88 + yaw - eye_half, eye_y], [88 + yaw + eye_half, eye_y]]),
        nose=np.array([88 + 1.6 * yaw, 135.0 + rng.normal(0, 1.2)]),
        mouth=np.array([[mouth_x - mouth_half, mouth_y], [mouth_x + mouth_half, mouth_y]])
        + rng.normal(0, 0.6, (2, 2)),
        half_width=traits.half_width,
        top=traits.top,
        chin=traits.chin,
        chin_half_width=traits.chin_half_width,
        jaw_power=traits.jaw_power,
        hairline=traits.hairline,
        hair_volume=traits.hair_volume,
        hair_length=traits.hair_length,
        wave=traits.wave,
        skin=traits.skin,
        hair=traits.hair,
        iris=traits.iris,
        lips=traits.lips,
        clothes=_pick(rng, _CLOTHES),
        accent=_pick(rng, _ACCENTS),
        lipstick=_pick(rng, _LIPSTICKS),
        eyeshadow=_pick(rng, _SHADOWS),
        jewel=_pick(rng, _JEWELS),
        glasses=_pick(rng, _FRAMES),
        hat_style=int(rng.integers(3)),
        earring_style=int(rng.integers(3)),
        eye_open=eye_open * (0.85 if smiling else 1.0),
        brow_width=traits.brow_width,
        mouth_gap=open_gap if "Mouth_Slightly_Open" in has else 0.0,
    )


def _light(pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """The pen's drawing reduced to one sample per pixel, (h, w, 4) premultiplied RGBA, under a
    soft directional light, its torso fading out below the crop."""
    color = np.asarray(pen.color.reduce(_SUPERSAMPLE))
    alpha = np.asarray(pen.mask.reduce(_SUPERSAMPLE))
    h, w = alpha.shape
    angle = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(-0.15, 0.15) / 100.0
    x = (np.arange(w, dtype=np.float32) - w / 2) * (slope * np.cos(angle))
    y = (np.arange(h, dtype=np.float32) - h / 2) * (slope * np.sin(angle))
    fade = np.ones(h, dtype=np.float32)
    fade_row = int(_FADE_START - LAYER_ORIGIN[1])
    fade[fade_row:] = np.linspace(1.0, 0.0, h - fade_row)
    gain = rng.uniform(0.8, 0.98) * (1.0 + x[None, :] + y[:, None])
    light = (np.minimum(gain, 1.0) * fade[:, None] * 255).astype(np.uint8)
    faded = alpha.copy()
    faded[fade_row:] = alpha[fade_row:] * fade[fade_row:, None]
    lit = cv2.multiply(color, cv2.merge([light, light, light]), scale=1.0 / 255)
    lit = cv2.min(lit, cv2.merge([faded, faded, faded]))  # premultiplied: colour <= alpha
    return np.dstack([lit, faded])


def composite(canvas: np.ndarray, person: np.ndarray, x: int, y: int) -> None:
    """Lay ``person`` ((h, w, 4) premultiplied RGBA) over ``canvas`` (RGB) at column ``x``, row
    ``y``, in place; ``person`` must fit inside ``canvas``."""
    h, w = person.shape[:2]
    region = canvas[y : y + h, x : x + w]
    clear = 255 - person[..., 3]
    region[:] = cv2.add(
        cv2.multiply(region, cv2.merge([clear, clear, clear]), scale=1.0 / 255), person[..., :3]
    )


def background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A smooth, out-of-focus looking RGB background of ``size``: a few muted colour blobs."""
    grid = rng.integers(0, 256, (int(rng.integers(2, 5)), int(rng.integers(2, 5)), 3))
    base = rng.integers(20, 236) + rng.integers(-25, 26, 3)
    muted = rng.uniform(0.1, 0.5)
    grid = np.clip(grid * muted + base * (1 - muted), 0, 255).astype(np.uint8)
    return Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)


def render_face(labels: np.ndarray, traits: FaceTraits, rng: np.random.Generator) -> RenderedFace:
    """Draw the face that ``labels`` (40 values, consistent: see :func:`resolve_labels`) describe.

    ``traits`` (from :func:`sample_traits`) fix the identity's look; ``rng`` draws the pose (small
    rotation, scale, shift and yaw like CelebA's alignment leaves), clothes, accessories' colours,
    lighting and background.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.shape != (len(ATTRIBUTES),):
        raise ValueError(f"labels must have shape ({len(ATTRIBUTES)},), got {labels.shape}")
    if not np.array_equal(labels, resolve_labels(labels)):
        raise ValueError("labels contradict each other; pass them through resolve_labels first")
    face = _face(labels, traits, rng)
    pose = similarity(
        1.0 + float(np.clip(rng.normal(0, 0.025), -0.06, 0.06)),
        float(np.clip(rng.normal(0, 2.0), -5, 5)),
        (88.0, 131.0),
        tuple(np.clip(rng.normal(0, 1.2, 2), -3, 3)),
    )
    s = _SUPERSAMPLE
    # Pixel centres sit at whole coordinates: 1x pixel i covers 2x pixels 2i and 2i + 1.
    to_layer = s * np.hstack([pose[:, :2], (pose[:, 2] - np.asarray(LAYER_ORIGIN))[:, None]])
    to_layer[:, 2] += (s - 1) / 2
    pen = Pen((LAYER_SIZE[0] * s, LAYER_SIZE[1] * s), to_layer)
    draw_person(pen, face)
    layer = _light(pen, rng)
    image = np.array(background(ALIGNED_SIZE, rng))
    ox, oy = -int(LAYER_ORIGIN[0]), -int(LAYER_ORIGIN[1])
    composite(image, layer[oy : oy + ALIGNED_SIZE[1], ox : ox + ALIGNED_SIZE[0]], 0, 0)
    landmarks = np.vstack([face.eyes, face.nose[None], face.mouth])
    hw, ears = face.half_width, face.half_width + 7
    corners = np.array(
        [
            [face.cx - ears, face.top],
            [face.cx + ears, face.top],
            [face.cx + hw, face.chin],
            [face.cx - hw, face.chin],
        ]
    )
    return RenderedFace(
        image=Image.fromarray(image, "RGB"),
        layer=layer,
        landmarks=apply(pose, landmarks),
        face_corners=apply(pose, corners),
    )
