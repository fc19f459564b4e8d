"""Post-hoc calibration folded into the model, so the node's outputs are calibrated as they are.

- Class probabilities: temperature scaling, softmax(z / T), with T fitted by minimising the
  validation negative log-likelihood (Guo et al. 2017). The argmax, hence accuracy, is unchanged.
- Confidence: Platt scaling, sigmoid(a·z + b) of the confidence logit z, fitted by minimising
  the binary cross-entropy against "a hazard is there" on the validation split.

Both are affine maps of the outputs of the head's last linear layers, so they are folded into
those layers' weights and biases; no extra parameter or code path exists at inference. The
checkpoint's metadata keeps the fitted values and what they were fitted on
(``extra["calibration"]``); ``unfold_from_head`` undoes a fold, so a checkpoint can be refitted on
other data (``training/calibrate.py``, e.g. on scenes made from real recordings) from its raw
outputs rather than on top of an earlier calibration.

One set of parameters is shared by the K slots, not one per slot: the slots go through one shared
head, so one shared set folds into it exactly and the pipeline, the ONNX export and every reader
of the outputs apply it with no change; the slots are also interchangeable (training matches
them to the hazards with the Hungarian algorithm, so no slot has a fixed meaning), and per-slot
parameters would each be fitted on a K-th of the data. ``set_calibration_targets`` gives what the
shared fit reads: the temperature is fitted on the class logits of the slots matched to a true
hazard (``training.losses.match_hazards``, the training matching), against that hazard's class;
Platt scaling on the confidence logit of every slot against "this slot is matched to a true
hazard" (the loss's confidence target: the confidence is the probability that a hazard is there).
With K = 1 that is the single-hazard fit: the slot's class against the frame's hazard (or
``none``), its confidence against whether the frame holds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax

from avi_ros import checkpoint
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.head import ImaginationHead
from avi_ros.models.output_arrays import HazardSetArrays
from training.losses import match_hazards
from training.metrics import confidence_auroc, expected_calibration_error

_LOG_T_BOUNDS = (-3.0, 3.0)  # temperature between e^-3 and e^3
_MIN_ABS_SCALE = 1e-6  # a Platt scale closer to 0 cannot be undone


@dataclass(frozen=True)
class Calibration:
    """Fitted parameters: ``temperature`` (> 0) for the class logits and (``scale``, ``offset``)
    for the confidence logit; ``fitted_on`` says which data they were fitted on."""

    temperature: float = 1.0
    scale: float = 1.0
    offset: float = 0.0
    fitted_on: str = "the synthetic validation split"


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the mean NLL of softmax(logits / T) [N, C] for integer labels [N]."""
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, labels].mean())

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def fit_platt(logit: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the BCE of sigmoid(a·logit + b) against binary targets [N]."""
    z = np.asarray(logit, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        p = np.clip(expit(a * z + b), 1e-12, 1 - 1e-12)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        residual = p - y
        return float(loss), np.array([np.mean(residual * z), np.mean(residual)])

    result = minimize(loss_and_grad, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


@dataclass(frozen=True)
class CalibrationTargets:
    """What a calibration is fitted on: ``class_logits`` [M, C] and their true classes ``labels``
    [M] for the temperature; ``confidence_logit`` [P] and ``present`` [P] (bool) for Platt scaling.
    See the module doc: the M matched slots, and all P = F·K slots, present = matched to a hazard."""

    class_logits: np.ndarray
    labels: np.ndarray
    confidence_logit: np.ndarray
    present: np.ndarray

    def figures(self, calibration: Calibration | None) -> dict[str, float | None]:
        """How well the outputs fit under ``calibration`` (None: raw): accuracy and class NLL of the
        labelled logits, ECE and confidence AUROC of the confidence against ``present``."""
        class_logits, confidence_logit = self.class_logits, self.confidence_logit
        if calibration is not None:
            class_logits, confidence_logit = apply_calibration(calibration, class_logits, confidence_logit)
        labels = self.labels
        log_prob = log_softmax(np.asarray(class_logits, dtype=np.float64), axis=1)
        confidence = expit(np.asarray(confidence_logit, dtype=np.float64))
        return {
            "count": len(labels),
            "accuracy": float(np.mean(np.argmax(log_prob, axis=1) == labels)) if len(labels) else None,
            "nll": float(-log_prob[np.arange(len(labels)), labels].mean()) if len(labels) else None,
            "ece": expected_calibration_error(confidence, self.present),
            "confidence_auroc": confidence_auroc(confidence, self.present),
        }


def fit_calibration(targets: CalibrationTargets, fitted_on: str = Calibration.fitted_on) -> Calibration:
    """Temperature for the labelled class logits and Platt scaling for the confidence logits of
    ``targets`` (see the module doc). Without labelled logits the temperature stays 1; without
    both outcomes among ``present`` there is no Platt scaling to fit."""
    temperature = fit_temperature(targets.class_logits, targets.labels) if len(targets.labels) else 1.0
    present = np.asarray(targets.present, dtype=bool)
    if present.all() or not present.any():
        return Calibration(temperature, fitted_on=fitted_on)
    scale, offset = fit_platt(targets.confidence_logit, present)
    return Calibration(temperature, scale, offset, fitted_on)


def set_calibration_targets(outputs: HazardSetArrays, labels: Mapping[str, np.ndarray]) -> CalibrationTargets:
    """Match each frame's slots to its true hazards (``hazard_class`` [F, Kt], 0 = empty;
    ``hazard_direction`` [F, Kt, 3]; ``hazard_distance`` [F, Kt] m) and gather the fit's targets."""
    matches = match_hazards(
        torch.from_numpy(np.asarray(outputs.class_logits)),
        torch.from_numpy(np.asarray(outputs.direction)),
        torch.from_numpy(np.asarray(outputs.distance)),
        torch.from_numpy(np.asarray(labels["hazard_class"])),
        torch.from_numpy(np.asarray(labels["hazard_direction"])),
        torch.from_numpy(np.asarray(labels["hazard_distance"])),
    )
    none = np.zeros(0, np.int64)
    frames = np.concatenate([none, *(np.full(len(s), f, np.int64) for f, (s, _) in enumerate(matches))])
    slots = np.concatenate([none, *(slots for slots, _ in matches)])
    targets = np.concatenate([none, *(targets for _, targets in matches)])
    true_class = np.asarray(labels["hazard_class"])[frames, targets].astype(np.int64)
    present = np.zeros(np.shape(outputs.confidence_logit), dtype=bool)
    present[frames, slots] = True
    return CalibrationTargets(
        class_logits=np.asarray(outputs.class_logits)[frames, slots],
        labels=true_class,
        confidence_logit=np.asarray(outputs.confidence_logit).reshape(-1),
        present=present.reshape(-1),
    )


def apply_calibration(
    calibration: Calibration, class_logits: np.ndarray, confidence_logit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated (class logits, confidence logit) of raw ones: what a folded head outputs."""
    return (
        np.asarray(class_logits) / calibration.temperature,
        calibration.scale * np.asarray(confidence_logit) + calibration.offset,
    )


@torch.no_grad()
def fold_into_head(head: ImaginationHead, calibration: Calibration) -> None:
    """Rewrite the head's class and confidence layers so they output the calibrated logits."""
    head.class_logits.weight.div_(calibration.temperature)
    head.class_logits.bias.div_(calibration.temperature)
    head.confidence.weight.mul_(calibration.scale)
    head.confidence.bias.mul_(calibration.scale).add_(calibration.offset)


@torch.no_grad()
def unfold_from_head(head: ImaginationHead, calibration: Calibration) -> None:
    """Undo ``fold_into_head(head, calibration)``: the head outputs its raw logits again."""
    if abs(calibration.scale) < _MIN_ABS_SCALE:
        raise ValueError(f"calibration scale {calibration.scale} is too close to 0 to be undone")
    head.class_logits.weight.mul_(calibration.temperature)
    head.class_logits.bias.mul_(calibration.temperature)
    head.confidence.bias.sub_(calibration.offset).div_(calibration.scale)
    head.confidence.weight.div_(calibration.scale)


def stored_calibration(metadata: checkpoint.CheckpointMetadata) -> Calibration | None:
    """The calibration folded into a checkpoint's head (``extra["calibration"]``), or None."""
    data = metadata.extra.get("calibration")
    if data is None:
        return None
    try:
        return Calibration(**data)
    except TypeError as exc:
        raise checkpoint.CheckpointError(f"checkpoint extra.calibration is malformed: {exc}") from exc


def load_uncalibrated(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[HazardSetModel, checkpoint.CheckpointMetadata, Calibration | None]:
    """A checkpoint's model with any stored calibration undone (returned third, None if it had
    none): the raw head, which a refit (``training/calibrate.py``) or a run that starts from it
    (``pretrained.model_checkpoint``) needs."""
    model, metadata = checkpoint.load_checkpoint(directory, device)
    previous = stored_calibration(metadata)
    if previous is not None:
        unfold_from_head(model.head, previous)
    return model, metadata, previous
