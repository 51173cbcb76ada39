//! Where the true-peak ceiling stands on real music (issue 11): a measurement, not a test.
//!
//! Masters frozen-bubble tracks (`scripts/fetch-test-music.sh`) in styles × output formats
//! (wav16, wav24, flac16, mp3 320) and prints, per master, the integrated loudness against
//! the target and the true peak by four judges: the chain's own report (its 4× meter on the
//! samples it wrote, or on the decoded MP3), the chain's 4× meter on the decoded file, the
//! reference meter (`testutil::reference_peak`: 8×, 128-tap Kaiser sinc per phase; the
//! refined reading and the 8× grid) and ffmpeg's `ebur128=peak=true` (three decimals, from
//! its frame metadata), the share of frames with a sample within 1 dB and 2 dB of the ceiling
//! (what a verify-candidates-at-high-resolution design would re-measure), then the worst
//! case per judge.
//!
//! ```sh
//! cargo run --release -p mastering --features testutil --example ceiling_report -- \
//!     [--dir DIR] [--all | --styles standard,edm] [--tracks 2p,1p]
//! ```
//!
//! Default (short): `frozen-mainzik-2p.ogg`, styles standard and edm. `--all`: every
//! `frozen-mainzik-*.ogg` track in every style. `DIR` defaults to
//! `$MAGIC_MASTER_TEST_MUSIC_DIR`, else `test-assets/frozen-bubble` of the workspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use mastering::meter::{FastMeter, MeterMode};
use mastering::testutil::decode_all;
use mastering::testutil::reference_peak::reference_true_peak;
use mastering::{MasterParams, OutputFormat, Style, master_file};

/// ffmpeg's `ebur128=peak=true` reading: (integrated LUFS, true peak dBTP), both from the
/// filter's frame metadata (I with three decimals; the per-channel running true peaks,
/// linear with three decimals, i.e. ±0.005 dB near the ceiling).
fn ffmpeg_ebur128(path: &Path, meta: &Path) -> (f64, f64) {
    let filter = format!(
        "ebur128=peak=true:metadata=1,ametadata=mode=print:file={}",
        meta.display()
    );
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-y", "-i"])
        .arg(path)
        .args(["-af", &filter, "-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed");
    assert!(out.status.success(), "ffmpeg failed on {path:?}");
    let text = std::fs::read_to_string(meta).expect("ffmpeg metadata");
    let mut integrated = f64::NAN;
    let mut peak = 0.0f64;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("lavfi.r128.I=") {
            integrated = v.parse().unwrap_or(f64::NAN);
        } else if let Some(v) = line
            .strip_prefix("lavfi.r128.true_peaks_ch")
            .and_then(|rest| rest.split_once('='))
        {
            peak = peak.max(v.1.parse().unwrap_or(0.0));
        }
    }
    (integrated, 20.0 * peak.max(1e-20).log10())
}

fn format_name(f: OutputFormat) -> String {
    match f {
        OutputFormat::Wav { bit_depth } => format!("wav{bit_depth}"),
        OutputFormat::Flac { bit_depth } => format!("flac{bit_depth}"),
        OutputFormat::Mp3 { bitrate_kbps } => format!("mp3-{bitrate_kbps}"),
    }
}

#[derive(Default)]
struct Worst {
    value: f64,
    what: String,
}

impl Worst {
    fn new() -> Worst {
        Worst {
            value: f64::NEG_INFINITY,
            what: String::new(),
        }
    }
    fn see(&mut self, value: f64, what: &str) {
        if value > self.value {
            self.value = value;
            self.what = what.to_string();
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> =
        std::env::var_os("MAGIC_MASTER_TEST_MUSIC_DIR").map(PathBuf::from);
    let mut all = false;
    let mut styles: Vec<Style> = vec![Style::Standard, Style::Edm];
    let mut tracks: Vec<String> = vec!["2p".into()];
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--all" => all = true,
            "--styles" => {
                styles = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| Style::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
                    .collect()
            }
            "--tracks" => {
                tracks = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            other => {
                panic!("unknown argument {other} (--dir DIR, --all, --styles a,b, --tracks a,b)")
            }
        }
    }
    let dir = dir.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-assets/frozen-bubble")
    });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-test-music.sh)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("frozen-mainzik-")
                    && n.ends_with(".ogg")
                    && (all || tracks.iter().any(|t| n.contains(t.as_str())))
            })
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no frozen-mainzik-*.ogg in {}",
        dir.display()
    );
    if all {
        styles = Style::ALL.to_vec();
    }
    let formats = [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ];
    let tmp = tempfile::tempdir().expect("temp dir");
    let meta = tmp.path().join("ffmpeg-meta.txt");
    println!(
        "{:<22} {:<11} {:<7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6}",
        "track",
        "style",
        "format",
        "target",
        "I ours",
        "I ffm",
        "report",
        "4x dec",
        "ref",
        "ref 8x",
        "ffmpeg",
        "c-1dB%",
        "c-2dB%",
        "secs"
    );
    println!("{:<52}   (true peak, dBTP; ceiling -1.0)", "");
    let mut worst_report = Worst::new();
    let mut worst_4x = Worst::new();
    let mut worst_ref = Worst::new();
    let mut worst_grid = Worst::new();
    let mut worst_ffmpeg = Worst::new();
    let mut worst_lu = Worst::new();
    let (mut over_ref, mut over_ffmpeg, mut over_report, mut count) = (0, 0, 0, 0);
    for input in &files {
        let track = input
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for &style in &styles {
            for format in formats {
                let params = MasterParams::new(style, None, Some(-1.0), format).expect("params");
                let out = tmp.path().join(format!("master.{}", format.extension()));
                let t = Instant::now();
                let report =
                    master_file(input, &out, &params, &mut |_| {}, &AtomicBool::new(false))
                        .unwrap_or_else(|e| panic!("{track} {style:?} {format:?}: {e}"));
                let secs = t.elapsed().as_secs_f64();
                let (planes, rate) = decode_all(&out);
                let mut fast = FastMeter::new(planes.len(), rate, MeterMode::INTEGRATED_TRUE_PEAK)
                    .expect("meter");
                fast.add_block(&planes).expect("meter");
                let reference = reference_true_peak(&planes);
                let (ff_i, ff_tp) = ffmpeg_ebur128(&out, &meta);
                let what = format!("{track} {} {}", style.name(), format_name(format));
                let ceiling = params.true_peak_db;
                let candidates = |below_db: f64| -> f64 {
                    let level = 10f64.powf((params.true_peak_db - below_db) / 20.0) as f32;
                    let frames = planes[0].len().max(1);
                    let hot = (0..planes[0].len())
                        .filter(|&i| planes.iter().any(|p| p[i].abs() >= level))
                        .count();
                    100.0 * hot as f64 / frames as f64
                };
                println!(
                    "{:<22} {:<11} {:<7} {:>7.2} {:>7.3} {:>7.3} | {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} | {:>6.2} {:>6.2} {:>6.1}",
                    track,
                    style.name(),
                    format_name(format),
                    params.target_lufs,
                    fast.integrated(),
                    ff_i,
                    report.after.true_peak_db,
                    fast.true_peak_db(),
                    reference.dbtp(),
                    reference.grid_db(),
                    ff_tp,
                    candidates(1.0),
                    candidates(2.0),
                    secs
                );
                worst_report.see(report.after.true_peak_db, &what);
                worst_4x.see(fast.true_peak_db(), &what);
                worst_ref.see(reference.dbtp(), &what);
                worst_grid.see(reference.grid_db(), &what);
                worst_ffmpeg.see(ff_tp, &what);
                worst_lu.see((ff_i - params.target_lufs).abs(), &what);
                count += 1;
                over_ref += usize::from(reference.dbtp() > ceiling);
                over_ffmpeg += usize::from(ff_tp > ceiling);
                over_report += usize::from(report.after.true_peak_db > ceiling);
            }
        }
    }
    println!("\n{count} masters; ceiling -1.0 dBTP; worst case per judge:");
    for (name, w, over) in [
        ("chain report (4x)", &worst_report, Some(over_report)),
        ("chain 4x, decoded", &worst_4x, None),
        ("reference (refined)", &worst_ref, Some(over_ref)),
        ("reference 8x grid", &worst_grid, None),
        ("ffmpeg ebur128", &worst_ffmpeg, Some(over_ffmpeg)),
    ] {
        let over = over.map_or(String::new(), |n| {
            format!(", {n} of {count} over the ceiling")
        });
        println!("  {name:<20} {:>7.3} dBTP  ({}){over}", w.value, w.what);
    }
    println!(
        "  |I - target| by ffmpeg: worst {:.3} LU ({})",
        worst_lu.value, worst_lu.what
    );
}
