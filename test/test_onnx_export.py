"""ONNX export and the onnxruntime backend: the graph answers what the torch model answers."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.replay import ReplayOptions, replay
from avi_ros.checkpoint import load_checkpoint, save_checkpoint
from avi_ros.cli import main
from avi_ros.features import FeatureConfig
from avi_ros.geometry import CameraIntrinsics
from avi_ros.models import (
    AdapterConfig,
    HeadConfig,
    ModelConfig,
    VisualEncoderConfig,
    build_model,
    read_set_outputs,
)
from avi_ros.onnx_backend import (
    BATCH_AXIS,
    ONNX_FILE,
    OnnxModel,
    example_inputs,
    export_model,
    load_onnx_model,
    sidecar_path,
)
from avi_ros.pipeline import Pipeline
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame

TOLERANCE = 1e-4
TAXONOMY = default_taxonomy()
WINDOW_S = 0.5
# (variant, direction, hazard slots): the model in both direction sources, with and without a
# camera, with three slots and with one.
CASES = {
    "set_full_learned": ("full", "learned", 3),
    "set_full_intensity": ("full", "intensity", 3),
    "set_audio_only_learned": ("audio_only", "learned", 3),
    "set_audio_only_intensity": ("audio_only", "intensity", 3),
    "single_full": ("full", "learned", 1),
}


def tiny_checkpoint_dir(directory: Path, variant: str, direction: str, slots: int) -> Path:
    """A tiny untrained checkpoint whose every slot reports class 1 with high confidence, so the
    pipeline publishes hazards whatever the input."""
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            num_classes=TAXONOMY.num_classes,
            variant=variant,
            visual=VisualEncoderConfig(arch="resnet18", image_size=32),
            adapter=AdapterConfig(d_model=32),
            head=HeadConfig(hidden=32),
            hazard_slots=slots,
            view_grid=4,
            direction=direction,
        )
    )
    with torch.no_grad():
        model.head.class_logits.bias[1] = 4.0
        model.head.confidence.bias.fill_(4.0)
    return save_checkpoint(directory, model, FeatureConfig(window_seconds=WINDOW_S), TAXONOMY)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Case name -> checkpoint directory with ``model.onnx`` exported next to the weights."""
    cache: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in cache:
            directory = tiny_checkpoint_dir(tmp_path_factory.mktemp(case), *CASES[case])
            model, metadata = load_checkpoint(directory)
            export_model(model, metadata, directory / ONNX_FILE)
            cache[case] = directory
        return cache[case]

    return get


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))  # NaN (not read) in the same places
    finite = ~np.isnan(a)
    return float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_answers_what_torch_answers(exported, case, batch):
    directory = exported(case)
    torch_model, metadata = load_checkpoint(directory)
    onnx_model, onnx_metadata = load_onnx_model(directory)
    assert onnx_metadata.to_dict() == metadata.to_dict()
    inputs = example_inputs(metadata, batch=batch, seed=1)
    with torch.inference_mode():
        expected = torch_model(*inputs.values())
    got = onnx_model(*inputs.values())
    assert type(got) is type(expected)
    for name in onnx_model.info.outputs:  # every output the graph gives
        assert max_diff(getattr(got, name), getattr(expected, name)) <= TOLERANCE, name
    mine, theirs = read_set_outputs(got), read_set_outputs(expected)
    for name in ("direction", "class_probabilities", "confidence", "distance", "audio_weight"):
        assert max_diff(getattr(mine, name), getattr(theirs, name)) <= TOLERANCE, name
    assert np.array_equal(mine.class_id, theirs.class_id)
    assert len(mine) == batch


def test_sidecar_names_the_inputs_outputs_and_dynamic_batch(exported):
    import onnx

    full = exported("set_full_learned")
    sidecar = json.loads(sidecar_path(full / ONNX_FILE).read_text())
    assert sidecar["opset"] >= 17
    assert sidecar["inputs"] == {
        "features": [BATCH_AXIS, 7, FeatureConfig(window_seconds=WINDOW_S).num_frames, 64],
        "visual": [BATCH_AXIS, 5, 32, 32],
        "view_tokens": [BATCH_AXIS, 16, 6],
    }
    assert sidecar["outputs"]["class_logits"] == [BATCH_AXIS, 3, TAXONOMY.num_classes]
    assert sidecar["outputs"]["direction"] == [BATCH_AXIS, 3, 3]
    assert sidecar["checkpoint"]["taxonomy"] == TAXONOMY.to_dict()
    graph = onnx.load(str(full / ONNX_FILE)).graph
    assert [i.name for i in graph.input] == list(sidecar["inputs"])
    assert [o.name for o in graph.output] == list(sidecar["outputs"])
    assert all(i.type.tensor_type.shape.dim[0].dim_param == BATCH_AXIS for i in graph.input)
    # A variant without a camera takes no image: the graph has only the inputs it reads.
    audio = json.loads(sidecar_path(exported("set_audio_only_learned") / ONNX_FILE).read_text())
    assert list(audio["inputs"]) == ["features"]


def frame(seed: int = 0, size: int = 48) -> Frame:
    rng = np.random.default_rng(seed)
    depth = np.full((size, size), 3.0, dtype=np.float32)
    depth[:, : size // 3] = 0.8  # something near on the left
    return Frame(
        rgb=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        depth_m=depth,
        intrinsics=CameraIntrinsics.from_fov(size, size, math.radians(90.0)),
        audio=rng.normal(0.0, 0.1, (4, int(WINDOW_S * 24_000))).astype(np.float32),
        sample_rate=24_000,
    )


@pytest.mark.parametrize("case", ["set_full_intensity", "single_full"])
def test_pipeline_gives_the_same_hazards_with_either_backend(exported, case):
    directory = exported(case)
    reference = Pipeline.from_checkpoint(directory, device="cpu").run(frame())
    for path in (directory, directory / ONNX_FILE):  # the checkpoint directory or the file
        pipeline = Pipeline.from_checkpoint(path, device="cpu", backend="onnxruntime")
        assert isinstance(pipeline.model, OnnxModel) and pipeline.precision == "fp32"
        result = pipeline.run(frame())
        assert reference.hazards and len(result.hazards) == len(reference.hazards)
        for got, expected in zip(result.hazards, reference.hazards, strict=True):
            assert got.class_id == expected.class_id and got.visibility == expected.visibility
            assert got.risk_level == expected.risk_level
            assert got.recommended_action == expected.recommended_action
            for name in ("azimuth", "elevation", "distance", "confidence", "audio_weight"):
                assert abs(getattr(got, name) - getattr(expected, name)) <= TOLERANCE, name
            assert max_diff(got.class_probabilities, expected.class_probabilities) <= TOLERANCE


def test_replay_with_onnxruntime_gives_the_torch_hazards(exported, tmp_path, capsys):
    directory = exported("set_full_intensity")
    bag = make_bag(MakeBagOptions(out=tmp_path / "scenario.mcap", duration_s=1.0, width=64, height=48)).path
    options = ReplayOptions(
        bag=bag, model=directory, out=tmp_path / "torch", device="cpu", report=False, max_frames=3
    )
    options = dataclasses.replace(options, tracking=None)  # the pipeline's hazards, compared as they are
    reference = replay(options)
    result = replay(
        dataclasses.replace(options, model=directory / ONNX_FILE, out=tmp_path / "ort", backend="onnxruntime")
    )
    assert result.inference == "cpu fp32 onnxruntime" and len(result.records) == 3
    for got, expected in zip(result.records, reference.records, strict=True):
        assert got.stamp_ns == expected.stamp_ns and expected.hazards
        assert [h.class_id for h in got.hazards] == [h.class_id for h in expected.hazards]
        for mine, theirs in zip(got.hazards, expected.hazards, strict=True):
            assert abs(mine.azimuth - theirs.azimuth) <= TOLERANCE
            assert abs(mine.distance - theirs.distance) <= TOLERANCE
    argv = ["replay", str(bag), "--model", str(directory / ONNX_FILE), "--device", "cpu", "--no-report"]
    assert main([*argv, "--max-frames", "1", "--out", str(tmp_path / "cli"), "--backend", "onnxruntime"]) == 0
    assert "onnxruntime" in capsys.readouterr().out and (tmp_path / "cli" / "bag").is_dir()


def test_backend_parameter_reaches_the_nodes_pipeline(exported):
    pytest.importorskip("rclpy")
    from node_harness import isolated_context, unstarted_node

    with isolated_context(100 + os.getpid() % 100) as context:
        graph = exported("set_full_learned") / ONNX_FILE  # a .onnx file as model_path
        with unstarted_node(context, graph, backend="onnxruntime", namespace="ort") as node:
            assert node.start(), node.configure_error
            assert node.pipeline.backend == "onnxruntime" and isinstance(node.pipeline.model, OnnxModel)
        with unstarted_node(context, graph, backend="tensorrt", namespace="trt") as node:
            assert node.start() is False
            assert "backend" in node.configure_error and "tensorrt" in node.configure_error


def test_reduced_precision_is_refused_with_onnxruntime(exported):
    with pytest.raises(ValueError, match="needs the torch backend"):
        Pipeline.from_checkpoint(
            exported("single_full"), device="cpu", precision="bf16", backend="onnxruntime"
        )


def test_missing_onnxruntime_is_one_clear_error(exported, monkeypatch, tmp_path, capsys):
    directory = exported("single_full")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(RuntimeError, match=r"needs the 'onnxruntime' package.*pip install onnxruntime"):
        load_onnx_model(directory)
    import soundfile

    audio = tmp_path / "a.wav"
    soundfile.write(audio, np.zeros((24_000, 4), dtype=np.float32), 24_000)
    status = main(["predict", str(audio), "--model", str(directory), "--backend", "onnxruntime"])
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1
    assert "pip install onnxruntime" in err and "Traceback" not in err


def test_cli_export_writes_the_graph_into_the_checkpoint_and_to_out(tmp_path, capsys):
    directory = tiny_checkpoint_dir(tmp_path / "ckpt", "audio_only", "learned", 3)
    assert main(["export", "--onnx", "--model", str(directory)]) == 0
    assert (directory / ONNX_FILE).is_file() and sidecar_path(directory / ONNX_FILE).is_file()
    out = tmp_path / "elsewhere" / "hazards.onnx"
    assert main(["export", "--onnx", "--model", str(directory), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    model, _ = load_onnx_model(out)
    assert model.info.to_dict() == load_onnx_model(directory)[0].info.to_dict()
    assert list(model.info.inputs) == ["features"]


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--onnx", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err
    with pytest.raises(SystemExit) as usage:  # the format is required
        main(["export", "--model", str(tmp_path)])
    assert usage.value.code == 2


def test_missing_graph_or_sidecar_says_how_to_export(exported, tmp_path):
    with pytest.raises(FileNotFoundError, match="avi-ros export --onnx"):
        load_onnx_model(tmp_path)
    lone = tmp_path / "lone.onnx"
    lone.write_bytes((exported("single_full") / ONNX_FILE).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"lone\.onnx\.json is missing"):
        load_onnx_model(lone)
