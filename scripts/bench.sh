#!/usr/bin/env bash
# Mastering benchmark: the default chain on a generated 3-minute 44.1 kHz stereo 16-bit WAV,
# decode to encode, pinned to one core. Prints the real-time factor per stage and in total, the
# peak RSS, and — when ffmpeg is installed — ffmpeg loudnorm two-pass on the same file, pinned
# to the same core, with the speed ratio. `--long` also masters a 60-minute file for peak RSS.
# Usage: scripts/bench.sh [--long] [--style S] [--format wav|flac|mp3] [--runs N (3)]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
long=0
runs=3
style=standard
format=wav
while [ $# -gt 0 ]; do
  case "$1" in
    --long) long=1 ;;
    --style) style=$2; shift ;;
    --format) format=$2; shift ;;
    --runs) runs=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

cargo build --release -q -p magic-master-worker -p mastering --examples --bins
worker="$root/target/release/magic-master-worker"
make_track="$root/target/release/examples/make_test_track"
out_dir="$root/bench-out"
mkdir -p "$out_dir"

pin() { taskset -c 0 "$@"; }

# Runs the chain $runs times (this machine is shared and noisy: one run can be slowed by
# others); prints every run's wall time and the per-stage report of the median run, and sets
# $chain_wall to the median wall time and $rss_kb to the highest peak RSS.
bench_chain() {
  local input=$1 output=$2 label=$3
  local i start end walls=()
  rss_kb=0
  for ((i = 1; i <= runs; i++)); do
    start=$(date +%s.%N)
    pin /usr/bin/time -v -o "$out_dir/time_$i.txt" "$worker" master "$input" -o "$output" \
      --style "$style" --format "$format" --json > "$out_dir/report_$i.json"
    end=$(date +%s.%N)
    walls+=("$(echo "$end - $start" | bc -l)")
    local kb
    kb=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$out_dir/time_$i.txt")
    [ "$kb" -gt "$rss_kb" ] && rss_kb=$kb
  done
  chain_wall=$(python3 - "$out_dir" "$rss_kb" "$label" "${walls[@]}" <<'PY'
import json, shutil, sys
out_dir, rss_kb, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
walls = [float(w) for w in sys.argv[4:]]
median_run = sorted(range(len(walls)), key=lambda i: walls[i])[len(walls) // 2]
wall = walls[median_run]
shutil.copy(f"{out_dir}/report_{median_run + 1}.json", f"{out_dir}/report.json")
report = json.load(open(f"{out_dir}/report.json"))
dur = report.get("duration_sec") or report["before"]["duration_sec"]
out = sys.stderr
print(f"== Magic Master chain — {label} ({dur:.1f} s of audio, one core)", file=out)
print("  runs (wall):           " + ", ".join(f"{w:.3f} s" for w in walls)
      + f"; stages of the median run:", file=out)
for stage, secs in report.get("stage_seconds", []):
    if secs < 0.0005:
        print(f"  {stage:<22} (not needed for this input)", file=out)
        continue
    print(f"  {stage:<22} {secs:8.3f} s  {dur / secs:9.0f}x real time", file=out)
print(f"  {'total (median wall)':<22} {wall:8.3f} s  {dur / wall:9.0f}x real time", file=out)
print(f"  peak RSS               {rss_kb / 1024:8.1f} MB", file=out)
b, a = report["before"], report["after"]
print(f"  before: {b['lufs']:.2f} LUFS, {b['true_peak_db']:.2f} dBTP, LRA {b['lra']:.1f}", file=out)
print(f"  after:  {a['lufs']:.2f} LUFS, {a['true_peak_db']:.2f} dBTP, LRA {a['lra']:.1f}", file=out)
print(wall)
PY
)
}

track="$out_dir/track_3min.wav"
[ -f "$track" ] || "$make_track" "$track" 180 44100
bench_chain "$track" "$out_dir/mastered.$format" "3-minute 44.1 kHz stereo WAV"
chain_3min_wall=$chain_wall

if command -v ffmpeg > /dev/null; then
  target=$(python3 -c "import json;print(round(json.load(open('$out_dir/report.json'))['after']['lufs'], 1))" 2>/dev/null || echo -14)
  start=$(date +%s.%N)
  pin ffmpeg -hide_banner -nostats -threads 1 -i "$track" \
    -af "loudnorm=I=$target:TP=-1:LRA=11:print_format=json" -f null - 2> "$out_dir/loudnorm1.txt"
  measured=$(python3 - "$out_dir/loudnorm1.txt" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
m = json.loads(text[text.rindex("{"):text.rindex("}") + 1])
print(f"measured_I={m['input_i']}:measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}"
      f":measured_thresh={m['input_thresh']}:offset={m['target_offset']}")
PY
)
  pin ffmpeg -hide_banner -nostats -loglevel error -threads 1 -y -i "$track" \
    -af "loudnorm=I=$target:TP=-1:LRA=11:$measured:linear=true" -ar 44100 "$out_dir/loudnorm.wav"
  end=$(date +%s.%N)
  ff_wall=$(echo "$end - $start" | bc -l)
  echo "== ffmpeg loudnorm two-pass to $target LUFS, same file, same core"
  printf "  total                  %8.3f s  %9.0fx real time\n" "$ff_wall" "$(echo "180 / $ff_wall" | bc -l)"
  printf "  Magic Master is %.1fx faster than ffmpeg loudnorm two-pass\n" "$(echo "$ff_wall / $chain_3min_wall" | bc -l)"
  echo "== independent meter (ffmpeg ebur128) on the Magic Master output"
  ffmpeg -hide_banner -nostats -i "$out_dir/mastered.$format" -af ebur128=peak=true -f null - 2>&1 \
    | sed -n '/Summary:/,$p' | grep -E 'I:|Peak:' | sed 's/^ */  /'
else
  echo "(ffmpeg not installed: no loudnorm comparison)"
fi

if [ "$long" -eq 1 ]; then
  long_track="$out_dir/track_60min.wav"
  [ -f "$long_track" ] || "$make_track" "$long_track" 3600 44100
  bench_chain "$long_track" "$out_dir/mastered_60min.$format" "60-minute 44.1 kHz stereo WAV"
fi
