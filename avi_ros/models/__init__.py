"""The package's model: SELD encoder, visual encoder, per-hazard fusion and head, K hazard slots.

``build_model(ModelConfig)`` builds the full model and every baseline; ``ModelConfig.hazard_slots``
= K is how many hazards it reports per frame (K = 1: one).
"""

from avi_ros.models.builder import build_model, load_pretrained
from avi_ros.models.config import VARIANTS, ModelConfig
from avi_ros.models.freezing import freeze_seld_encoder, parameter_counts, seld_depth_units
from avi_ros.models.hazard_fusion import AdapterConfig, HazardSetFusion, steering_window
from avi_ros.models.hazard_set import HazardSetModel, HazardSetOutput
from avi_ros.models.head import HeadConfig, ImaginationHead
from avi_ros.models.output_arrays import HazardSetArrays, OutputArrays, read_set_outputs
from avi_ros.models.seld_encoder import SeldEncoder, SeldEncoderConfig, load_dcase_checkpoint
from avi_ros.models.visual_encoder import VisualEncoder, VisualEncoderConfig

__all__ = [
    "VARIANTS",
    "AdapterConfig",
    "HazardSetArrays",
    "HazardSetFusion",
    "HazardSetModel",
    "HazardSetOutput",
    "HeadConfig",
    "ImaginationHead",
    "ModelConfig",
    "OutputArrays",
    "SeldEncoder",
    "SeldEncoderConfig",
    "VisualEncoder",
    "VisualEncoderConfig",
    "build_model",
    "freeze_seld_encoder",
    "load_dcase_checkpoint",
    "load_pretrained",
    "parameter_counts",
    "read_set_outputs",
    "seld_depth_units",
    "steering_window",
]
