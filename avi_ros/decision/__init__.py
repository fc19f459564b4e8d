"""The decision stage: risk, reason and action from the recent hazards and the robot's own motion.

A room of its own in the core layer (no rclpy, no training imports), after the model and before
the node's outputs. It reads the robot's motion from the core (``avi_ros.telemetry``: the
telemetry vector [8] aligned to a frame stamp); its HazardAssessment message is built with the
others in ``avi_ros.message_builders``. Its parts, one job per module:

- ``labels``: the label maps (risk 0-3, reason 0-3, action 0-5) and the hazard class -> reason map;
- ``rules``: the documented labelling rules (time to contact, hazard class, visibility), and the
  same rules applied to one frame's estimate (the run-time baseline);
- ``features``: the per-frame visual feature (from the pipeline's hazard estimate) and the window
  of the last F camera periods, frames placed by their stamps;
- ``model``: projectors, segment pooling, the decoder backbone (``none | transformer | hf_local``)
  and the risk/reason/action/confidence heads;
- ``checkpoint``: the decision checkpoint (safetensors + JSON metadata);
- ``inference``: the wrapper that turns a window + telemetry into a readable assessment;
- ``scenarios``: the kinematic estimate simulator (the ablation: the stage is trained on the
  pipeline's own outputs on rendered scenario runs, ``training/decision_data.py``).
"""
