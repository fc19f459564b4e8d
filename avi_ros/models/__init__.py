"""The imagination model: SELD encoder, visual encoder, occlusion-aware adapter and head.

``build_model(ModelConfig)`` builds the full model and every baseline; with
``ModelConfig.hazard_slots`` > 0 it builds the hazard-set model (several hazards per frame).
"""

from avi_ros.models.adapter import AdapterConfig, OcclusionAwareAdapter
from avi_ros.models.builder import build_model, load_pretrained
from avi_ros.models.config import VARIANTS, ModelConfig
from avi_ros.models.freezing import freeze_seld_encoder, parameter_counts, seld_depth_units
from avi_ros.models.hazard_fusion import HazardSetFusion, steering_window
from avi_ros.models.hazard_set import HazardSetModel, HazardSetOutput
from avi_ros.models.head import HeadConfig, ImaginationHead
from avi_ros.models.imagination import ImaginationModel, ModelOutput
from avi_ros.models.output_arrays import HazardSetArrays, OutputArrays, read_outputs, read_set_outputs
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
    "ImaginationModel",
    "ModelConfig",
    "ModelOutput",
    "OcclusionAwareAdapter",
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
    "read_outputs",
    "read_set_outputs",
    "seld_depth_units",
    "steering_window",
]
