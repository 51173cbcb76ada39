#!/usr/bin/env python3
"""The tables of `scripts/bench.sh --music`: reads the rows the script collected and prints one
aligned table with a summary (and, with --markdown, the same as Markdown for the README).

Usage (by bench.sh): bench_table.py ROWS.tsv RUNS CORE MARKDOWN LAME_QUALITY COMMAND
MARKDOWN: 0 (the aligned table only), 1 (also Markdown), readme (also write the Markdown into
README.md between its two markers).
Each row, tab-separated: kind (input|chain|peer), track, style or peer, format, seconds of
audio, target LUFS, ceiling dBTP, wall seconds of every run (space-separated), lowest CPU
seconds (user + system), highest peak RSS KB, and "I_chain TP_ref TP_grid I_ffmpeg TP_ffmpeg".

Two real-time factors: by the median wall time (what the issue's goals are stated in) and by
the lowest CPU time. Every run is pinned to one core; when other work shares that core the wall
time counts it and the CPU time does not, so on a busy machine the CPU figure is the steadier
one, but it is still slowed by the other work (shared caches, memory bandwidth, a busy sibling
hyperthread): on the shared 2-core VM at load 10, the 3-minute synthetic standard → wav16 took
0.70–0.84 s CPU against 0.43 s wall when the host was quieter. On a quiet machine the two agree.
Speed ratios to the peers (measured in the same run, so equally slowed) and the goals are judged
by CPU time.
"""

import os
import platform
import subprocess
import sys
import textwrap
import time

LU_TOLERANCE = 0.1
# Issue 11's speed goals on one core: WAV ≥ 300× and FLAC ≥ 200× real time in every style;
# MP3 within 10 % of LAME's own encoding time for the same audio.
RTF_GOAL = {"wav16": 300, "wav24": 300, "flac16": 200, "flac24": 200}
MP3_GOAL = 1.10


def load(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 11:
            sys.exit(f"bench_table: malformed row ({len(f)} fields): {line!r}")
        kind, track, label, fmt, secs, target, ceiling, walls, cpu, rss, meas = f
        i_chain, tp_ref, tp_grid, i_ff, tp_ff = (float(x) for x in meas.split())
        walls = sorted(float(w) for w in walls.split())
        wall = walls[len(walls) // 2] if walls else None
        rows.append({
            "kind": kind, "track": track, "label": label, "fmt": fmt, "secs": float(secs),
            "target": float(target) if target else None,
            "ceiling": float(ceiling) if ceiling else None,
            "walls": walls, "wall": wall, "cpu": float(cpu) if cpu else None,
            "rss_mb": int(rss) / 1024 if rss else None,
            "i_chain": i_chain, "tp_ref": tp_ref, "tp_grid": tp_grid,
            "i_ff": i_ff, "tp_ff": tp_ff,
        })
    return rows


def check(r):
    """PASS when both meters keep the ceiling and both read the target within 0.1 LU."""
    if r["target"] is None:
        return "-"
    bad = []
    if max(r["tp_ref"], r["tp_ff"]) > r["ceiling"]:
        bad.append("TP")
    if max(abs(r["i_chain"] - r["target"]), abs(r["i_ff"] - r["target"])) > LU_TOLERANCE:
        bad.append("LU")
    return "PASS" if not bad else "FAIL " + ",".join(bad)


def peer_of(rows, r, lame_quality):
    """The peer a chain row is compared with: loudnorm for WAV, flac -5 for FLAC, LAME at the
    chain's quality for MP3 (same audio, same core, same run)."""
    name = {"wav": "ffmpeg loudnorm 2-pass", "fla": "flac -5",
            "mp3": f"lame -b 320 -q {lame_quality}"}[r["fmt"][:3]]
    for p in rows:
        if p["kind"] == "peer" and p["track"] == r["track"] and p["label"] == name:
            return p
    return None


def short_peer(label):
    return {"ffmpeg loudnorm 2-pass": "loudnorm"}.get(label, label.split(" -")[0])


def fmt_num(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    path, runs, core, markdown, lame_quality, command = sys.argv[1:7]
    rows = load(path)
    tracks = list(dict.fromkeys(r["track"] for r in rows))
    for r in rows:
        r["rtf"] = r["secs"] / r["wall"] if r["wall"] else None
        r["rtf_cpu"] = r["secs"] / r["cpu"] if r["cpu"] else None
        r["check"] = check(r)
        p = peer_of(rows, r, lame_quality) if r["kind"] == "chain" else None
        r["vs"] = (f"{r['cpu'] / p['cpu']:.2f}x {short_peer(p['label'])}" if p else "-")

    # The aligned table.
    head = ["track", "style / peer", "format", "RTF", "RTF cpu", "wall s", "cpu s", "RSS MB",
            "target", "I chain", "I ffmpeg", "TP ref", "TP ffmpeg", "check", "cpu / peer"]
    body = []
    for r in rows:
        body.append([
            r["track"], r["label"], r["fmt"], fmt_num(r["rtf"], ".0f"),
            fmt_num(r["rtf_cpu"], ".0f"), fmt_num(r["wall"], ".3f"), fmt_num(r["cpu"], ".2f"),
            fmt_num(r["rss_mb"], ".1f"),
            fmt_num(r["target"], ".1f"), f"{r['i_chain']:.3f}", f"{r['i_ff']:.3f}",
            f"{r['tp_ref']:.3f}", f"{r['tp_ff']:.3f}", r["check"], r["vs"],
        ])
    left = {0, 1, 2, 13, 14}
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    secs = ", ".join(f"{t} {next(r['secs'] for r in rows if r['track'] == t):.1f} s"
                     for t in tracks)
    print(f"== Real music ({secs}), decoded once to 16-bit WAV by ffmpeg (not timed), every run"
          f" pinned to core {core}; RTF = duration / median wall of {runs} run(s); RTF cpu ="
          " duration / the lowest CPU time (user + system; on a loaded machine both read low);"
          " loudness in LUFS, true peak in dBTP (TP ref: 8x reference"
          " meter, refined; TP ffmpeg: ebur128=peak=true, +-0.005 dB); check: both meters"
          f" <= the ceiling and within {LU_TOLERANCE} LU of the target")
    print(line(head))
    for b in body:
        print(line(b))

    summary = summarize(rows, lame_quality)
    print()
    for s in summary:
        print(s.replace("`", "").replace("**", ""))

    if markdown in ("1", "readme"):
        section = markdown_section(path, rows, tracks, runs, core, command, summary)
        print()
        print(section)
        if markdown == "readme":
            update_readme(section)


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
# (No "--" inside: HTML comments may not contain it.)
BEGIN = "<!-- music benchmark table (scripts/bench.sh): begin -->"
END = "<!-- music benchmark table (scripts/bench.sh): end -->"


def update_readme(section):
    """Replaces what stands between the two markers of the README's speed section."""
    text = open(README).read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit(f"bench_table: README.md needs one '{BEGIN}' line before one '{END}' line")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(README, "w") as f:
        f.write(f"{head}{BEGIN}\n{section}\n{END}{tail}")
    print(f"(README.md: the table between the markers replaced)", file=sys.stderr)


def summarize(rows, lame_quality):
    chain = [r for r in rows if r["kind"] == "chain"]
    out = []
    if not chain:
        return out

    def what(r):
        return f"{r['track']} {r['label']} {r['fmt']}"

    worst_ref = max(chain, key=lambda r: r["tp_ref"])
    worst_ff = max(chain, key=lambda r: r["tp_ff"])
    worst_lu = max(chain, key=lambda r: max(abs(r["i_chain"] - r["target"]),
                                            abs(r["i_ff"] - r["target"])))
    lu = max(abs(worst_lu["i_chain"] - worst_lu["target"]),
             abs(worst_lu["i_ff"] - worst_lu["target"]))
    passed = sum(r["check"] == "PASS" for r in chain)
    out.append(f"Ceiling and loudness: {passed} of {len(chain)} masters PASS. Worst true peak by"
               f" the reference meter {worst_ref['tp_ref']:.3f} dBTP ({what(worst_ref)}), by"
               f" ffmpeg {worst_ff['tp_ff']:.3f} dBTP ({what(worst_ff)}) (ceiling"
               f" {worst_ref['ceiling']:.1f}); worst |I - target| {lu:.3f} LU ({what(worst_lu)}).")
    goals = []
    for fmt in dict.fromkeys(r["fmt"] for r in chain):
        mine = [r for r in chain if r["fmt"] == fmt]
        slow = min(mine, key=lambda r: r["rtf_cpu"])
        fast = max(mine, key=lambda r: r["rtf_cpu"])
        text = (f"`{fmt}` {slow['rtf_cpu']:.0f}x ({slow['label']}; {slow['rtf']:.0f}x by wall)"
                f" to {fast['rtf_cpu']:.0f}x ({fast['label']}; {fast['rtf']:.0f}x by wall)")
        if fmt in RTF_GOAL:
            met = "met" if slow["rtf_cpu"] >= RTF_GOAL[fmt] else "**not met**"
            text += f", goal {RTF_GOAL[fmt]}x {met}"
        elif fmt == "mp3":
            ratios = [(r["cpu"] / p["cpu"], r) for r in mine
                      if (p := peer_of(rows, r, lame_quality))]
            if ratios:
                worst, r = max(ratios, key=lambda x: x[0])
                met = "met" if worst <= MP3_GOAL else "**not met**"
                text += (f", at most {worst:.2f}x the time of `lame -b 320 -q {lame_quality}`"
                         f" ({r['label']}), goal {MP3_GOAL:.2f}x {met}")
        goals.append(text)
    out.append("Real-time factor by CPU time per format, slowest to fastest style: "
               + "; ".join(goals) + ".")
    peers = [r for r in rows if r["kind"] == "peer"]
    if peers:
        std = {r["track"]: r for r in chain if r["label"] == "standard" and r["fmt"] == "wav16"}
        texts = []
        for p in peers:
            t = f"`{p['label']}` {p['cpu']:.2f} s CPU ({p['rtf_cpu']:.0f}x)"
            if p["label"].startswith("ffmpeg loudnorm") and p["track"] in std:
                t += (f", {p['cpu'] / std[p['track']]['cpu']:.1f}x the time of standard"
                      f" -> wav16; its output: {p['tp_ref']:.2f} dBTP by the reference,"
                      f" {p['i_ff']:.2f} LUFS")
            texts.append(t)
        out.append("Peers (same audio, same core, same run): " + "; ".join(texts) + ".")
    return out


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        # Changes to what is measured (not to the README this writes or to the scripts).
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "mastering", "worker", "shared", "Cargo.toml", "Cargo.lock"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown commit"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return cpu, os.cpu_count(), commit, load


def markdown_section(rows_path, rows, tracks, runs, core, command, summary):
    cpu, cores, commit, load = machine()
    # The time of the last row written: the end of the measurements.
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(rows_path)))
    chain = [r for r in rows if r["kind"] == "chain"]
    intro = (f"Measured {date} at commit {commit} on {cpu}, {cores} cores shared with other"
          f" work (load average {load} at the end), every run pinned to core {core}:"
          f" `{command}`. Each track decoded once to 16-bit WAV by ffmpeg (not timed, so"
          f" Vorbis decoding does not count); RTF = track duration / median wall time of"
          f" {runs} run(s), decode to encode; RTF cpu = duration / the lowest CPU time (user"
          f" + system), which leaves out the time the core gave to other work but is still"
          f" slowed by it (caches, memory, the sibling core): on a loaded machine both figures"
          f" read low, and the goals below are judged by CPU time in this run.")
    md = [textwrap.fill(intro, 100, break_on_hyphens=False), ""]
    formats = list(dict.fromkeys(r["fmt"] for r in chain))
    for t in tracks:
        mine = [r for r in chain if r["track"] == t]
        if not mine:
            continue
        secs = mine[0]["secs"]
        md.append(f"Real-time factor by wall time / by CPU time, `{t}` ({secs:.1f} s):")
        md.append("")
        md.append("| style | " + " | ".join(formats) + " |")
        md.append("|---|" + "---:|" * len(formats))
        for style in dict.fromkeys(r["label"] for r in mine):
            cells = []
            for f in formats:
                r = next((r for r in mine if r["label"] == style and r["fmt"] == f), None)
                cells.append("-" if r is None else f"{r['rtf']:.0f}× / {r['rtf_cpu']:.0f}×"
                             + ("" if r["check"] == "PASS" else " ✗"))
            md.append(f"| {style} | " + " | ".join(cells) + " |")
        md.append("")
    for s in summary:
        md.append(textwrap.fill(s, 100, initial_indent="- ", subsequent_indent="  ",
                                break_on_hyphens=False))
    md.append("")
    md.append("✗: the master failed the ceiling or the ±0.1 LU check.")
    md.append("")
    md.append("<details><summary>Every row (peak RSS, loudness and true peak by both"
              " meters)</summary>")
    md.append("")
    multi = len(tracks) > 1
    head = (["track"] if multi else []) + [
        "style / peer", "format", "RTF", "RTF cpu", "wall s", "cpu s", "peak RSS MB",
        "target LUFS", "I chain", "I ffmpeg", "TP reference", "TP ffmpeg", "check",
        "cpu / peer"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * (3 if multi else 2) + "---:|" * 10 + "---|---|")
    for r in rows:
        cells = ([r["track"]] if multi else []) + [
            r["label"], r["fmt"], fmt_num(r["rtf"], ".0f"), fmt_num(r["rtf_cpu"], ".0f"),
            fmt_num(r["wall"], ".3f"), fmt_num(r["cpu"], ".2f"), fmt_num(r["rss_mb"], ".1f"), fmt_num(r["target"], ".1f"), f"{r['i_chain']:.3f}",
            f"{r['i_ff']:.3f}", f"{r['tp_ref']:.3f}", f"{r['tp_ff']:.3f}", r["check"], r["vs"]]
        md.append("| " + " | ".join(cells) + " |")
    md.append("")
    md.append("</details>")
    return "\n".join(md)


if __name__ == "__main__":
    main()
