"""Inference: Frame -> PipelineResult, one path for the node, the bag replay and evaluation.

Per frame: the checkpoint's ``avi_ros.preprocess.Preprocessor`` (occlusion mask and level from
depth, the 5-channel image, the last ``window_samples`` of audio; training prepares its scenes
with the same one), features of the audio window (``avi_ros.features``), one model forward
read by ``avi_ros.models.output_arrays``, then a HazardEstimateData with every field set:
- class probabilities: softmax of the class logits; class id: their argmax;
- direction: the predicted unit vector (microphone frame, REP-103), and azimuth/elevation [rad];
- distance [m], confidence (sigmoid, 0..1), audio/visual weights from the adapter;
- visibility: ``direction_visibility`` of the predicted point against the depth image;
- risk level and recommended action: the argmax of the model's risk and action heads. The heads
  are trained on the taxonomy rules (class + distance -> risk -> action), so they agree with the
  rules where the model is right, and they are the model's own estimate where it is unsure.

The model also reads the view tokens of the frame (its intrinsics and the pipeline's extrinsic,
``avi_ros.view_tokens``) and answers K slots (``ModelConfig.hazard_slots``), read by
``read_set_outputs``; every slot becomes a HazardEstimateData as above, with that slot's own
audio/visual weights. ``PipelineResult.hazards`` holds every slot whose class is not ``none`` and
whose confidence reaches the threshold, most confident first; ``PipelineResult.top`` is the most
confident such slot (the most confident slot of all when every slot is empty), so everything that
reads one best guess works for any K, and K = 1 gives at most one hazard per frame.

Calibration (temperature and Platt scaling, ``training/calibrate.py``, recorded in the checkpoint's
``extra["calibration"]``) is folded into the head's class and confidence layers, so the outputs
read here are calibrated as they come; the slots share that head, hence one set of parameters for
every slot.

Runs under ``torch.inference_mode()`` with channels-last images and, for checkpoints, BatchNorm
folded into the convolutions. On CUDA it uses autocast (bf16 where supported, else fp16); on CPU
fp32 by default (``precision="bf16"`` is faster on CPUs with bf16 units, see the bench), and
``warmup`` runs the kernels once before the first real frame. The ``oracle`` baseline needs the
exact view tokens, which only training data has, so the pipeline refuses it.

``from_checkpoint(..., backend="onnxruntime")`` runs the exported graph (``avi-ros export --onnx``,
``avi_ros.onnx_backend.OnnxModel``) in fp32 with onnxruntime instead of the torch model; the
features before it and the output reading after it are the same code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.fx.experimental.optimization as fx_optimization

from avi_ros.audio import FOA_CHANNELS
from avi_ros.checkpoint import CheckpointMetadata, load_checkpoint
from avi_ros.device import resolve_device
from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.geometry import CameraIntrinsics, MicToCamera, unit_to_direction
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.output_arrays import HazardSetArrays, OutputArrays, read_set_outputs
from avi_ros.occlusion import OcclusionConfig, OcclusionResult, direction_visibility
from avi_ros.onnx_backend import OnnxModel, check_backend, load_onnx_model
from avi_ros.preprocess import ModelInputs, Preprocessor
from avi_ros.taxonomy import Action, RiskLevel, Taxonomy
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD, Frame, HazardEstimateData, PipelineResult

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_EXTRINSIC = MicToCamera()  # camera at the microphone, looking along its +x


def _resolve_precision(precision: str, device: torch.device, backend: str = "torch") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got '{precision}'")
    if backend != "torch":
        if precision not in ("auto", "fp32"):
            raise ValueError(
                f"precision '{precision}' needs the torch backend; {backend} runs the exported fp32 "
                "graph (build a TensorRT engine with --fp16 for reduced precision)"
            )
        return "fp32"
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _check_frame(frame: Frame) -> None:
    rgb, depth = np.asarray(frame.rgb), np.asarray(frame.depth_m)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frame rgb must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f"frame depth {depth.shape} must have the rgb size {rgb.shape[:2]}")
    k = frame.intrinsics
    if (k.height, k.width) != rgb.shape[:2]:
        raise ValueError(f"frame intrinsics are for {k.height}x{k.width} but the image is {rgb.shape[:2]}")


class Pipeline:
    """A loaded model plus everything to turn Frames into hazard estimates (see module doc).

    The pipeline takes over the model: it moves it to the device, puts it in eval mode and
    switches its visual encoder to channels-last memory.

    ``window_samples``: audio samples (at ``feature_config.sample_rate``) per estimate.
    ``confidence_threshold``: estimates below it, or of class ``none``, are left out of
    ``PipelineResult.hazards`` (``PipelineResult.top`` always has the best guess).
    ``model`` may be an ``OnnxModel`` (``backend`` "onnxruntime"): it is called the same way and
    answers the same output dataclass, so nothing after the forward differs.
    """

    def __init__(
        self,
        model: HazardSetModel | OnnxModel,
        metadata: CheckpointMetadata,
        device: str | torch.device = "auto",
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        occlusion_config: OcclusionConfig | None = None,
        extrinsic: MicToCamera = DEFAULT_EXTRINSIC,
        precision: str = "auto",
    ) -> None:
        if not 0.0 <= confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")
        if model.config.variant == "oracle":
            raise ValueError(
                "the oracle baseline reads the exact view tokens, which only training data has; "
                "it cannot run on sensor frames"
            )
        self.device = resolve_device(device)
        self.backend = model.backend if isinstance(model, OnnxModel) else "torch"
        self.precision = _resolve_precision(precision, self.device, self.backend)
        self.taxonomy: Taxonomy = metadata.taxonomy
        self.metadata = metadata
        self.preprocess = Preprocessor.from_metadata(metadata, occlusion_config)
        self.confidence_threshold = confidence_threshold
        self.extrinsic = extrinsic
        self.model = model.to(self.device).eval()
        if model.visual_encoder is not None:
            model.visual_encoder.to(memory_format=torch.channels_last)
        self.features = FeatureExtractor(self.feature_config).to(self.device)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint_dir: str | Path,
        device: str | torch.device = "auto",
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        occlusion_config: OcclusionConfig | None = None,
        extrinsic: MicToCamera = DEFAULT_EXTRINSIC,
        precision: str = "auto",
        backend: str = "torch",
    ) -> Pipeline:
        """Load a checkpoint directory (see avi_ros.checkpoint). Without an ``occlusion_config``
        the one saved in the checkpoint's ``extra["occlusion"]`` is used, else the default.
        The loaded model is only used for inference, so its BatchNorm layers are folded away.
        ``backend`` "onnxruntime" runs the exported graph instead (``checkpoint_dir`` holding
        ``model.onnx``, or the ``.onnx`` file itself; see ``avi_ros.onnx_backend``)."""
        check_backend(backend)
        if backend == "onnxruntime":
            model, metadata = load_onnx_model(checkpoint_dir)
        else:
            model, metadata = load_checkpoint(checkpoint_dir, "cpu")
            fold_batchnorm(model)
        return cls(model, metadata, device, confidence_threshold, occlusion_config, extrinsic, precision)

    @classmethod
    def from_model(
        cls,
        model: HazardSetModel,
        feature_config: FeatureConfig,
        taxonomy: Taxonomy,
        **kwargs: object,
    ) -> Pipeline:
        """A pipeline around an in-memory model (e.g. during training); ``kwargs`` as for ``__init__``."""
        metadata = CheckpointMetadata(
            model_config=model.config,
            feature_config=feature_config,
            taxonomy=taxonomy,
            normalization={
                "mean": model.feature_norm.mean.tolist(),
                "std": model.feature_norm.std.tolist(),
            },
        )
        return cls(model, metadata, **kwargs)

    @property
    def feature_config(self) -> FeatureConfig:
        return self.preprocess.features

    @property
    def occlusion_config(self) -> OcclusionConfig:
        return self.preprocess.occlusion

    @property
    def image_size(self) -> int:
        return self.preprocess.image_size

    @property
    def window_samples(self) -> int:
        return self.feature_config.window_samples

    @property
    def is_hazard_set(self) -> bool:
        """Whether the model reports more than one hazard per frame (K > 1; K = 1 answers one, as
        the single-hazard model did), read from the checkpoint metadata, so an export says it too."""
        return self.metadata.model_config.hazard_slots > 1

    def warmup(self, iterations: int = 2) -> None:
        """Run synthetic frames so lazy initialisation and kernel selection happen now."""
        size = max(self.image_size, 32)
        frame = Frame(
            rgb=np.zeros((size, size, 3), dtype=np.uint8),
            depth_m=np.full((size, size), 2.0, dtype=np.float32),
            intrinsics=CameraIntrinsics.from_fov(size, size, math.radians(90.0)),
            audio=np.zeros((FOA_CHANNELS, self.window_samples), dtype=np.float32),
            sample_rate=self.feature_config.sample_rate,
        )
        for _ in range(iterations):
            self.run(frame)

    def run(self, frame: Frame) -> PipelineResult:
        """One frame -> its PipelineResult."""
        return self.run_batch([frame])[0]

    def run_batch(self, frames: Sequence[Frame]) -> list[PipelineResult]:
        """Several frames in one model forward; results in the same order."""
        if not frames:
            return []
        start = time.perf_counter()
        inputs: list[ModelInputs] = []
        for frame in frames:
            _check_frame(frame)
            inputs.append(
                self.preprocess(
                    frame.rgb, frame.depth_m, frame.audio, frame.sample_rate, frame.intrinsics, self.extrinsic
                )
            )
        prepared = time.perf_counter()
        outputs, feature_ms = self._infer(inputs)
        inferred = time.perf_counter()

        results = []
        for index, (frame, prepared_inputs) in enumerate(zip(frames, inputs, strict=True)):
            occlusion = prepared_inputs.occlusion
            hazards, top = self._set_estimates(frame, occlusion, outputs, index)
            results.append(
                PipelineResult(
                    hazards=hazards,
                    top=top,
                    occlusion_mask=occlusion.as_uint8(),
                    occlusion_level=occlusion.level,
                    timings_ms={
                        "prepare": (prepared - start) * 1e3,
                        "features": feature_ms,
                        "model": (inferred - prepared) * 1e3 - feature_ms,
                        "total": (time.perf_counter() - start) * 1e3,
                    },
                )
            )
        return results

    def _published(self, estimate: HazardEstimateData) -> bool:
        return estimate.class_id != 0 and estimate.confidence >= self.confidence_threshold

    def _set_estimates(
        self, frame: Frame, occlusion: OcclusionResult, out: HazardSetArrays, index: int
    ) -> tuple[list[HazardEstimateData], HazardEstimateData]:
        """(published slots, most confident first; the top slot) of sample ``index``."""
        slots = sorted(
            (self._estimate(frame, occlusion, out.slot(k), index) for k in range(out.num_slots)),
            key=lambda estimate: estimate.confidence,
            reverse=True,
        )
        hazards = [estimate for estimate in slots if self._published(estimate)]
        occupied = [estimate for estimate in slots if estimate.class_id != 0]
        return hazards, (occupied or slots)[0]

    def _infer(self, inputs: list[ModelInputs]) -> tuple[HazardSetArrays, float]:
        """Features + forward; returns the batch's outputs and the feature time [ms]."""
        device = self.device
        with torch.inference_mode():
            audio = torch.from_numpy(np.stack([i.audio for i in inputs])).to(device, non_blocking=True)
            visual = torch.from_numpy(np.stack([i.visual for i in inputs])).to(device, non_blocking=True)
            visual = visual.contiguous(memory_format=torch.channels_last)
            view_tokens = torch.from_numpy(np.stack([i.view_tokens for i in inputs])).to(device)
            started = time.perf_counter()
            features = self.features(audio)
            self._synchronize()
            feature_ms = (time.perf_counter() - started) * 1e3
            dtype = _AUTOCAST_DTYPES.get(self.precision)
            with torch.autocast(
                device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                out = self.model(features, visual, view_tokens)
            return read_set_outputs(out), feature_ms

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _estimate(
        self, frame: Frame, occlusion: OcclusionResult, out: OutputArrays, index: int
    ) -> HazardEstimateData:
        probs = out.class_probabilities[index]
        class_id = int(out.class_id[index])
        direction = out.direction[index].astype(np.float64)
        direction = direction / max(float(np.linalg.norm(direction)), 1e-12)
        azimuth, elevation = unit_to_direction(direction)
        distance = float(out.distance[index])
        visibility = direction_visibility(
            direction, distance, np.asarray(frame.depth_m, dtype=np.float32), frame.intrinsics, self.extrinsic
        )
        return HazardEstimateData(
            class_id=class_id,
            class_name=self.taxonomy.names[class_id],
            class_probabilities=probs,
            azimuth=float(azimuth),
            elevation=float(elevation),
            distance=distance,
            direction=direction,
            confidence=float(out.confidence[index]),
            occlusion_level=float(occlusion.level),
            visibility=visibility,
            audio_weight=float(out.audio_weight[index]),
            visual_weight=float(out.visual_weight[index]),
            risk_level=RiskLevel(int(out.risk[index])),
            recommended_action=Action(int(out.action[index])),
        )


def fold_batchnorm(model: HazardSetModel) -> None:
    """Fold the visual trunk's BatchNorm layers into the preceding convolutions, in place.

    Same outputs in eval mode and one pass less over every feature map; in bench/bench_model.py
    it is within noise in fp32 and up to 1.3x faster under bf16 autocast on CPU. The folded
    model can no longer be trained.
    """
    if model.visual_encoder is not None:
        model.visual_encoder = fx_optimization.fuse(model.visual_encoder.eval())
