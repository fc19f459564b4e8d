"""Data layer: synthetic occluded-hazard scenes, dataset readers and the sound bank. No rclpy.

Modules, one job each:
- ``signals``: procedural dry signal model per hazard class (and a varied version of each).
- ``procedural``: wide procedural families (kinds of siren, horn, alarm, engine, tool) for the
  classes that rest on few real recordings; a share of the training hazards.
- ``clip_augment``: waveform augmentation of real clips (mix, speed, pitch, EQ, compression,
  clipping, gain), so a thin class sounds like more recordings; training split only.
- ``acoustics``: shoebox image-source room acoustics rendered into FOA (ACN/SN3D), noise, SNR.
- ``background``: the sound bed under every scene (real ambience or procedural diffuse noise).
- ``render``: ray-cast RGB-D of a room with occluder boxes, far scenery and a hazard object.
- ``layout``: a static world seen and heard from any robot pose (also for moving scenarios).
- ``domain``: the wide domain-randomisation profile (rooms, RT60, placement, sensor ranges).
- ``scenery`` / ``sensors``: far occluders; microphone-capsule and RGB-D camera imperfections.
- ``scene_config``: ``SceneConfig``, the distributions the scenes draw from, checked once.
- ``placement``: where one object can stand (room and robot pose, a hazard of a target
  visibility, a near panel, an audio-only source).
- ``scene_geometry``: the world behind a scene (room, pose, hazards, occluders, far scenery).
- ``scene_view``: the camera view of that geometry (render, then the wide profile's sensor limits).
- ``scene_audio``: the dry sounds, the background, their mix at the drawn SNRs and the level.
- ``scene_labels``: the labels in the microphone frame and the ``Sample`` that carries them.
- ``scene``: ``generate_scene(seed, config)`` -> ``Sample``, single hazard or hazard set, through
  the steps above in a fixed order (same seed, same scene).
- ``scenario_script`` / ``moving_scenes``: timed robot and hazard tracks, and random ones for the
  held-out evaluation of tracks.
- ``acs``: FOA channel-swap augmentation (rotations/reflections of the field and its labels).
- ``sound_bank``: real clips by class (class folders or UrbanSound8K) instead of procedural ones.
- ``starss23`` / ``urbansound8k``: readers of the real datasets' layouts.
- ``shards`` / ``dataset``: parallel generation into cached shards and a torch Dataset over them.
- ``contact_sheet`` / ``synthesize``: a PNG for eyes and the command line.
"""
