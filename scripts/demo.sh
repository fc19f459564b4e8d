#!/usr/bin/env bash
# `make demo` (after `make setup`): the package's main job, end to end, on a 2-core CPU.
#   1. the real sound bank (scripts/sounds.sh, where apt can fetch it) and a small synthetic
#      dataset of hazard sets (the splits of training/configs/demo.yaml: 0-3 hazards per scene)
#   2. train, to show training: the SELD encoder (demo_seld.yaml), then a quick hazard-set model
#      (demo.yaml, the package's model on fewer scenes) -> runs/demo/checkpoints/best, and the
#      decision stage (decision.yaml) -> runs/demo_decision/checkpoints/best
#   3. make a moving-robot scenario bag      -> out/demo/scenario/ (rosbag2, mcap)
#   4. run the perception node live on it    (avi-ros play + perception_node, real rclpy; hazards and
#      the decision stage's assessments recorded) with the hazard-set model that ships with the
#      package (avi_ros/models/shipped; AVI_ROS_DEMO_MODEL=runs/demo/checkpoints/best runs steps 4-5
#      on the quick model of step 2 instead)
#   5. offline replay through the same frame assembly and pipeline (same model), and the report
#   6. say where to look                     -> out/demo/index.html
# A second run reuses whatever the first made: each step is skipped when its output exists
# (delete runs/demo or out/demo to redo them; a change of the model of steps 4-5, e.g. a new
# shipped model, redoes those steps and the decision stage; a changed training config retrains that
# run, and a retrained SELD encoder the hazard-set model on it), and an interrupted training run is
# resumed (training/run_status.py asks the run directory, given the config the run should have).
# Pass --fresh to redo steps 3-6, --dry-run to print what each step would do without doing it.
# Progress bars show on a terminal only; in a log file each step is a few whole lines.
# AVI_ROS_DEMO_OUT, AVI_ROS_DEMO_RUN, AVI_ROS_DEMO_SELD_RUN, AVI_ROS_DEMO_DECISION_RUN and AVI_ROS_DEMO_CACHE move the outputs, the training runs
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
DECISION_RUN="${AVI_ROS_DEMO_DECISION_RUN:-runs/demo_decision}"
DECISION_CONFIG=training/configs/decision.yaml
CONFIG=training/configs/demo.yaml
SELD_CONFIG=training/configs/demo_seld.yaml
OVERRIDES=("output_dir=$RUN" "data.cache_dir=$CACHE" "pretrained.seld_checkpoint=$SELD_RUN/checkpoints/best")
BAG="$OUT/scenario"
CHECKPOINT="$RUN/checkpoints/best"
# The model of steps 4-5: empty = the shipped model (the node's and replay's default).
MODEL="${AVI_ROS_DEMO_MODEL:-}"
MODEL_NAME="${MODEL:-the shipped hazard-set model (avi_ros/models/shipped)}"
MODEL_PARAM=()
MODEL_OPTION=()
# The decision stage trains on scenario runs through the pipeline with the model of steps 4-5;
# the demo renders fewer runs than decision.yaml (28 instead of 96: about 2 minutes of one core).
DECISION_OVERRIDES=("output_dir=$DECISION_RUN" data.train.scenes=16 data.val.scenes=4 decision.pipeline.test_scenes=8)
if [[ -n "$MODEL" ]]; then
  MODEL_PARAM=(-p "model_path:=$MODEL")
  MODEL_OPTION=(--model "$MODEL")
  DECISION_OVERRIDES+=("decision.pipeline.model_path=$MODEL")
fi
LIVE="$OUT/live_hazards.jsonl"
ASSESSMENTS="$OUT/live_assessments.jsonl"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# A private DDS domain, so the demo neither hears nor disturbs other ROS 2 systems.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
export PYTHONUNBUFFERED=1
# Shared-memory transport for the 640x480 images between play and the node: over the default UDP
# transport most images are lost or arrive late (see the README's node section).
export FASTDDS_BUILTIN_TRANSPORTS="${FASTDDS_BUILTIN_TRANSPORTS:-LARGE_DATA}"
CLI=(python -m avi_ros.cli)

fresh=0
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    --dry-run) dry_run=1 ;;
    *) echo "usage: scripts/demo.sh [--fresh] [--dry-run]" >&2; exit 2 ;;
  esac
done

# run CMD...: run it, or with --dry-run only say it would.
run() {
  if [[ $dry_run == 1 ]]; then
    echo "would run: $*"
  else
    "$@"
  fi
}

# train RUN_DIR CONFIG [key=value ...]: skip a complete run, resume a partial one, else train; a
# run started with another config (CONFIG or the overrides changed since) is trained afresh.
# Sets `trained` to 1 when it trains anything; `retrain=1` trains the run afresh whatever it holds.
trained=0
retrain=0
train() {
  local run_dir=$1 config=$2 status
  shift 2
  status=$(python training/run_status.py "$run_dir" --config "$config" "$@")
  if [[ $retrain == 1 && $status != absent ]]; then
    status=stale
  fi
  case "$status" in
    complete) echo "already trained ($run_dir); skipping"; return ;;
    resumable)
      echo "$run_dir stopped part way; resuming it"
      run python training/train.py --resume "$run_dir"
      ;;
    restart)
      echo "$run_dir stopped before its first checkpoint; starting it again"
      run python training/train.py --config "$config" --overwrite "$@"
      ;;
    stale)
      echo "$run_dir was trained with another config or on another encoder than $config asks for now; training it again"
      run python training/train.py --config "$config" --overwrite "$@"
      ;;
    *) run python training/train.py --config "$config" "$@" ;;
  esac
  trained=1
}

if [[ $fresh == 1 ]]; then
  run rm -rf "$OUT"
fi
run mkdir -p "$OUT"

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

step 1 "the sound bank, then the synthetic hazard-set scenes of $CONFIG (both reused when present)"
if [[ -x scripts/sounds.sh ]]; then
  run bash scripts/sounds.sh
fi
run python scripts/demo_dataset.py "$CONFIG" "${OVERRIDES[@]}"

step 2 "training, to show it (steps 4-5 run $MODEL_NAME): the SELD encoder ($SELD_CONFIG), then a quick hazard-set model ($CONFIG -> $CHECKPOINT) and the decision stage ($DECISION_CONFIG)"
# demo.yaml loads the pre-trained SELD encoder from $SELD_RUN (its pretrained.seld_checkpoint).
train "$SELD_RUN" "$SELD_CONFIG" "output_dir=$SELD_RUN" "data.cache_dir=$CACHE"
retrain=$trained  # a new SELD encoder: the hazard-set model on it is trained again
train "$RUN" "$CONFIG" "${OVERRIDES[@]}"
retrain=0
# The decision stage's training data and steps 4-5 come from the model of steps 4-5: what an earlier
# run made with another model (new weights, calibration or direction reading: avi_ros.checkpoint.model_fingerprint)
# is redone, not reused.
STAMP="$OUT/model.fingerprint"
if [[ -f "${MODEL:-avi_ros/models/shipped}/model.safetensors" ]]; then
  fingerprint=$(python -c 'import sys; from avi_ros.checkpoint import model_fingerprint
print(model_fingerprint(sys.argv[1]))' "${MODEL:-avi_ros/models/shipped}")
  if [[ "$(cat "$STAMP" 2>/dev/null)" != "$fingerprint" ]]; then
    if [[ -e "$LIVE" || -e "$OUT/index.html" || -e "$DECISION_RUN" ]]; then
      echo "the model of steps 4-5 is not the one of the last run ($fingerprint): redoing its decision stage and steps 4-5"
    fi
    run rm -rf "$LIVE" "$ASSESSMENTS" "$OUT/index.html" "$OUT/bag" "$DECISION_RUN"
    [[ $dry_run == 1 ]] || echo "$fingerprint" > "$STAMP"
  fi
fi
train "$DECISION_RUN" "$DECISION_CONFIG" "${DECISION_OVERRIDES[@]}"

step 3 "make the scenario bag $BAG (engine idling in view then driving past, dog walking behind a panel, siren behind the robot)"
if [[ -f "$BAG/metadata.yaml" ]]; then
  echo "already there; skipping"
else
  run rm -rf "$BAG"  # a bag without metadata.yaml was cut short
  run "${CLI[@]}" make-bag --out "$BAG.mcap" --scenario corridor --seed 0
fi

step 4 "run the perception node live on the bag with $MODEL_NAME (avi-ros play -> perception_node -> avi-ros echo)"
if [[ -s "$LIVE" ]]; then
  echo "already ran ($LIVE); skipping"
elif [[ $dry_run == 1 ]]; then
  echo "would run: perception_node, avi-ros echo and avi-ros play $BAG -> $LIVE"
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
  rm -f "$LIVE.partial" "$ASSESSMENTS"
  python -m avi_ros.ros.perception_node --ros-args \
    "${MODEL_PARAM[@]}" -p device:=cpu -p decision.model_path:="$DECISION_RUN/checkpoints/best" \
    -p extrinsic.from_tf:=false -p "extrinsic.xyz:=[0.05, 0.0, 0.1]" \
    -p qos_reliability:=reliable -p audio.queue_depth:=500 --log-level warn &
  pids+=($!)
  "${CLI[@]}" echo --topic /hazards --jsonl "$LIVE.partial" --quiet &
  pids+=($!)
  "${CLI[@]}" echo --kind assessments --topic /hazard_assessment --jsonl "$ASSESSMENTS" --quiet &
  pids+=($!)
  "${CLI[@]}" play "$BAG" --wait-for /audio --wait-for /rgb/image_raw --wait-for /depth/image_raw \
    --wait-for /rgb/camera_info --wait-timeout 180
  sleep 2  # let the last frames through the node
  cleanup
  trap - EXIT
  mv "$LIVE.partial" "$LIVE"
  echo "the live node published $(wc -l < "$LIVE") HazardEstimateArray messages (saved in $LIVE)"
  echo "and $(wc -l < "$ASSESSMENTS") HazardAssessment messages of the decision stage (saved in $ASSESSMENTS)"
fi

step 5 "offline replay of $BAG through the node's frame assembly and pipeline with the same model, and the report"
if [[ -f "$OUT/index.html" && -f "$OUT/bag/metadata.yaml" ]]; then
  echo "already replayed; skipping"
else
  run rm -rf "$OUT/bag"
  run "${CLI[@]}" replay "$BAG" "${MODEL_OPTION[@]}" --out "$OUT" --device cpu --report-frames 12
fi

step 6 "summary"
if [[ $dry_run == 1 ]]; then
  echo "would run: the live vs offline comparison of $LIVE and $OUT/bag"
  exit 0
fi
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
python scripts/demo_assessments.py "$ASSESSMENTS" "$LIVE" "$BAG" "$OUT"
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
