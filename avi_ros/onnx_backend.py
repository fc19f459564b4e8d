"""The model as an ONNX graph: export (``avi-ros export --onnx``) and an onnxruntime backend.

Only the network is exported: features [B, 7, T, F] (the STFT features stay in torch before
it), the 5-channel image [B, 5, S, S] and the view tokens [B, M, 6]. The batch axis is dynamic; the others
are fixed by the checkpoint (audio window, image size, view grid). Inputs a variant does not read
(the image of ``audio_only``, say) are left out of the graph. The outputs are the fields of
``HazardSetOutput`` that the model fills, under the same names (``class_logits``, ``direction``,
``distance``, ``confidence_logit``, ...), so ``OnnxModel`` answers with that dataclass and the
pipeline reads it with ``avi_ros.models.output_arrays`` as it reads the torch model's.

Next to ``model.onnx`` goes ``model.onnx.json``, the sidecar: the input and output names with
their shapes ("batch" for the dynamic axis), the opset, and the checkpoint's metadata (taxonomy,
feature config, model config, occlusion settings), so the graph plus its sidecar run without the
checkpoint directory.

The export uses torch's TorchScript exporter (``dynamo=False``; it needs only the ``onnx``
package, not onnxscript); the tests check that onnxruntime agrees with torch to 1e-4 at batch 1
and 3 for every output. onnxruntime runs fp32 and with ``torch.get_num_threads()`` intra-op
threads, so the node's ``cpu_threads`` and replay's ``--threads`` set both backends alike.
"""

from __future__ import annotations

import importlib
import json
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from avi_ros.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    atomic_write,
    check_format,
    load_checkpoint,
    read_json_object,
)
from avi_ros.models import HazardSetModel, HazardSetOutput
from avi_ros.models.visual_encoder import VISUAL_CHANNELS
from avi_ros.shipped_model import resolve_model_path
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS

BACKENDS = ("torch", "onnxruntime")
ONNX_FILE = "model.onnx"  # written into the checkpoint directory by default
SIDECAR_FORMAT = "avi_ros.onnx"
SIDECAR_VERSION = 1
DEFAULT_OPSET = 17
BATCH_AXIS = "batch"
HOW_TO_EXPORT = "avi-ros export --onnx --model CHECKPOINT_DIR"
# The three positional inputs of the model's forward.
INPUTS = ("features", "visual", "view_tokens")


def check_backend(backend: str) -> None:
    """ValueError naming the choices when ``backend`` is not one of BACKENDS."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got '{backend}'")


def _require(module: str, purpose: str) -> ModuleType:
    """Import an optional package; RuntimeError in one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(
            f"{purpose} needs the '{module}' package, which is not installed here: "
            f"pip install {module} (requirements.txt pins the version)"
        ) from exc


def sidecar_path(onnx_path: str | Path) -> Path:
    """The JSON sidecar of an ONNX file: ``model.onnx`` -> ``model.onnx.json``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def onnx_file_of(model_path: str | Path) -> Path:
    """The ONNX file that ``model_path`` names: the file itself, or ``model.onnx`` in a directory."""
    path = Path(model_path).expanduser()
    return path / ONNX_FILE if path.is_dir() else path


def resolve_model_input(model_path: str | Path | None, backend: str) -> Path:
    """The model path an entry point loads: for ``onnxruntime`` an existing ``.onnx`` file is
    taken as is; anything else resolves as a checkpoint directory (empty or None: the shipped
    model, ``avi_ros.shipped_model.resolve_model_path``)."""
    check_backend(backend)
    if backend == "onnxruntime" and model_path is not None and str(model_path).strip():
        path = Path(model_path).expanduser()
        if path.is_file():
            return path
    return resolve_model_path(model_path)


@dataclass(frozen=True)
class OnnxGraphInfo:
    """The sidecar of an exported graph: input / output name -> shape (BATCH_AXIS for the dynamic
    axis, else a size), the opset, and the checkpoint metadata the graph was exported from."""

    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    metadata: CheckpointMetadata
    opset: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "opset": self.opset,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "checkpoint": self.metadata.to_dict(),
        }

    @classmethod
    def read(cls, path: Path) -> OnnxGraphInfo:
        """Parse a sidecar file; CheckpointError naming the file when it is not one."""
        data = read_json_object(path)
        check_format(data, path, SIDECAR_FORMAT, SIDECAR_VERSION)
        try:
            return cls(
                inputs=dict(data["inputs"]),
                outputs=dict(data["outputs"]),
                metadata=CheckpointMetadata.from_dict(data["checkpoint"], path),
                opset=int(data["opset"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: malformed ONNX sidecar: {exc}") from exc


def example_inputs(metadata: CheckpointMetadata, batch: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the shapes the checkpoint's model takes, by input name (float32):
    features [B, C, T, F], visual [B, 5, S, S], view tokens [B, G^2, 6]."""
    config, features = metadata.model_config, metadata.feature_config
    generator = torch.Generator().manual_seed(seed)
    size = config.visual.image_size
    shapes = (
        (batch, features.channels, features.num_frames, features.n_bins),
        (batch, VISUAL_CHANNELS, size, size),
        (batch, config.view_grid**2, VIEW_TOKEN_CHANNELS),
    )
    return {name: torch.rand(shape, generator=generator) for name, shape in zip(INPUTS, shapes, strict=True)}


class _FlatOutputs(nn.Module):
    """The model with its output dataclass flattened into a tuple of the named fields (ONNX
    graphs return tensors, not dataclasses)."""

    def __init__(self, model: nn.Module, output_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.output_names = output_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*inputs)
        return tuple(getattr(out, name) for name in self.output_names)


def export_model(
    model: HazardSetModel,
    metadata: CheckpointMetadata,
    path: str | Path,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``model`` (eval mode, on the CPU) as an ONNX graph at ``path`` and its sidecar next
    to it (both atomically); returns ``path``. RuntimeError when the ``onnx`` package is missing."""
    onnx = _require("onnx", "ONNX export")
    if opset < DEFAULT_OPSET:
        raise ValueError(f"--opset must be at least {DEFAULT_OPSET}, got {opset}")
    path = Path(path)
    model = model.cpu().eval()
    inputs = example_inputs(metadata)
    args = tuple(inputs.values())
    with torch.inference_mode():
        sample = model(*args)
    output_names = [f.name for f in fields(sample) if isinstance(getattr(sample, f.name), torch.Tensor)]
    flat = _FlatOutputs(model, output_names).eval()
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            # The tracer warns at every shape check of the model and of nn.MultiheadAttention; those
            # read only the fixed axes, and the tests compare batch sizes 1 and 3 with torch.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*batch_size other than 1.*GRU.*")
            warnings.filterwarnings("ignore", message=".*feature will be removed.*")
            torch.onnx.export(
                flat,
                args,
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=list(inputs),
                output_names=output_names,
                dynamic_axes={name: {0: BATCH_AXIS} for name in [*inputs, *output_names]},
            )
        onnx.checker.check_model(tmp)

    atomic_write(path, write)
    graph = onnx.load(str(path), load_external_data=False).graph
    kept = {value.name for value in graph.input}  # the exporter drops inputs the variant ignores
    info = OnnxGraphInfo(
        inputs={name: [BATCH_AXIS, *tensor.shape[1:]] for name, tensor in inputs.items() if name in kept},
        outputs={name: [BATCH_AXIS, *getattr(sample, name).shape[1:]] for name in output_names},
        metadata=metadata,
        opset=opset,
    )
    text = json.dumps(info.to_dict(), indent=2)
    atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return path


def export_checkpoint(
    checkpoint_dir: str | Path, out: str | Path | None = None, opset: int = DEFAULT_OPSET
) -> Path:
    """Export a checkpoint directory's model; ``out`` defaults to ``model.onnx`` inside it."""
    model, metadata = load_checkpoint(checkpoint_dir, "cpu")
    return export_model(model, metadata, Path(checkpoint_dir) / ONNX_FILE if out is None else out, opset)


class OnnxModel:
    """An exported graph run by onnxruntime, called like the torch model.

    ``model(features, visual, view_tokens)`` takes the torch model's three inputs (any device; the
    ones the graph does not read are ignored) and returns its ``HazardSetOutput`` with CPU float32
    tensors; ``to(device)`` picks the execution provider
    (CPU, or CUDA where onnxruntime has it); ``eval()`` is a no-op, as the graph is in eval mode.
    ``visual_encoder`` is None: there is no torch encoder whose memory layout the pipeline could
    change.
    """

    backend = "onnxruntime"
    visual_encoder = None

    def __init__(self, path: str | Path, info: OnnxGraphInfo) -> None:
        self._ort = _require("onnxruntime", "backend 'onnxruntime'")
        self.path = Path(path)
        self.info = info
        self.config = info.metadata.model_config
        self._session: Any = None
        self._device: torch.device | None = None

    def to(self, device: str | torch.device) -> OnnxModel:
        """Create the inference session for ``device`` (cpu or cuda:N); returns self."""
        device = torch.device(device)
        if self._session is not None and device == self._device:
            return self
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in self._ort.get_available_providers():
                raise RuntimeError(
                    f"device '{device}': this onnxruntime has no CUDA provider; use device cpu, "
                    "install onnxruntime-gpu, or build a TensorRT engine from the .onnx file"
                )
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        elif device.type != "cpu":
            raise ValueError(f"backend 'onnxruntime' runs on cpu or cuda, not '{device}'")
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self._session = self._ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"{self.path}: onnxruntime cannot load the graph: {exc}") from exc
        self._device = device
        return self

    def eval(self) -> OnnxModel:
        return self

    def __call__(
        self, features: torch.Tensor | None, visual: torch.Tensor | None, view_tokens: torch.Tensor | None
    ) -> HazardSetOutput:
        if self._session is None:
            self.to("cpu")
        given = dict(zip(INPUTS, (features, visual, view_tokens), strict=True))
        feed: dict[str, np.ndarray] = {}
        for name in self.info.inputs:
            tensor = given[name]
            if tensor is None:
                raise ValueError(f"model: the exported graph needs the input '{name}'")
            feed[name] = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
        names = list(self.info.outputs)
        results = self._session.run(names, feed)
        return HazardSetOutput(
            **{name: torch.from_numpy(value) for name, value in zip(names, results, strict=True)}
        )


def load_onnx_model(model_path: str | Path) -> tuple[OnnxModel, CheckpointMetadata]:
    """An exported graph (the ``.onnx`` file, or a checkpoint directory holding ``model.onnx``)
    and the checkpoint metadata from its sidecar. FileNotFoundError says how to export one;
    RuntimeError when onnxruntime is not installed."""
    path = onnx_file_of(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; export the model with: {HOW_TO_EXPORT}")
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"{sidecar} is missing (the export writes it next to {path.name}); "
            f"export again with: {HOW_TO_EXPORT}"
        )
    info = OnnxGraphInfo.read(sidecar)
    return OnnxModel(path, info), info.metadata
