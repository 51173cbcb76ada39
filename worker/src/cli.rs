//! The `magic-master-worker` command line: `run` (serve the queue, the default), `master`
//! and `analyze` (one local file, no server).

use crate::bootstrap::WorkerSet;
use crate::serve::shutdown_signal;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use mastering::{MasterParams, OutputFormat, Style};
use shared::Settings;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tokio_util::sync::CancellationToken;

/// Magic Master worker: masters queued jobs, or one local file.
#[derive(Debug, Parser)]
#[command(name = "magic-master-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the job queue (the default). Configured by MAGIC_MASTER_* variables.
    Run(RunArgs),
    /// Master one local file and print before/after measurements.
    Master(MasterArgs),
    /// Measure one local file (loudness, true peak, LRA, format facts).
    Analyze(AnalyzeArgs),
}

/// Options of `run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Stable worker name (default: MAGIC_MASTER_WORKER_NAME, else <hostname>-<pid>).
    #[arg(long)]
    pub name: Option<String>,
    /// Jobs run at once (default: MAGIC_MASTER_WORKER_CONCURRENCY).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

/// Options of `master`.
#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Input audio file.
    pub input: PathBuf,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Style: standard, edm, hiphop, classical, podcast, lofi, house_basic, dry_vocal.
    #[arg(long, default_value = "standard")]
    pub style: String,
    /// Loudness target in LUFS, -30 … -5 (default: the style's target).
    #[arg(long, allow_hyphen_values = true)]
    pub target_lufs: Option<f64>,
    /// True-peak ceiling in dBTP, -9 … 0 (default -1).
    #[arg(long, allow_hyphen_values = true)]
    pub true_peak_db: Option<f64>,
    /// Output format: wav, flac or mp3 (default: from the output's extension, else wav).
    #[arg(long)]
    pub format: Option<String>,
    /// Bits per sample for wav/flac: 16 or 24.
    #[arg(long)]
    pub bit_depth: Option<u16>,
    /// MP3 bit rate: 128, 192, 256 or 320.
    #[arg(long)]
    pub mp3_bitrate: Option<u32>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Options of `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input audio file.
    pub input: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => serve(args),
        Command::Master(args) => master(&args),
        Command::Analyze(args) => analyze(&args),
    }
}

fn serve(args: RunArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::init_tracing(settings.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let stores = crate::open_stores(&settings).await?;
        let workers = WorkerSet::standalone(&settings, args.name, args.concurrency);
        let alerts = shared::alerts::Alerts::start(&settings);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: finishing running jobs");
            token.cancel();
        });
        for worker in workers.spawn(&settings, &stores, &alerts, &shutdown) {
            let _ = worker.await;
        }
        stores.queue.close().await;
        Ok(())
    })
}

fn output_format(args: &MasterArgs) -> anyhow::Result<OutputFormat> {
    let from_ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| matches!(e.as_str(), "wav" | "flac" | "mp3"));
    let name = args
        .format
        .clone()
        .or(from_ext)
        .unwrap_or_else(|| "wav".to_owned());
    Ok(OutputFormat::from_parts(
        &name,
        args.bit_depth,
        args.mp3_bitrate,
    )?)
}

fn check_input(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("input file not found: {}", path.display());
    }
    Ok(())
}

fn master(args: &MasterArgs) -> anyhow::Result<()> {
    let style = Style::parse(&args.style)?;
    let format = output_format(args)?;
    let params = MasterParams::new(style, args.target_lufs, args.true_peak_db, format)?;
    check_input(&args.input)?;
    let cancel = AtomicBool::new(false);
    let quiet = args.json;
    let mut last_stage = None;
    let mut on_progress = |p: mastering::Progress| {
        if !quiet && last_stage != Some(p.stage) {
            eprintln!(
                "{:>3}%  {}",
                (p.fraction * 100.0).round(),
                p.stage.message()
            );
            last_stage = Some(p.stage);
        }
    };
    let report = mastering::master_file(
        &args.input,
        &args.output,
        &params,
        &mut on_progress,
        &cancel,
    )
    .with_context(|| format!("mastering {}", args.input.display()))?;
    let measured = shared::measurements::JobMeasurements::from(&report);
    if args.json {
        let out = serde_json::json!({
            "input": args.input,
            "output": args.output,
            "style": style.name(),
            "target_lufs": params.target_lufs,
            "true_peak_db": params.true_peak_db,
            "format": format.name(),
            "before": measured.before,
            "after": measured.after,
            "stage_seconds": report.stage_seconds,
        });
        println!("{out}");
    } else {
        println!("input:   {}", args.input.display());
        println!("output:  {} ({})", args.output.display(), format.name());
        println!(
            "target:  {:.1} LUFS, ceiling {:.1} dBTP, style {}",
            params.target_lufs, params.true_peak_db, style
        );
        println!(
            "before:  {:.2} LUFS, true peak {:.2} dBTP, LRA {:.1} LU",
            report.before.lufs, report.before.true_peak_db, report.before.lra
        );
        println!(
            "after:   {:.2} LUFS, true peak {:.2} dBTP, LRA {:.1} LU",
            report.after.lufs, report.after.true_peak_db, report.after.lra
        );
    }
    Ok(())
}

fn analyze(args: &AnalyzeArgs) -> anyhow::Result<()> {
    check_input(&args.input)?;
    let a = mastering::analyze_file(&args.input)
        .with_context(|| format!("analysing {}", args.input.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&a)?);
    } else {
        println!("file:          {}", args.input.display());
        println!(
            "format:        {} Hz, {} channel(s), {:.2} s",
            a.sample_rate, a.channels, a.duration_sec
        );
        println!("loudness:      {:.2} LUFS", a.lufs);
        println!("true peak:     {:.2} dBTP", a.true_peak_db);
        println!("sample peak:   {:.2} dBFS", a.sample_peak_db);
        println!("LRA:           {:.1} LU", a.lra);
    }
    Ok(())
}
