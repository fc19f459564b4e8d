"""Data layer: synthetic occluded-hazard scenes, dataset readers and the sound bank. No rclpy.

Modules, one job each:
- ``signals``: procedural dry signal model per hazard class (and a varied version of each).
- ``acoustics``: shoebox image-source room acoustics rendered into FOA (ACN/SN3D), noise, SNR.
- ``background``: the sound bed under every scene (real ambience or procedural diffuse noise).
- ``render``: ray-cast RGB-D of a room with occluder boxes, far scenery and a hazard object.
- ``layout``: a static world seen and heard from any robot pose (also for moving scenarios).
- ``domain``: the wide domain-randomisation profile (rooms, RT60, placement, sensor ranges).
- ``scenery`` / ``sensors``: far occluders; microphone-capsule and RGB-D camera imperfections.
- ``scene``: ``SceneConfig`` and ``generate_scene(seed, config)`` -> ``Sample``.
- ``acs``: FOA channel-swap augmentation (rotations/reflections of the field and its labels).
- ``sound_bank``: real clips by class (class folders or UrbanSound8K) instead of procedural ones.
- ``starss23`` / ``urbansound8k``: readers of the real datasets' layouts.
- ``shards`` / ``dataset``: parallel generation into cached shards and a torch Dataset over them.
- ``contact_sheet`` / ``synthesize``: a PNG for eyes and the command line.
"""
