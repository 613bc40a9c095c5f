"""Attributes of the faces in photos: detect, align as in training, classify in batches.

``Predictor.from_checkpoint(run / "best").predict("photo.jpg")`` returns one
:class:`FacePrediction` per detected face: the binary attributes' probabilities against the
model's thresholds, the numeric attributes' estimates and the categorical attributes' class
probabilities (:meth:`FacePrediction.values` gives all of them typed, in the model's order).
Each face is cut out the way the model's training cut its faces
(``ModelDescription.config["data"]``): the loose crop that ``faceattr data prepare`` stores
around the AFFACT box of the landmarks, then the model's own crop of it (affact, box, image or
seed 000's), warped, converted and normalised by the training's evaluation transform.
:meth:`Predictor.predict_paths` decodes and detects in DataLoader workers and classifies the faces
of many images in batches, yielding one :class:`ImagePrediction` per path, in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from faceattr.data.cache_prepare import loose_crop_matrices
from faceattr.data.cache_writer import warp_to_uint8
from faceattr.data.schema import Schema
from faceattr.evaluation.selective import unsure
from faceattr.evaluation.thresholds import DEFAULT_THRESHOLD
from faceattr.faces.detection import Detection, FaceDetector, create_detector, main_face
from faceattr.faces.images import (
    DecodedImage,
    ImageDecodeError,
    array_to_rgb,
    decode_photo,
    pil_to_rgb,
)
from faceattr.geometry import (
    ALIGNED_IMAGE_SIZE,
    MEAN_ALIGNED_LANDMARKS,
    aligned_frame_matrices,
    compose,
)
from faceattr.geometry.affine import matrix_scale
from faceattr.geometry.jitter import AffactJitter
from faceattr.geometry.opencv_pixels import source_windows
from faceattr.inference.onnx import (
    NetworkOutputs,
    OnnxNetwork,
    PredictionGraph,
    load_onnx_description,
    value_slices,
)
from faceattr.inference.values import AttributeValue, BinaryValue, attribute_values
from faceattr.models import AttributeModel, InputConfig, cpu_batches
from faceattr.models.calibration import Calibration
from faceattr.shipped import model_path
from faceattr.training.batch import CropSpec, FaceBatch
from faceattr.training.checkpoint import ModelDescription, load_checkpoint, load_description
from faceattr.training.config import DataConfig
from faceattr.training.crops import loose_to_crop_matrices
from faceattr.training.transform import FaceTransform

ImageInput = str | Path | bytes | Image.Image | np.ndarray | DecodedImage
DRAFT_SIDE = 2048
"""A JPEG photo longer than this is decoded at a reduced size still at least this long (JPEG draft
mode: less memory and time): three times what the detector searches (640 px), and faces large
enough to be found there stay above the size the model was trained at."""
"""What :meth:`Predictor.predict` accepts: a path, encoded bytes, a Pillow image or an array."""
SHRINK_ABOVE = 1.5
"""Faces more than this many times larger than CelebA's are first shrunk to CelebA's size."""


@dataclass(frozen=True)
class FacePrediction:
    """One face: where it is in the source image, and its attributes: ``probabilities`` and
    ``thresholds`` of the binary ones (every one, for a binary-only model), ``numeric`` and
    ``categorical`` outputs of the others; :meth:`values` has them all, typed."""

    box: tuple[float, float, float, float]
    """x, y, width, height in source-image pixels."""
    landmarks: tuple[tuple[float, float], ...]
    """Five (x, y) points in CelebA's order (eyes, nose, mouth corners)."""
    detection_score: float
    attributes: tuple[str, ...]
    """The binary attributes, in the model's order."""
    probabilities: np.ndarray
    """``(K,)`` float32, P(attribute present) of the binary attributes."""
    thresholds: np.ndarray
    """``(K,)`` the model's tuned decision thresholds (0.5 when it has none)."""
    embedding: np.ndarray
    """``(D,)`` float32, the L2-normalised backbone features."""
    crop: np.ndarray | None = None
    """The aligned model input, uint8 ``(H, W, C)``, when asked for."""
    abstain: float = 0.0
    """Band around each threshold within which an attribute is reported unsure (0: never)."""
    schema: Schema | None = None
    """Every attribute of the model with its kind (None: ``attributes``, all binary)."""
    numeric: dict[str, float] = field(default_factory=dict)
    """Each numeric attribute's expected value, in its unit."""
    categorical: dict[str, np.ndarray] = field(default_factory=dict)
    """Each categorical attribute's class probabilities ``(C,)`` float32, in class order."""

    @property
    def decisions(self) -> np.ndarray:
        """``(K,)`` bool: probability strictly above the threshold, as ``faceattr evaluate``
        decides (``apply_thresholds``)."""
        return self.probabilities > self.thresholds

    @property
    def unsure(self) -> np.ndarray:
        """``(K,)`` bool: probability strictly within :attr:`abstain` of the threshold."""
        return unsure(self.probabilities, self.thresholds, self.abstain)

    def rows(self) -> list[tuple[str, float, float, bool, bool]]:
        """Per attribute: name, probability, threshold, decision and whether it is unsure."""
        return [
            (name, float(p), float(t), bool(d), bool(u))
            for name, p, t, d, u in zip(
                self.attributes,
                self.probabilities,
                self.thresholds,
                self.decisions,
                self.unsure,
                strict=True,
            )
        ]

    def values(self) -> dict[str, AttributeValue]:
        """Every attribute's typed value, in the model's order."""
        binary = {name: BinaryValue(p, t, d, u) for name, p, t, d, u in self.rows()}
        schema = self.schema or Schema.binary(self.attributes)
        categorical = {name: p.tolist() for name, p in self.categorical.items()}
        return attribute_values(schema, binary, self.numeric, categorical)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: box, landmarks, detection score and per attribute its value
        (:meth:`BinaryValue.to_dict <faceattr.inference.values.BinaryValue.to_dict>`: probability,
        threshold, decision and whether it is unsure; the numeric and categorical values' own)
        (no embedding, no crop)."""
        return {
            "box": [float(v) for v in self.box],
            "landmarks": [[float(x), float(y)] for x, y in self.landmarks],
            "detection_score": float(self.detection_score),
            "attributes": {name: value.to_dict() for name, value in self.values().items()},
        }


@dataclass(frozen=True)
class ImagePrediction:
    """The faces of one image, or why there are none."""

    path: str | None
    width: int
    height: int
    faces: list[FacePrediction]
    error: str | None
    """``"unreadable: <reason>"`` or ``"no face found"``; ``faces`` is empty then."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (faces by :meth:`FacePrediction.to_dict`)."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "error": self.error,
            "faces": [face.to_dict() for face in self.faces],
        }


class Network(Protocol):
    """A prediction backend: normalised batch -> :class:`NetworkOutputs`."""

    def __call__(self, images: torch.Tensor) -> NetworkOutputs: ...


class TorchNetwork:
    """:class:`PredictionGraph` of a PyTorch model (and its calibration) on ``device``, without
    autograd."""

    def __init__(
        self, model: AttributeModel, device: torch.device, calibration: Calibration | None
    ) -> None:
        self.model = model.eval().to(device)
        self.graph = PredictionGraph(self.model, calibration).to(device)
        self.device = device

    def __call__(self, images: torch.Tensor) -> NetworkOutputs:
        """The graph's outputs of a normalised batch, as float32 arrays (run
        :data:`~faceattr.models.CPU_BATCH` images at a time on a CPU)."""
        with torch.inference_mode():
            parts = [self.graph(part) for part in cpu_batches(images.to(self.device))]
        return NetworkOutputs.of([torch.cat(outputs) for outputs in zip(*parts, strict=True)])


def shrink(image: np.ndarray, matrix: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` resized by ``factor`` (< 1) with OpenCV's area averaging, and ``matrix``
    (``(2, 3)`` from ``image`` pixels) re-expressed from the resized image's pixels."""
    height, width = image.shape[:2]
    size = (max(round(width * factor), 1), max(round(height * factor), 1))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / width, size[1] / height
    # resize maps pixel centres x_small = (x + 0.5) * fx - 0.5; this is its inverse
    to_image = np.array([[[1 / fx, 0.0, 0.5 / fx - 0.5], [0.0, 1 / fy, 0.5 / fy - 0.5]]])
    return small, compose(matrix[None], to_image)[0]


@dataclass(frozen=True)
class FaceAligner:
    """Cuts faces out of a photo the way training cut them: the loose crop of ``loose_size``
    pixels around each face (``faceattr data prepare``'s), plus the matrix from it to the model's
    crop (``crop``)."""

    crop: CropSpec
    loose_size: int
    margin: float

    @classmethod
    def of(cls, description: ModelDescription) -> FaceAligner:
        """The aligner of a model trained with ``description.config["data"]`` (the training
        defaults where the description holds no config)."""
        data = description.config.get("data") or {}
        defaults = DataConfig
        spec = CropSpec.of_config(data, description.input_config.size)
        loose_size = int(data.get("cache_size", defaults.cache_size))
        return cls(spec, loose_size, float(data.get("cache_margin", defaults.cache_margin)))

    def crop_matrices(
        self, landmarks: np.ndarray, boxes: np.ndarray, sizes: np.ndarray
    ) -> np.ndarray:
        """Source -> model-input matrices of the faces: training's own for every crop kind but
        ``image``, which saw whole aligned CelebA images and gets ``aligned_frame_matrices``
        (on a photo, the whole photo would not be what the model knows)."""
        if self.crop.kind == "image":
            return aligned_frame_matrices(landmarks, self.crop.out_size)
        return self.crop.matrices(landmarks, boxes, sizes)

    def render(self, image: np.ndarray, loose: np.ndarray) -> np.ndarray:
        """``(F, S, S, 3)`` uint8 loose crops of the RGB ``image`` through source -> loose
        matrices ``loose``. As training's: one bilinear warp of the pixels. A face more than
        :data:`SHRINK_ABOVE` times larger than CelebA's aligned faces (which training saw at their
        decoded size) is first shrunk to their size by area averaging, so that a large photo does
        not alias into the crop."""
        reference = matrix_scale(self.celeba_loose_matrix())
        windows = source_windows(loose, image.shape[:2], self.loose_size)
        crops = []
        for (top, bottom, left, right), matrix in zip(windows.crop, windows.matrices, strict=True):
            window = image[top:bottom, left:right]
            factor = matrix_scale(matrix[None]) / reference
            if factor * SHRINK_ABOVE < 1:
                window, matrix = shrink(window, matrix, factor)
            crops.append(warp_to_uint8(np.ascontiguousarray(window), matrix[None], self.loose_size))
        return np.concatenate(crops)

    def celeba_loose_matrix(self) -> np.ndarray:
        """``(1, 2, 3)``: the loose-crop matrix of CelebA's mean aligned face."""
        landmarks = MEAN_ALIGNED_LANDMARKS[None].astype(np.float64)
        sizes = np.array([ALIGNED_IMAGE_SIZE], dtype=np.float64)
        boxes = np.full((1, 4), np.nan)
        return loose_crop_matrices(landmarks, boxes, sizes, self.loose_size, self.margin)[0]

    def loose_crops(self, image: np.ndarray, faces: Sequence[Detection]) -> FaceBatch:
        """The faces of the RGB ``image`` as a :class:`FaceBatch` (uint8 loose crops and
        loose -> model-input matrices; no labels)."""
        height, width = image.shape[:2]
        landmarks = np.stack([face.landmarks for face in faces]).astype(np.float64)
        boxes = np.array([face.box for face in faces], dtype=np.float64)
        sizes = np.tile(np.array([[width, height]], dtype=np.float64), (len(faces), 1))
        loose, _ = loose_crop_matrices(landmarks, boxes, sizes, self.loose_size, self.margin)
        pixels = self.render(image, loose)
        crops = loose_to_crop_matrices(self.crop_matrices(landmarks, boxes, sizes), loose)
        return FaceBatch(
            images=torch.from_numpy(pixels).permute(0, 3, 1, 2),
            crops=torch.from_numpy(crops),
            labels=torch.zeros((len(faces), 0), dtype=torch.uint8),
        )


@dataclass(frozen=True)
class DetectedImage:
    """One decoded image's faces, on their way from a worker to the classifier."""

    path: str | None
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)
    batch: FaceBatch | None = None
    error: str | None = None


class DetectingDataset(Dataset[DetectedImage]):
    """``dataset[i]``: decode ``paths[i]``, detect its faces and cut their loose crops. Each
    worker process builds its own detector on first use (native detectors are not shared)."""

    def __init__(self, paths: Sequence[str | Path], detector: str, aligner: FaceAligner) -> None:
        self.paths = [str(p) for p in paths]
        self.detector_name = detector
        self.aligner = aligner
        self._detector: FaceDetector | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> DetectedImage:
        path = self.paths[index]
        try:
            image = decode_photo(path, DRAFT_SIDE)
        except ImageDecodeError as error:
            return DetectedImage(path, 0, 0, error=f"unreadable: {error}")
        if self._detector is None:
            self._detector = create_detector(self.detector_name)
        return cut_faces(image, self._detector.detect(image.pixels), self.aligner, path)


def cut_faces(
    image: DecodedImage,
    detections: list[Detection],
    aligner: FaceAligner,
    path: str | None = None,
) -> DetectedImage:
    """The loose crops of ``detections`` (found in ``image.pixels``) and the detections in the
    full image's coordinates (``error`` when there is none)."""
    if not detections:
        return DetectedImage(path, image.width, image.height, error="no face found")
    batch = aligner.loose_crops(image.pixels, detections)
    full = [detection.rescaled(*image.scale) for detection in detections]
    return DetectedImage(path, image.width, image.height, full, batch)


def as_decoded(image: ImageInput) -> DecodedImage:
    """Any :data:`ImageInput` as RGB uint8 pixels (a JPEG file over :data:`DRAFT_SIDE` at a
    reduced size) with the full image's size."""
    if isinstance(image, DecodedImage):
        return image
    if isinstance(image, Image.Image | np.ndarray):
        rgb = pil_to_rgb(image) if isinstance(image, Image.Image) else array_to_rgb(image)
        return DecodedImage(rgb, rgb.shape[1], rgb.shape[0])
    return decode_photo(image, DRAFT_SIDE)


def resolve_device(device: str) -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU; else ``device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Predictor:
    """A trained model and a face detector: photos in, per-face attributes out."""

    def __init__(
        self,
        network: Network,
        description: ModelDescription,
        device: torch.device,
        detector: str = "yunet",
        abstain: float = 0.0,
    ) -> None:
        if not 0.0 <= abstain < 0.5:
            raise ValueError(f"the abstention band must be in [0, 0.5), got {abstain}")
        self.abstain = abstain
        self.network = network
        self.description = description
        self.device = device
        self.attributes: tuple[str, ...] = description.attributes
        self.schema = description.attribute_schema
        thresholds = description.thresholds or [DEFAULT_THRESHOLD] * len(self.attributes)
        if len(thresholds) != len(self.attributes):
            raise ValueError(f"{len(thresholds)} thresholds for {len(self.attributes)} attributes")
        binary = [k for k, a in enumerate(self.schema.attributes) if a.kind == "binary"]
        self.binary_attributes = tuple(self.attributes[k] for k in binary)
        """The attributes that have a probability and a threshold (all, for a binary model)."""
        self.thresholds = np.asarray(thresholds, dtype=np.float32)[binary]
        self.thresholds.setflags(write=False)  # shared by every FacePrediction
        self.value_slices = value_slices(self.schema)
        self.input_config: InputConfig = description.input_config
        self.aligner = FaceAligner.of(description)
        self.transform = FaceTransform(self.input_config, AffactJitter())
        self.detector_name = detector
        self.detector = create_detector(detector)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        device: str = "auto",
        detector: str = "yunet",
        abstain: float = 0.0,
    ) -> Predictor:
        """A predictor of the model at ``path``: a run folder (its ``best/``), an export folder,
        a ``.ckpt``, or an ``.onnx`` file with its ``.json`` description (onnxruntime, CPU);
        None: the model shipped in the package. ``abstain``: see :attr:`FacePrediction.unsure`."""
        path = model_path(path)
        if path.suffix == ".onnx":
            network: Network = OnnxNetwork(path)
            onnx = load_onnx_description(path)
            return cls(network, onnx, torch.device("cpu"), detector, abstain)
        chosen = resolve_device(device)
        description = load_description(path)
        network = TorchNetwork(load_checkpoint(path), chosen, description.calibration)
        return cls(network, description, chosen, detector, abstain)

    @property
    def model(self) -> AttributeModel:
        """The PyTorch model (``TypeError`` for an ONNX predictor, which has none)."""
        if not isinstance(self.network, TorchNetwork):
            raise TypeError("this predictor runs an ONNX file and has no PyTorch model")
        return self.network.model

    def predict(self, image: ImageInput, keep_crops: bool = False) -> list[FacePrediction]:
        """The faces of ``image`` (a path, encoded bytes, a Pillow image or an array), best
        detection first; an empty list when there is none. ``keep_crops`` keeps each face's
        aligned model input. Raises ``ImageDecodeError`` for an unreadable file."""
        decoded = as_decoded(image)
        found = cut_faces(decoded, self.detector.detect(decoded.pixels), self.aligner)
        return self._classify([found], keep_crops)[0].faces

    def embed(self, image: ImageInput) -> np.ndarray | None:
        """The embedding of the main face of ``image`` (largest, most central), or None."""
        decoded = as_decoded(image)
        main = main_face(self.detector.detect(decoded.pixels), decoded.pixels.shape[:2])
        if main is None:
            return None
        found = cut_faces(decoded, [main], self.aligner)
        return self._classify([found])[0].faces[0].embedding

    def predict_paths(
        self,
        paths: Iterable[str | Path],
        batch_size: int = 32,
        workers: int = 2,
        progress: bool = True,
    ) -> Iterator[ImagePrediction]:
        """One :class:`ImagePrediction` per path, in input order: images are decoded and
        searched for faces by ``workers`` DataLoader processes (0: here), and their faces
        classified ``batch_size`` at a time. Unreadable or faceless images carry an ``error``."""
        if batch_size <= 0 or workers < 0:
            raise ValueError(f"need batch_size > 0 and workers >= 0, got {batch_size}, {workers}")
        paths = list(paths)
        dataset = DetectingDataset(paths, self.detector_name, self.aligner)
        loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            prefetch_factor=4 if workers else None,
        )
        pending: list[DetectedImage] = []
        faces = 0
        bar = tqdm(loader, total=len(paths), desc="predict", unit="img", disable=not progress)
        for found in bar:
            pending.append(found)
            faces += len(found.detections)
            if faces >= batch_size:
                yield from self._classify(pending)
                pending, faces = [], 0
        if pending:
            yield from self._classify(pending)

    def _classify(
        self, images: Sequence[DetectedImage], keep_crops: bool = False
    ) -> list[ImagePrediction]:
        """Classify every face of ``images`` in one batch."""
        batches = [found.batch for found in images if found.batch is not None]
        detections = [detection for found in images for detection in found.detections]
        faces = self._faces(batches, detections, keep_crops) if batches else []
        results = []
        for found in images:
            count = len(found.detections)
            own, faces = faces[:count], faces[count:]
            results.append(ImagePrediction(found.path, found.width, found.height, own, found.error))
        return results

    def _faces(
        self, batches: Sequence[FaceBatch], detections: Sequence[Detection], keep_crops: bool
    ) -> list[FacePrediction]:
        """The predictions of ``detections``, whose loose crops ``batches`` hold in order."""
        batch = FaceBatch(
            images=torch.cat([b.images for b in batches]),
            crops=torch.cat([b.crops for b in batches]),
            labels=torch.cat([b.labels for b in batches]),
        )
        inputs, _ = self.transform.eval_batch(batch.to(self.device))
        outputs = self.network(inputs)
        crops = self._pixels(inputs) if keep_crops else [None] * len(detections)
        kinds = {name: self.schema[name].kind for name in self.value_slices}
        return [
            FacePrediction(
                box=detection.box,
                landmarks=tuple((float(x), float(y)) for x, y in detection.landmarks),
                detection_score=detection.score,
                attributes=self.binary_attributes,
                probabilities=outputs.probabilities[row].astype(np.float32),
                thresholds=self.thresholds,
                embedding=outputs.embedding[row].astype(np.float32),
                crop=crops[row],
                abstain=self.abstain,
                schema=self.schema,
                numeric={
                    name: float(outputs.values[row, where.start])
                    for name, where in self.value_slices.items()
                    if kinds[name] == "numeric"
                },
                categorical={
                    name: outputs.values[row, where].astype(np.float32)
                    for name, where in self.value_slices.items()
                    if kinds[name] == "categorical"
                },
            )
            for row, detection in enumerate(detections)
        ]

    def _pixels(self, inputs: torch.Tensor) -> np.ndarray:
        """The uint8 ``(N, H, W, C)`` images behind a normalised batch."""
        config = self.input_config
        mean = torch.tensor(config.mean, device=inputs.device)[:, None, None]
        std = torch.tensor(config.std, device=inputs.device)[:, None, None]
        pixels = ((inputs * std + mean) * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).cpu().numpy()
