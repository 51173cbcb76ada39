//! The **interim** chain: gain only, no EQ, dynamics or limiter.
//!
//! It exists so that the service works end to end while the full chain ([`crate::chain`])
//! is built: decode → measure (integrated loudness, true peak, LRA) → one gain towards the
//! target, lowered if it would push the true peak above the ceiling (minus the format's
//! margin) → TPDF dither → encode → decode the output and measure it. Because nothing
//! limits, a dynamic input whose true peak is close to full scale ends *below* the target:
//! the report's `after` says by how much. Memory: two streaming decode passes plus one over
//! the output, never the whole track.

use crate::decode::Decoder;
use crate::encode::create_encoder;
use crate::error::MasterError;
use crate::meter::MeterMode;
use crate::params::{MasterParams, OutputFormat};
use crate::progress::{Progress, Stage};
use crate::report::MasterReport;
use crate::run::{self, Reporter, Span};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Headroom kept below the true-peak ceiling for what the encoder adds, dB: dither is a
/// fraction of an LSB (0.01 dB is ample); MP3's reconstruction overshoots by up to about a
/// decibel on dense material.
pub fn encoder_margin_db(format: OutputFormat) -> f64 {
    match format {
        OutputFormat::Wav { .. } | OutputFormat::Flac { .. } => 0.01,
        OutputFormat::Mp3 { .. } => 1.0,
    }
}

/// Gain, dB, that moves `lufs` to `target` without pushing `true_peak_db` above
/// `ceiling_db` (both measured on the input).
pub fn safe_gain_db(lufs: f64, true_peak_db: f64, target: f64, ceiling_db: f64) -> f64 {
    (target - lufs).min(ceiling_db - true_peak_db)
}

/// Masters with the interim chain (see the module documentation).
pub fn master_file_interim(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<MasterReport, MasterError> {
    let result = run_interim(input, output, params, on_progress, cancel);
    if result.is_err() {
        // Never leave a half-written file behind; it may not exist, which is fine.
        let _ = std::fs::remove_file(output);
    }
    result
}

fn run_interim(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<MasterReport, MasterError> {
    let mut rep = Reporter::new(on_progress, cancel);
    rep.begin(Stage::Analysis, "analysis", 0.0)?;
    let before = run::measure_file(input, MeterMode::FULL, &mut rep, 0.0, 0.35)?;
    run::check_masterable(&before)?;

    let ceiling = params.true_peak_db - encoder_margin_db(params.format);
    let gain_db = safe_gain_db(
        before.loudness.lufs,
        before.loudness.true_peak_db,
        params.target_lufs,
        ceiling,
    );
    let gain = run::db_to_gain(gain_db) as f32;

    rep.begin(Stage::Encode, "encode", 0.35)?;
    let mut decoder = Decoder::open(input)?;
    let mut encoder = create_encoder(
        output,
        params.format,
        decoder.sample_rate(),
        decoder.channels(),
    )?;
    let span = Span {
        start: 0.35,
        end: 0.85,
        total_frames: before.frames,
    };
    let mut block = Vec::new();
    let mut done = 0u64;
    loop {
        let n = decoder.read_block(&mut block)?;
        if n == 0 {
            break;
        }
        run::apply_gain(&mut block, gain);
        encoder.write(&block)?;
        done += n as u64;
        rep.advance(span.at(done))?;
    }
    encoder.finish()?;

    rep.begin(Stage::Analysis, "measure_output", 0.85)?;
    let after = run::measure_file(output, MeterMode::FULL, &mut rep, 0.85, 1.0)?;
    let timings = rep.finish();
    Ok(MasterReport {
        before: before.loudness,
        after: after.loudness,
        duration_sec: after.seconds(),
        sample_rate: after.info.sample_rate,
        channels: after.info.channels,
        stage_seconds: timings,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
