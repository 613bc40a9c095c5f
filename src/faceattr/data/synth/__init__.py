"""Synthetic CelebA: procedurally drawn faces with CelebA's label statistics, in CelebA's format.

``generate_dataset(out, count, seed)`` writes aligned and in-the-wild images and every annotation
file; :data:`RENDERED_ATTRIBUTES` lists the attributes visibly drawn from the labels (the others
only follow CelebA's frequencies and correlations).
"""

from faceattr.data.synth.generate import (
    ALIGNED_BOX_FILE,
    TRUTH_FILE,
    DatasetPlan,
    SynthSummary,
    generate_dataset,
    plan_dataset,
    render_array,
)
from faceattr.data.synth.label_stats import LabelStats, compute_label_stats, load_label_stats
from faceattr.data.synth.labels import (
    IDENTITY_ATTRIBUTES,
    MINORITY_FLIP_RATE,
    LabelModel,
    add_label_noise,
    celeba_label_model,
    sample_identity_labels,
    sample_labels,
)
from faceattr.data.synth.render import (
    ALIGNED_SIZE,
    MEAN_LANDMARKS,
    RENDERED_ATTRIBUTES,
    FaceTraits,
    RenderedFace,
    render_face,
    resolve_labels,
    sample_traits,
)
from faceattr.data.synth.wild import WildImage, place_in_wild

__all__ = [
    "ALIGNED_BOX_FILE",
    "ALIGNED_SIZE",
    "IDENTITY_ATTRIBUTES",
    "MEAN_LANDMARKS",
    "MINORITY_FLIP_RATE",
    "RENDERED_ATTRIBUTES",
    "TRUTH_FILE",
    "DatasetPlan",
    "FaceTraits",
    "LabelModel",
    "LabelStats",
    "RenderedFace",
    "SynthSummary",
    "WildImage",
    "add_label_noise",
    "celeba_label_model",
    "compute_label_stats",
    "generate_dataset",
    "load_label_stats",
    "place_in_wild",
    "plan_dataset",
    "render_array",
    "render_face",
    "resolve_labels",
    "sample_identity_labels",
    "sample_labels",
    "sample_traits",
]
