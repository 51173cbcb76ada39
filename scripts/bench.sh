#!/usr/bin/env bash
# Mastering benchmark, pinned to one core.
#
# Default (synthetic): the chain on a generated 3-minute 44.1 kHz stereo 16-bit WAV, decode to
# encode. Prints the real-time factor per stage and in total, the peak RSS, and — when ffmpeg
# is installed — ffmpeg loudnorm two-pass on the same file, pinned to the same core, with the
# speed ratio. `--long` also masters a 60-minute file for peak RSS.
#   scripts/bench.sh [--long] [--style S] [--format wav|flac|mp3] [--runs N (3)]
#
# --music: real music (the frozen-bubble tracks, scripts/fetch-test-music.sh), one row per
# style × output format: real-time factor (track duration / median wall time of --runs runs;
# also by the lowest CPU time, steadier on a busy shared core, though other work still slows
# it), peak RSS, integrated loudness by the chain's meter and by ffmpeg's ebur128, true peak of the
# written file by the reference meter (8×, mastering/examples/measure_file.rs) and by ffmpeg's
# ebur128=peak=true, and PASS/FAIL against the ceiling and ±0.1 LU of the target. Peers in the
# same run on the same core: ffmpeg loudnorm two-pass to 16-bit WAV, lame -b 320 (its default
# quality, and the chain's LAME quality), flac -5. Each track is decoded once to 16-bit WAV by
# ffmpeg before timing, so Vorbis decoding does not dominate.
#   scripts/bench.sh --music [--styles all|a,b] [--formats wav16,wav24,flac16,flac24,mp3]
#       [--tracks frozen-mainzik-1p,2p,introzik] [--runs N (3)] [--markdown | --readme]
#       [--no-peers] [--music-dir DIR] [--core N (0)] [--lame-quality Q (7)]
# The music directory defaults to $MAGIC_MASTER_TEST_MUSIC_DIR, else test-assets/frozen-bubble.
# --markdown also prints the result as Markdown, to paste as is into the README's speed section;
# --readme also writes it there (between the section's two "music benchmark table" markers).
# Every --music row is kept in bench-out/music/rows.tsv; the tables are scripts/bench_table.py.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() {
  echo "bench.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

command_line="$*"
music=0
long=0
runs=3
style=standard
format=wav
styles=all
formats=wav16,wav24,flac16,flac24,mp3
tracks=frozen-mainzik-1p
markdown=0
peers=1
core=0
lame_quality=7
music_dir=${MAGIC_MASTER_TEST_MUSIC_DIR:-$root/test-assets/frozen-bubble}
while [ $# -gt 0 ]; do
  case "$1" in
    --music) music=1 ;;
    --long) long=1 ;;
    --style) style=${2:?--style needs a value}; shift ;;
    --format) format=${2:?--format needs a value}; shift ;;
    --runs) runs=${2:?--runs needs a value}; shift ;;
    --styles) styles=${2:?--styles needs a value}; shift ;;
    --formats) formats=${2:?--formats needs a value}; shift ;;
    --tracks) tracks=${2:?--tracks needs a value}; shift ;;
    --music-dir) music_dir=${2:?--music-dir needs a value}; shift ;;
    --core) core=${2:?--core needs a value}; shift ;;
    --lame-quality) lame_quality=${2:?--lame-quality needs a value}; shift ;;
    --markdown) markdown=1 ;;
    --readme) markdown=readme ;;
    --no-peers) peers=0 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
[[ $core =~ ^[0-9]+$ ]] || die "--core must be a CPU number, not '$core'"
[[ $lame_quality =~ ^[0-9]$ ]] || die "--lame-quality must be 0..9, not '$lame_quality'"

need() {
  command -v "$1" > /dev/null || die "$1 is not installed; it is needed $2"
}
need cargo "to build the worker"
need taskset "to pin every run to one core (util-linux)"
need python3 "to take medians and print the table"
need bc "for the timings"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is not installed; it is needed for peak RSS"

out_dir="$root/bench-out"
mkdir -p "$out_dir"
worker="$root/target/release/magic-master-worker"
pin() { taskset -c "$core" "$@"; }

# ---------------------------------------------------------------------------------------------
# Real music (--music)
# ---------------------------------------------------------------------------------------------

# The output format spec (wav16, wav24, flac16, flac24, mp3) as worker options and extension.
format_args() {
  case "$1" in
    wav16 | wav24) echo "--format wav --bit-depth ${1#wav} wav" ;;
    flac16 | flac24) echo "--format flac --bit-depth ${1#flac} flac" ;;
    mp3) echo "--format mp3 --mp3-bitrate 320 mp3" ;;
    *) return 1 ;;
  esac
}

# Runs "$@" $runs times pinned to the core; sets $walls (space-separated seconds), $cpu_min
# (the lowest CPU time, user + system seconds: on a shared machine the wall time also counts
# the time the core was given to others) and $rss_kb (the highest peak RSS). The command's stdout goes
# to $out_dir/music/stdout_<run>, its stderr to $out_dir/music/stderr; a failure stops the
# benchmark with that stderr.
timed_runs() {
  local i start end kb user sys cpu
  walls=""
  cpu_min=""
  rss_kb=0
  for ((i = 1; i <= runs; i++)); do
    start=$(date +%s.%N)
    if ! pin /usr/bin/time -f "%U %S %M" -o "$mdir/time" "$@" > "$mdir/stdout_$i" 2> "$mdir/stderr"; then
      cat "$mdir/stderr" >&2
      die "failed: $*"
    fi
    end=$(date +%s.%N)
    walls+="$(echo "$end - $start" | bc -l) "
    read -r user sys kb < "$mdir/time"
    [ "$kb" -gt "$rss_kb" ] && rss_kb=$kb
    cpu=$(echo "$user + $sys" | bc -l)
    if [ -z "$cpu_min" ] || [ "$(echo "$cpu < $cpu_min" | bc -l)" -eq 1 ]; then
      cpu_min=$cpu
    fi
  done
}

# Measures a written file; sets $measured to "I_chain TP_ref TP_grid I_ffmpeg TP_ffmpeg" and
# $measured_seconds, $measured_rate to its duration and sample rate.
# The reference meter and the chain's meter: mastering/examples/measure_file.rs. ffmpeg: the
# ebur128 filter's frame metadata (I with three decimals; the running true peak per channel,
# linear with three decimals, i.e. ±0.005 dB near −1 dBTP — its printed summary has one
# decimal only).
measure() {
  local file=$1 line
  line=$("$measure_file" "$file") || die "measure_file failed on $file"
  ffmpeg -hide_banner -nostats -loglevel error -y -i "$file" \
    -af "ebur128=peak=true:metadata=1,ametadata=mode=print:file=$mdir/ebur128.txt" \
    -f null - || die "ffmpeg ebur128 failed on $file"
  measured=$(python3 - "$line" "$mdir/ebur128.txt" <<'PY'
import math, sys
ours = dict(kv.split("=", 1) for kv in sys.argv[1].split(" file=", 1)[0].split())
integrated, peak = None, 0.0
for line in open(sys.argv[2]):
    key, _, value = line.strip().partition("=")
    if key == "lavfi.r128.I":
        integrated = float(value)
    elif key.startswith("lavfi.r128.true_peaks_ch"):
        peak = max(peak, float(value))
if integrated is None:
    sys.exit("no ebur128 reading in the ffmpeg metadata")
tp = 20 * math.log10(peak) if peak > 0 else -200.0
print(ours["integrated_lufs"], ours["true_peak_dbtp"], ours["grid_dbtp"],
      f"{integrated:.3f}", f"{tp:.3f}", ours["seconds"], ours["rate"])
PY
  ) || die "could not read the measurements of $file"
  read -r _ _ _ _ _ measured_seconds measured_rate <<< "$measured"
  measured=${measured% * *}
}

# One row of the results (tab-separated): kind track label format seconds target ceiling walls
# (space-separated) cpu_min rss_kb, then the measurements (space-separated).
row() {
  local kind=$1 track=$2 label=$3 fmt=$4 target=$5 ceiling=$6
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$track" "$label" "$fmt" \
    "$seconds" "$target" "$ceiling" "${walls% }" "$cpu_min" "$rss_kb" "$measured" >> "$rows"
}

music_bench() {
  need ffmpeg "to decode the music and as the independent meter (ebur128)"
  if [ "$peers" -eq 1 ]; then
    need lame "for the LAME peer (or pass --no-peers)"
    need flac "for the flac peer (or pass --no-peers)"
  fi
  local all_styles="standard edm hiphop classical podcast lofi house_basic dry_vocal"
  local s f t
  [ "$styles" = all ] && styles=${all_styles// /,}
  IFS=, read -r -a style_list <<< "$styles"
  IFS=, read -r -a format_list <<< "$formats"
  IFS=, read -r -a track_list <<< "$tracks"
  for s in "${style_list[@]}"; do
    [[ " $all_styles " == *" $s "* ]] || die "unknown style '$s' (all, or some of: $all_styles)"
  done
  for f in "${format_list[@]}"; do
    format_args "$f" > /dev/null || die "unknown format '$f' (wav16, wav24, flac16, flac24, mp3)"
  done
  if [ "${#style_list[@]}" -eq 0 ] || [ "${#format_list[@]}" -eq 0 ] || [ "${#track_list[@]}" -eq 0 ]; then
    die "--styles, --formats and --tracks need at least one entry each"
  fi

  # Every track is found before anything runs: a missing one is a message, not half a table.
  local fetch="run: bash scripts/fetch-test-music.sh (or set MAGIC_MASTER_TEST_MUSIC_DIR, or pass --music-dir DIR)"
  [ -d "$music_dir" ] || die "no music directory $music_dir; $fetch"
  local sources=() matches
  for t in "${track_list[@]}"; do
    if [ -f "$music_dir/$t" ]; then
      sources+=("$music_dir/$t")
    elif [ -f "$music_dir/$t.ogg" ]; then
      sources+=("$music_dir/$t.ogg")
    else
      mapfile -t matches < <(compgen -G "$music_dir/*$t*.ogg" || true)
      [ "${#matches[@]}" -gt 0 ] || die "track '$t': no *$t*.ogg in $music_dir; $fetch"
      [ "${#matches[@]}" -eq 1 ] || die "track '$t' matches ${#matches[@]} files in $music_dir: be more specific"
      sources+=("${matches[0]}")
    fi
  done

  cargo build --release -q -p magic-master-worker
  cargo build --release -q -p mastering --features testutil --example measure_file
  measure_file="$root/target/release/examples/measure_file"

  mdir="$out_dir/music"
  mkdir -p "$mdir"
  rows="$mdir/rows.tsv"
  : > "$rows"
  local total=$((${#sources[@]} * ${#style_list[@]} * ${#format_list[@]})) n=0
  local src name wav ext fmt_opts target ceiling
  for src in "${sources[@]}"; do
    name=$(basename "${src%.*}")
    wav="$mdir/$name.wav"
    if [ ! -f "$wav" ] || [ "$src" -nt "$wav" ]; then
      echo "decoding $src to 16-bit WAV once (not timed)" >&2
      ffmpeg -hide_banner -nostats -loglevel error -y -i "$src" -c:a pcm_s16le "$wav.part.wav" \
        || die "ffmpeg could not decode $src"
      mv "$wav.part.wav" "$wav"
    fi
    measure "$wav"
    seconds=$measured_seconds
    rate=$measured_rate
    walls="" cpu_min="" rss_kb=""
    row input "$name" "(input)" wav16 "" ""

    # One untimed master first, so the first timed row is not measured cold (the binary and the
    # WAV not yet in the page cache): on 2026-12-07 the first row (standard wav16) read 129x in
    # the table and 183x when run again alone.
    echo "warming up (one untimed master)" >&2
    pin "$worker" master "$wav" -o "$mdir/warmup.wav" --style "${style_list[0]}" > /dev/null \
      || die "the warm-up master of $wav failed"
    rm -f "$mdir/warmup.wav"

    for s in "${style_list[@]}"; do
      for f in "${format_list[@]}"; do
        n=$((n + 1))
        read -r -a fmt_opts <<< "$(format_args "$f")"
        ext=${fmt_opts[-1]}
        unset 'fmt_opts[-1]'
        echo "[$n/$total] $name $s $f" >&2
        timed_runs "$worker" master "$wav" -o "$mdir/master.$ext" --style "$s" "${fmt_opts[@]}" --json
        read -r target ceiling < <(python3 -c \
          'import json, sys; r = json.load(open(sys.argv[1])); print(r["target_lufs"], r["true_peak_db"])' \
          "$mdir/stdout_1") || die "no target in the worker's JSON report"
        measure "$mdir/master.$ext"
        row chain "$name" "$s" "$f" "$target" "$ceiling"
      done
    done

    [ "$peers" -eq 1 ] || continue
    echo "peers on $name: ffmpeg loudnorm two-pass, lame, flac" >&2
    loudnorm_runs "$wav"
    measure "$mdir/loudnorm.wav"
    row peer "$name" "ffmpeg loudnorm 2-pass" wav16 -14 -1
    timed_runs lame --silent -b 320 "$wav" "$mdir/lame.mp3"
    measure "$mdir/lame.mp3"
    row peer "$name" "lame -b 320" mp3 "" ""
    timed_runs lame --silent -b 320 -q "$lame_quality" "$wav" "$mdir/lame.mp3"
    measure "$mdir/lame.mp3"
    row peer "$name" "lame -b 320 -q $lame_quality" mp3 "" ""
    timed_runs flac -5 --silent -f -o "$mdir/flac.flac" "$wav"
    measure "$mdir/flac.flac"
    row peer "$name" "flac -5" flac16 "" ""
  done

  python3 "$root/scripts/bench_table.py" "$rows" "$runs" "$core" "$markdown" "$lame_quality" \
    "bash scripts/bench.sh $command_line"
}

# ffmpeg loudnorm two-pass (the standard style's −14 LUFS, −1 dBTP, LRA 11; linear, as a
# mastering peer would use it) to 16-bit WAV at the input's rate, both passes timed: sets the
# same variables as timed_runs, each run's time being the sum of its two passes.
loudnorm_runs() {
  local wav=$1 i start end kb1 kb2 user1 user2 sys1 sys2 cpu params
  local filter="loudnorm=I=-14:TP=-1:LRA=11"
  walls=""
  cpu_min=""
  rss_kb=0
  for ((i = 1; i <= runs; i++)); do
    start=$(date +%s.%N)
    pin /usr/bin/time -f "%U %S %M" -o "$mdir/time" ffmpeg -hide_banner -nostats -threads 1 \
      -i "$wav" -af "$filter:print_format=json" -f null - 2> "$mdir/loudnorm1.txt" \
      || die "ffmpeg loudnorm (first pass) failed: $(tail -3 "$mdir/loudnorm1.txt")"
    read -r user1 sys1 kb1 < "$mdir/time"
    params=$(python3 - "$mdir/loudnorm1.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
m = json.loads(text[text.rindex("{"):text.rindex("}") + 1])
print(f"measured_I={m['input_i']}:measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}"
      f":measured_thresh={m['input_thresh']}:offset={m['target_offset']}")
PY
    ) || die "no loudnorm measurement in the first pass's output"
    pin /usr/bin/time -f "%U %S %M" -o "$mdir/time" ffmpeg -hide_banner -nostats -loglevel error \
      -threads 1 -y -i "$wav" -af "$filter:$params:linear=true" -ar "$rate" \
      -c:a pcm_s16le "$mdir/loudnorm.wav" || die "ffmpeg loudnorm (second pass) failed"
    read -r user2 sys2 kb2 < "$mdir/time"
    end=$(date +%s.%N)
    walls+="$(echo "$end - $start" | bc -l) "
    cpu=$(echo "$user1 + $sys1 + $user2 + $sys2" | bc -l)
    [ "$kb1" -gt "$rss_kb" ] && rss_kb=$kb1
    [ "$kb2" -gt "$rss_kb" ] && rss_kb=$kb2
    if [ -z "$cpu_min" ] || [ "$(echo "$cpu < $cpu_min" | bc -l)" -eq 1 ]; then
      cpu_min=$cpu
    fi
  done
}

if [ "$music" -eq 1 ]; then
  music_bench
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Synthetic (the default)
# ---------------------------------------------------------------------------------------------

cargo build --release -q -p magic-master-worker -p mastering --examples --bins
make_track="$root/target/release/examples/make_test_track"

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
