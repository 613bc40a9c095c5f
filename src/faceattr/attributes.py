"""The 40 CelebA attribute names, in the order of ``list_attr_celeba.txt``."""

ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
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
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

ATTRIBUTE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTRIBUTES)}


def attribute_indices(names: list[str] | tuple[str, ...]) -> list[int]:
    """Column indices of ``names`` in :data:`ATTRIBUTES`; a ``KeyError`` names an unknown one."""
    out = []
    for name in names:
        if name not in ATTRIBUTE_INDEX:
            raise KeyError(f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
        out.append(ATTRIBUTE_INDEX[name])
    return out
