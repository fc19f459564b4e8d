#!/usr/bin/env bash
# `make demo` (after `make setup`): the package's main job, end to end, on a 2-core CPU.
#   1. generate a small synthetic dataset (the splits of training/configs/demo.yaml)
#   2. pre-train the SELD encoder (demo_seld.yaml), then train demo.yaml -> runs/demo/checkpoints/best
#   3. make a moving-robot scenario bag      -> out/demo/scenario/ (rosbag2, mcap)
#   4. run the perception node live on it    (avi-ros play + perception_node, real rclpy)
#   5. offline replay through the same frame assembly and pipeline, and the report
#   6. say where to look                     -> out/demo/index.html
# A second run reuses whatever the first made: each step is skipped when its output exists
# (delete runs/demo or out/demo to redo them). Pass --fresh to redo steps 3-6.
# AVI_ROS_DEMO_OUT, AVI_ROS_DEMO_RUN, AVI_ROS_DEMO_SELD_RUN and AVI_ROS_DEMO_CACHE move the outputs, the training runs
# and the dataset cache elsewhere (e.g. to time a cold run next to an existing one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/ros_env.sh
source scripts/ros_env.sh

OUT="${AVI_ROS_DEMO_OUT:-out/demo}"
RUN="${AVI_ROS_DEMO_RUN:-runs/demo}"
CACHE="${AVI_ROS_DEMO_CACHE:-runs/cache/demo}"
SELD_RUN="${AVI_ROS_DEMO_SELD_RUN:-runs/demo_seld}"
CONFIG=training/configs/demo.yaml
SELD_CONFIG=training/configs/demo_seld.yaml
OVERRIDES=("output_dir=$RUN" "data.cache_dir=$CACHE" "pretrained.seld_checkpoint=$SELD_RUN/checkpoints/best")
BAG="$OUT/scenario"
CHECKPOINT="$RUN/checkpoints/best"
LIVE="$OUT/live_hazards.jsonl"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# A private DDS domain, so the demo neither hears nor disturbs other ROS 2 systems.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
export PYTHONUNBUFFERED=1
CLI=(python -m avi_ros.cli)

if [[ "${1:-}" == "--fresh" ]]; then
  rm -rf "$OUT"
fi
mkdir -p "$OUT"

started=$(date +%s)
step_started=$started
step() {
  local now
  now=$(date +%s)
  if [[ "$1" != "1" ]]; then
    echo "[demo] step took $((now - step_started)) s (total $((now - started)) s)"
  fi
  step_started=$now
  echo
  echo "[demo $1/6] $2"
}

step 1 "generate the synthetic dataset of $CONFIG (reused when present)"
python scripts/demo_dataset.py "$CONFIG" "${OVERRIDES[@]}"

step 2 "pre-train the SELD encoder ($SELD_CONFIG), then train $CONFIG -> $CHECKPOINT"
# demo.yaml loads the pre-trained SELD encoder from $SELD_RUN (its pretrained.seld_checkpoint).
if [[ -f "$SELD_RUN/checkpoints/best/metadata.json" ]]; then
  echo "SELD encoder already pre-trained ($SELD_RUN); skipping"
elif [[ -f "$SELD_RUN/checkpoints/last/metadata.json" ]]; then
  echo "the SELD pre-training stopped part way; resuming it"
  python training/train.py --resume "$SELD_RUN"
else
  python training/train.py --config "$SELD_CONFIG" "output_dir=$SELD_RUN" "data.cache_dir=$CACHE"
fi
if [[ -f "$RUN/export/model_card.md" && -f "$CHECKPOINT/metadata.json" ]]; then
  echo "already trained ($RUN/export/model_card.md); skipping"
elif [[ -f "$RUN/checkpoints/last/metadata.json" ]]; then
  echo "an earlier run stopped part way; resuming it"
  python training/train.py --resume "$RUN"
else
  python training/train.py --config "$CONFIG" "${OVERRIDES[@]}"
fi

step 3 "make the scenario bag $BAG (engine in view, dog walking behind a panel, siren behind the robot)"
if [[ -f "$BAG/metadata.yaml" ]]; then
  echo "already there; skipping"
else
  "${CLI[@]}" make-bag --out "$BAG.mcap" --scenario corridor --seed 0
fi

step 4 "run the perception node live on the bag (avi-ros play -> perception_node -> avi-ros echo)"
if [[ -s "$LIVE" ]]; then
  echo "already ran ($LIVE); skipping"
else
  pids=()
  cleanup() {
    # SIGTERM: background jobs of a script ignore SIGINT; rclpy shuts down cleanly on SIGTERM.
    for pid in "${pids[@]}"; do
      kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
      wait "$pid" 2>/dev/null || true
    done
  }
  trap cleanup EXIT
  rm -f "$LIVE.partial"
  python -m avi_ros.ros.perception_node --ros-args \
    -p model_path:="$CHECKPOINT" -p device:=cpu \
    -p extrinsic.from_tf:=false -p "extrinsic.xyz:=[0.05, 0.0, 0.1]" \
    -p qos_reliability:=reliable -p audio.queue_depth:=500 --log-level warn &
  pids+=($!)
  "${CLI[@]}" echo --topic /hazards --jsonl "$LIVE.partial" --quiet &
  pids+=($!)
  "${CLI[@]}" play "$BAG" --wait-for /audio --wait-for /rgb/image_raw --wait-for /depth/image_raw \
    --wait-for /rgb/camera_info --wait-timeout 180
  sleep 2  # let the last frames through the node
  cleanup
  trap - EXIT
  mv "$LIVE.partial" "$LIVE"
  echo "the live node published $(wc -l < "$LIVE") HazardEstimateArray messages (saved in $LIVE)"
fi

step 5 "offline replay of $BAG through the node's frame assembly and pipeline, and the report"
if [[ -f "$OUT/index.html" && -f "$OUT/bag/metadata.yaml" ]]; then
  echo "already replayed; skipping"
else
  rm -rf "$OUT/bag"
  "${CLI[@]}" replay "$BAG" --model "$CHECKPOINT" --out "$OUT" --device cpu --report-frames 12
fi

step 6 "summary"
python - "$LIVE" "$OUT/bag" <<'EOF'
import json
import math
import sys

from avi_ros.bag.io import read_bag

live = {}
for line in open(sys.argv[1], encoding="utf-8"):
    record = json.loads(line)
    live[record["stamp_ns"]] = record["hazards"]
offline = {}
for message in read_bag(sys.argv[2], topics=["/hazards"]):
    stamp = message.message.header.stamp
    offline[stamp.sec * 1_000_000_000 + stamp.nanosec] = message.message.hazards
common = sorted(set(live) & set(offline))
same = sum(
    [h["class_name"] for h in live[s]] == [h.class_name for h in offline[s]]
    and all(
        abs(a["azimuth"] - b.azimuth) < math.radians(0.01)
        for a, b in zip(live[s], offline[s], strict=True)
    )
    for s in common
)
print(
    f"live node vs offline replay: {len(live)} live frames, {len(offline)} replayed; "
    f"on the {len(common)} frames both processed, {same} have identical estimates"
)
EOF
if [[ -f "$OUT/metrics.md" ]]; then
  echo
  echo "metrics against the scenario's ground truth ($OUT/metrics.md):"
  cat "$OUT/metrics.md"
fi
now=$(date +%s)
echo
echo "[demo] done in $((now - started)) s."
echo "[demo] open $OUT/index.html  (frames: $OUT/frames/, timeline: $OUT/timeline.png, top-down: $OUT/polar.png)"
echo "[demo] input bag: $BAG   output bag: $OUT/bag   live node output: $LIVE"
