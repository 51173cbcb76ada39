//! The full mastering chain: orchestration of decode, analysis, the DSP stages, the
//! loudness-correction loop, dither, encode and the final measurement.
//!
//! ```text
//! pass A  decode → [pre-analysis stages: DC removal] → analysis ─┐ track store
//! pass B  track → [processing stages: EQ, dynamics, width] → the track, rewritten (pre-gain)
//!         → the loudness model as it is written: the limiter's peak detector + the meter's
//!         K-weighting → per-tile peaks and energies, and the processed track's loudness
//!         (the only full detection of the processed track). It detects exactly only the
//!         tiles that can reach the limiter's threshold at the gain the input's loudness
//!         asks for plus PASS_B_REACH_DB (DEEP_REACH_DB when the input needs heavy
//!         limiting: HEAVY_LIMITING_DB); the others keep an upper bound, and are detected
//!         again from the track's store, window by window, when the search (or the final
//!         pass) goes deeper (`LoudnessModel::refine`). Metered instead, as before, when
//!         pass A shows the limiter will stay idle or the factory's limiter has no model
//! model   only when pass B metered a track the limiter works on: track → the same, by a
//!         read of its own. g solves Î(g) = target on the model, drive level by drive
//!         level: no limiter pass (see `loudness_model`)
//! loop    only where the model cannot answer (the saturator's drive level, a factory
//!         whose limiter has no model): track → gain g → [limiter] → integrated loudness;
//!         g ← secant step until |I − target| ≤ 0.02 LU (at most 6 passes)
//! final   track → gain g → [limiter, skipped when idle] → TPDF dither → encoder → output;
//!         where the model covers g (the limiter's threshold / g ≥ what it detected exactly)
//!         the limiter takes its peaks from the model's tiles × g instead of detecting them
//! verify  measure the output: WAV/FLAC meter the exact samples the encoder wrote, MP3 is
//!         decoded again → BS.1770 meter → the report's `after`; if it misses the target
//!         by more than 0.03 LU or passes the ceiling (MP3 overshoot), correct and re-encode
//!         (a modelled gain: the model's next search aims off by the measured miss);
//!         if the encoder still overshoots, turn the output down after the limiter
//! ```
//!
//! The input is decoded once into a [`TrackStore`]: in memory (one `f32` copy, rewritten in
//! place by pass B) when it fits [`MEMORY_BUDGET_BYTES`], otherwise in disk-backed spill
//! files, so memory stays bounded whatever the length (docs/QUALITY.md §4). The stages come from
//! a [`stages::StageFactory`]: see that module for where the dsp stages plug in.

mod loudness_model;
mod pipeline;
mod spill;
mod stages;
mod store;

pub use loudness_model::{LimiterModel, LoudnessModel, MODEL_BUDGET_BYTES, ModelStats, TilePeaks};
pub use pipeline::{NamedStage, Pipeline};
pub use spill::{SpillBuffer, SpillReader};
pub use stages::{InputAnalysis, MasteringStages, StageFactory};
pub use store::{MEMORY_BUDGET_BYTES, Rewrite, TrackReader, TrackStore};

use crate::analysis::SignalStats;
use crate::decode::Decoder;
use crate::dsp::limiter::TruePeakLimiter;
use crate::dsp::spectrum::OctaveAnalyzer;
use crate::encode::{BlockEncoder, Monitored, create_encoder};
use crate::error::MasterError;
use crate::meter::{FastMeter, MeterMode};
use crate::params::{MasterParams, OutputFormat};
use crate::progress::{Progress, Stage};
use crate::report::{Loudness, MasterReport};
use crate::run::{self, Measured, Reporter, Span};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Frames per block inside the chain.
pub const BLOCK_FRAMES: usize = 4096;
/// Frames per block in the processing pass: one FFT hop of the EQ at 44.1/48 kHz
/// (32768 − 4094 = 28674 frames), rounded down to 7 × 4096.
pub const PROCESSING_BLOCK_FRAMES: usize = 28_672;
/// The loudness loop stops when the output is this close to the target, LU.
pub const LOOP_TOLERANCE_LU: f64 = 0.02;
/// The written file is corrected and encoded again when it misses the target by more than
/// this, LU. Well inside the delivery bound: independent BS.1770 meters read up to about
/// 0.04 LU apart on the same file (pyloudnorm reads 0.04 LU under ffmpeg's ebur128 and ours
/// on music at 44.1 kHz), so the file must be close for every one of them to agree.
pub const ACCEPT_TOLERANCE_LU: f64 = 0.03;
/// What the delivered file must meet (docs/QUALITY.md §2), LU.
pub const DELIVERY_TOLERANCE_LU: f64 = 0.1;
/// Most passes of the loudness-correction loop.
pub const MAX_LOOP_PASSES: usize = 6;
/// Most corrective re-encodes after measuring the output.
pub const MAX_CORRECTIONS: usize = 3;
/// When a loop pass lands this close to the target, LU, and the encoder meters what it
/// writes (WAV, FLAC), the next gain is not measured by a pass of its own: the final pass
/// encodes at it and its measurement of the written samples checks it (one limiter pass
/// fewer). Near the target the loudness is almost linear in the gain, so the predicted
/// gain lands within a few hundredths of a LU.
pub const SPECULATE_LU: f64 = 0.1;
/// Extra margin under the ceiling per corrective attempt when the encoder overshot it, dB:
/// sized for MP3, whose overshoot varies from encode to encode.
pub const OVERSHOOT_MARGIN_STEP_DB: f64 = 0.2;
/// The same for WAV and FLAC, dB. Their encoding adds nothing but the dither: at most
/// 1.5 LSB a sample (TPDF ±1 LSB plus rounding), which moves an interpolated peak by at
/// most the interpolator's L1 norm (1.86 for the ebur128-style phases, the larger) times
/// that: 8.5e-5 of full scale at 16 bits, under 0.001 dB at -1 dBFS. What a correction
/// must absorb is the limiter's output at the lowered ceiling reading a little differently;
/// this keeps the margin a lossless master keeps anyway ([`encoder_margin_db`]).
pub const LOSSLESS_OVERSHOOT_STEP_DB: f64 = 0.02;
/// Most limiter passes that check the loudness model's gain on the float signal before an
/// MP3 encode (see `run_chain`).
pub const MP3_FLOAT_CHECKS: usize = 2;
/// Most re-encodes turned down after the limiter when corrections left the true peak over
/// the ceiling.
pub const MAX_TRIMS: usize = 3;
/// The loudness loop treats the limiter as saturated when the loudness rises by less than
/// this per dB of gain (LU/dB) while short of the target.
pub const SATURATED_SLOPE: f64 = 0.1;
/// Largest gain the chain applies, dB (inputs quieter than -70 LUFS are refused anyway).
pub const MAX_GAIN_DB: f64 = 60.0;
/// The loudness model's search stops this close to its aim, LU (a prediction costs no
/// limiter pass, so it can aim far inside [`LOOP_TOLERANCE_LU`]).
pub const MODEL_TOLERANCE_LU: f64 = 0.005;
/// Largest step up of the model's search, dB.
pub const MODEL_STEP_DB: f64 = 6.0;
/// Most predictions per drive level.
pub const MAX_MODEL_STEPS: usize = 30;
/// The loudness model answers for the limiter's threshold at a ceiling this much under the
/// first one, dB (room for the MP3 corrections that lower it), and the processed track's
/// true peak is exact down to where it decides whether the limiter works at that ceiling ...
pub const MODEL_CEILING_SLACK_DB: f64 = 1.5;
/// ... and at gains up to this much over the linear one, dB (the drive levels below the
/// saturator reach a few dB over it on dense material). Higher fall back to limiter passes.
/// This bounds the search, not the detection: the model detects exactly only as deep as
/// the gains the search tries (`LoudnessModel::refine`).
pub const MODEL_HEADROOM_DB: f64 = 10.0;
/// Pass B detects exactly the tiles that can reach the limiter's threshold (at the
/// ceiling less [`MODEL_CEILING_SLACK_DB`]) at the gain the input's loudness asks for plus
/// this, dB; the rest keep an upper bound, refined when the search goes deeper. Before
/// the processed loudness was known, pass B detected 17.5 dB deeper than that (the stages'
/// largest drop, 6 dB, [`MODEL_HEADROOM_DB`] and the ceiling slack): 63 % of the tiles of
/// the dense frozen-bubble track on standard, 83 % on edm.
pub const PASS_B_REACH_DB: f64 = 3.0;
/// ... unless the input's true peak at the linear gain passes the ceiling by more than
/// this, dB: under heavy limiting the search climbs the drive levels and explores gains
/// up to [`MODEL_HEADROOM_DB`] over the linear one, and refining most of the track window
/// by window costs more than detecting it in pass B (dense frozen-bubble track, edm: 76 %
/// of the tiles refined, 2.27 s user instead of 1.76). Pass B then detects
/// [`DEEP_REACH_DB`] past the linear gain, as before lazy detection.
pub const HEAVY_LIMITING_DB: f64 = 4.0;
/// Pass B's reach under heavy limiting, dB: [`MODEL_HEADROOM_DB`] and 6 dB for the level
/// the stages may take away (5.6 dB at most measured per style); deeper is refined.
pub const DEEP_REACH_DB: f64 = MODEL_HEADROOM_DB + 6.0;
/// Pass B meters the track instead of modelling it when pass A shows that the limiter
/// will very likely stay idle: the input's true peak at the linear gain stays this much
/// under the point where it would work, dB (the stages may raise peaks relative to the
/// loudness; if they do by more, the model is built by a read of its own).
pub const IDLE_SLACK_DB: f64 = 1.0;

/// Headroom under the ceiling for what encoding adds, dB: dither is a fraction of an LSB;
/// MP3 reconstruction overshoots a limited signal, more at lower bit rates. Measured with
/// `lame -q 7` (our quality) on the dense frozen-bubble track mastered to WAV at −1 dBTP
/// (standard, edm, house_basic; true peak of the decoded MP3 by the reference meter,
/// less LAME's preset scale): +0.10…+0.22 dB at 320 kb/s, +0.19…+0.43 at 256,
/// +0.38…+0.58 at 192, +0.58…+1.20 at 128. Each margin is the largest overshoot measured
/// at that rate plus about 0.15 dB for the variation from encode to encode. A margin kept
/// larger than that makes the limiter work harder for nothing (0.9 dB at 320 kb/s did,
/// and made the loudness model miss the edm target: a second LAME encode). What remains
/// (material that overshoots more, e.g. broadband noise up to 22 kHz, which LAME's
/// low-pass rings on) is measured on the encoded file and corrected (see
/// [`MAX_CORRECTIONS`]).
pub fn encoder_margin_db(format: OutputFormat) -> f64 {
    match format {
        OutputFormat::Wav { .. } | OutputFormat::Flac { .. } => 0.02,
        OutputFormat::Mp3 { bitrate_kbps } if bitrate_kbps >= 320 => 0.4,
        OutputFormat::Mp3 { bitrate_kbps } if bitrate_kbps >= 256 => 0.6,
        OutputFormat::Mp3 { bitrate_kbps } if bitrate_kbps >= 192 => 0.75,
        OutputFormat::Mp3 { .. } => 1.35,
    }
}

/// Masters `input` into `output` with the stages of `factory`.
pub fn master_file_with(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    factory: &dyn StageFactory,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<MasterReport, MasterError> {
    master_file_budgeted(
        input,
        output,
        params,
        factory,
        (on_progress, cancel),
        Limits::default(),
    )
}

/// [`master_file_with`] with the [`MasteringStages`], refusing an input that lasts longer
/// than `max_duration_sec` with [`MasterError::TooLong`] as soon as its header declares it or
/// its decoded frames pass it (the decoded track is spilled to disk: the limit also bounds
/// the disk a run uses).
pub fn master_file_within(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    max_duration_sec: f64,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<MasterReport, MasterError> {
    let limits = Limits {
        max_duration_sec: Some(max_duration_sec),
        ..Limits::default()
    };
    master_file_budgeted(
        input,
        output,
        params,
        &MasteringStages,
        (on_progress, cancel),
        limits,
    )
}

/// What one run may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of RAM the decoded track may take before it is spilled to disk (tests force the
    /// disk path with 0).
    pub budget: u64,
    /// Longest input accepted, seconds (`None`: any length).
    pub max_duration_sec: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            budget: MEMORY_BUDGET_BYTES,
            max_duration_sec: None,
        }
    }
}

/// [`master_file_with`] within `limits`.
pub(crate) fn master_file_budgeted(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    factory: &dyn StageFactory,
    (on_progress, cancel): (&mut dyn FnMut(Progress), &AtomicBool),
    limits: Limits,
) -> Result<MasterReport, MasterError> {
    let mut rep = Reporter::new(on_progress, cancel);
    let result = run_chain(input, output, params, factory, limits, &mut rep);
    match result {
        Ok((before, after)) => Ok(MasterReport {
            warnings: warnings(&before, &after, params),
            before: before.loudness,
            duration_sec: after.seconds(),
            sample_rate: after.info.sample_rate,
            channels: after.info.channels,
            after: after.loudness,
            stage_seconds: rep.finish(),
        }),
        Err(e) => {
            // Never leave a half-written file behind; it may not exist, which is fine.
            let _ = std::fs::remove_file(output);
            Err(e)
        }
    }
}

/// What the user should know about the result: repaired input, a missed target.
fn warnings(before: &Measured, after: &Measured, params: &MasterParams) -> Vec<String> {
    let mut w = Vec::new();
    let stats = &before.stats;
    if stats.non_finite_samples > 0 {
        w.push(format!(
            "{} invalid samples (NaN or infinite) in the input were replaced by silence",
            stats.non_finite_samples
        ));
    }
    if stats.bad_packets > 0 {
        w.push(format!(
            "{} damaged packets in the input were skipped",
            stats.bad_packets
        ));
    }
    if stats.truncated {
        w.push(format!(
            "the input file ends early (truncated); {:.1} s of audio were mastered",
            before.seconds()
        ));
    }
    let miss = after.loudness.lufs - params.target_lufs;
    if miss.abs() > DELIVERY_TOLERANCE_LU {
        w.push(format!(
            "the target of {:.1} LUFS is out of reach under the {:.1} dBTP ceiling without \
             distortion: the master is at {:.2} LUFS",
            params.target_lufs, params.true_peak_db, after.loudness.lufs
        ));
    }
    w
}

/// The state shared by the passes after the analysis.
struct Run<'a> {
    params: &'a MasterParams,
    rate: u32,
    channels: usize,
    frames: u64,
    spill: TrackStore,
    limiter: Pipeline,
    /// The same limiter alone, to run on the model's stored peaks, with its model (`None`
    /// when the drive level is not modelled).
    stored: Option<(LimiterModel, TruePeakLimiter)>,
    /// The limiter's ceiling, dBTP, and drive level (see [`StageFactory::limiter`]).
    ceiling: f64,
    drive: usize,
    /// The gain keeps every true peak under the ceiling: the limiter would be a no-op, so
    /// the final pass skips it (saving its cost).
    limiter_idle: bool,
    /// Gain after the limiter, dB: 0 unless the encoder overshot the ceiling every time.
    trim_db: f64,
    /// The loudness model of the pre-gain track (`None`: the factory's limiter has none).
    model: Option<LoudnessModel>,
    /// Measured minus predicted loudness of the last written file, LU: what the model
    /// misses (and, for MP3, what the encoder loses).
    model_bias: f64,
    /// The model's raw prediction for the gain last found, when the model found it.
    modelled: Option<f64>,
    /// The last answer found on the model: where the next search starts.
    model_seed: Option<ModelSeed>,
}

impl Run<'_> {
    /// Replaces the limiter by a new one at the current ceiling and drive.
    fn rebuild_limiter(&mut self, factory: &dyn StageFactory) -> Result<(), MasterError> {
        self.limiter = Pipeline::new(vec![factory.limiter(
            self.params,
            (self.rate, self.channels),
            self.ceiling,
            self.drive,
        )?]);
        let format = (self.rate, self.channels);
        self.stored = match factory.limiter_model(self.params, format, self.ceiling, self.drive)? {
            Some(m) => {
                let limiter = m.limiter()?;
                Some((m, limiter))
            }
            None => None,
        };
        Ok(())
    }
}

fn run_chain(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    factory: &dyn StageFactory,
    limits: Limits,
    rep: &mut Reporter<'_>,
) -> Result<(Measured, Measured), MasterError> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };

    // Pass A: decode, measure the input, pre-analysis stages, analysis, spill.
    rep.begin(Stage::Decode, "analysis", 0.0)?;
    let (before, analysis, spill_a) = decode_and_analyse(input, dir, factory, limits, rep)?;
    run::check_masterable(&before)?;

    // Pass B: processing stages designed from the analysis; the loudness model is built
    // from their output as it is written.
    let ceiling = params.true_peak_db - encoder_margin_db(params.format);
    let format = (analysis.sample_rate, analysis.channels);
    let plan = plan_model(&analysis, params, factory, ceiling)?;
    rep.begin(Stage::Equalizer, "spill", 0.25)?;
    let (mut spill, mut pre_limiter, model) = process_stages(
        spill_a,
        &analysis,
        params,
        factory,
        (dir, before.frames),
        plan.as_ref(),
        rep,
    )?;
    #[cfg(test)]
    tests::PROCESSING_DROP.with(|c| c.set(analysis.loudness.lufs - pre_limiter.lufs));
    // Pass B's model is used whenever the limiter works (its peaks are refined as deep as
    // the search goes); without one, a separate pass builds one. An idle limiter needs none.
    let (model, rebuild) = match (model, plan.as_ref()) {
        (Some(mut model), Some((lowest, _))) => {
            let t = Instant::now();
            // The true peak decides whether the limiter works, at this ceiling and (MP3
            // corrections) down to MODEL_CEILING_SLACK_DB under it: exact there.
            let linear = (params.target_lufs - pre_limiter.lufs).min(MAX_GAIN_DB);
            let idle_from = run::db_to_gain(ceiling - MODEL_CEILING_SLACK_DB - 0.1 - linear) as f32;
            model.refine(&mut spill, idle_from)?;
            pre_limiter = model.loudness();
            rep.add_inner("loudness_model", t.elapsed().as_secs_f64());
            if limiter_works(&pre_limiter, params, ceiling) {
                // The search explores as far as MODEL_HEADROOM_DB over the linear gain.
                let needed = (linear + MODEL_HEADROOM_DB).min(MAX_GAIN_DB);
                model.answer_up_to(lowest.threshold(), needed);
                (Some(model), false)
            } else {
                (None, false)
            }
        }
        (Some(_), None) => (None, false),
        (None, _) => (None, true),
    };
    let model = if rebuild {
        build_model(
            &mut spill,
            format,
            &pre_limiter,
            params,
            factory,
            ceiling,
            dir,
            rep,
        )?
    } else {
        model
    };
    let mut run = Run {
        params,
        rate: analysis.sample_rate,
        channels: analysis.channels,
        frames: before.frames,
        spill,
        limiter: Pipeline::new(Vec::new()),
        stored: None,
        ceiling,
        drive: 0,
        limiter_idle: false,
        trim_db: 0.0,
        model,
        model_bias: 0.0,
        modelled: None,
        model_seed: None,
    };
    run.rebuild_limiter(factory)?;

    rep.begin(Stage::LoudnessCorrection, "loudness_correction", 0.4)?;
    let target = params.target_lufs;
    // WAV and FLAC meter the samples they write: the final pass can check the loop's last
    // prediction itself (see SPECULATE_LU). Their encoding changes the level by nothing but
    // the dither, so a miss is the loop's, never an encoder loss to make up for.
    let lossless = matches!(
        params.format,
        OutputFormat::Wav { .. } | OutputFormat::Flac { .. }
    );
    let (mut gain_db, mut float_lufs, mut saturated) =
        find_gain_driven(&mut run, factory, &pre_limiter, target, lossless, rep)?;
    // MP3: a miss found on the written file costs another LAME encode and decode (about
    // 4 s of user CPU on the dense 321.8 s track, one core); a limiter pass that meters
    // the float signal costs about a tenth of that. The model's gain is checked there
    // first (its error on that track's edm master was about 0.03 LU, enough for a second
    // encode), and the model's bias corrected; LAME's own level change at our quality is
    // under 0.01 LU (measured, see [`encoder_margin_db`]), so the first file lands.
    if !lossless {
        for _ in 0..MP3_FLOAT_CHECKS {
            let Some(predicted) = run.modelled.filter(|_| !saturated) else {
                break;
            };
            let measured = loudness_at(&mut run, gain_db, rep, 0.7, 0.75)?;
            float_lufs = measured;
            if (measured - target).abs() <= LOOP_TOLERANCE_LU {
                break;
            }
            run.model_bias = measured - predicted;
            (gain_db, float_lufs, saturated) =
                find_gain_driven(&mut run, factory, &pre_limiter, target, false, rep)?;
        }
    }
    let overshoot_step_db = if lossless {
        LOSSLESS_OVERSHOOT_STEP_DB
    } else {
        OVERSHOOT_MARGIN_STEP_DB
    };

    // Encode, then measure what was written. The encoder may change the level (MP3 drops
    // the top octave: about -0.1 LU) and the peaks (MP3 reconstruction overshoots): both are
    // measured and corrected for in the next attempt, level by aiming the float signal at
    // the target plus the encoder's loss, peaks by lowering the limiter's ceiling.
    let measure_written = |run: &mut Run<'_>, gain_db: f64, rep: &mut Reporter<'_>| {
        rep.begin(Stage::Encode, "encode", 0.75)?;
        let monitored = encode_pass(run, gain_db, output, rep)?;
        rep.begin(Stage::Analysis, "verify", 0.92)?;
        match monitored {
            Some(m) => run::measured_from_monitor(output, m),
            None => run::measure_file(output, MeterMode::FULL, rep, 0.92, 0.99),
        }
    };
    let mut after = measure_written(&mut run, gain_db, rep)?;
    #[cfg(test)]
    {
        let miss = run.modelled.map(|p| after.loudness.lufs - p);
        tests::MODEL_MISS.with(|c| c.set(miss));
    }
    for attempt in 0..MAX_CORRECTIONS {
        let miss = target - after.loudness.lufs;
        let over = after.loudness.true_peak_db - params.true_peak_db;
        // A limiter driven into saturation cannot get louder: another attempt would give
        // the same file.
        if (miss.abs() <= ACCEPT_TOLERANCE_LU || saturated) && over <= 0.0 {
            break;
        }
        rep.begin(Stage::LoudnessCorrection, "loudness_correction", 0.75)?;
        if over > 0.0 {
            // MP3 overshoot varies from encode to encode (about ±0.4 dB at 128 kb/s on
            // dense material): each attempt keeps a wider margin.
            run.ceiling -= over + overshoot_step_db * (attempt + 1) as f64;
            run.rebuild_limiter(factory)?;
        }
        let encoder_loss = match run.modelled {
            // The model's next search aims off by what this one missed (encoder included).
            Some(predicted) => {
                run.model_bias = after.loudness.lufs - predicted;
                0.0
            }
            None if lossless => 0.0,
            None => float_lufs - after.loudness.lufs,
        };
        // Corrections measure every gain they try (a repeated prediction would repeat the
        // miss).
        (gain_db, float_lufs, saturated) = find_gain_driven(
            &mut run,
            factory,
            &pre_limiter,
            target + encoder_loss,
            false,
            rep,
        )?;
        after = measure_written(&mut run, gain_db, rep)?;
    }
    // The ceiling is never passed: if the encoder still overshoots it, the output is
    // turned down after the limiter (the report then warns that the target was missed).
    for _ in 0..MAX_TRIMS {
        let over = after.loudness.true_peak_db - params.true_peak_db;
        if over <= 0.0 {
            break;
        }
        run.trim_db -= over + overshoot_step_db;
        after = measure_written(&mut run, gain_db, rep)?;
    }
    Ok((before, after))
}

/// Pass A. Returns the raw input's measurement, the analysis of the pre-processed input and
/// the store holding it.
fn decode_and_analyse(
    input: &Path,
    dir: &Path,
    factory: &dyn StageFactory,
    limits: Limits,
    rep: &mut Reporter<'_>,
) -> Result<(Measured, InputAnalysis, TrackStore), MasterError> {
    let mut decoder = Decoder::open_with_block(input, BLOCK_FRAMES)?;
    if let Some(max) = limits.max_duration_sec {
        decoder.limit_duration(max)?;
    }
    let budget = limits.budget;
    let info = decoder.info().clone();
    let (rate, channels) = (decoder.sample_rate(), decoder.channels());
    let mut raw_meter = FastMeter::new(channels, rate, MeterMode::FULL)?;
    let mut pre = Pipeline::new(factory.pre_analysis(rate, channels)?);
    // The pre-analysis stages (DC removal, below 2 Hz) do not change BS.1770 loudness (its
    // K-weighting removes everything below 38 Hz): the raw input's meter serves both.
    let mut spectrum = OctaveAnalyzer::new(rate, channels)?;
    let mut stats = SignalStats::new(channels);
    let mut spill = TrackStore::new(dir, channels, run::expected_frames(&info), budget)?;
    let span = Span {
        start: 0.0,
        end: 0.25,
        total_frames: run::expected_frames(&info),
    };
    let mut block = Vec::new();
    let mut frames = 0u64;
    let mut sink = |block: &[Vec<f32>]| -> Result<(), MasterError> {
        spectrum.add(block);
        stats.add_block(block);
        spill.write(block)
    };
    let mut decode_secs = 0.0;
    loop {
        let t = Instant::now();
        let n = decoder.read_block(&mut block)?;
        decode_secs += t.elapsed().as_secs_f64();
        if n == 0 {
            break;
        }
        raw_meter.add_block(&block)?;
        frames += n as u64;
        if pre.process(&mut block) > 0 {
            sink(&block)?;
        }
        rep.advance(span.at(frames))?;
    }
    pre.flush(channels, BLOCK_FRAMES, &mut sink)?;
    spectrum.finish();
    rep.add_inner("decode", decode_secs);
    for (name, secs) in pre.timings() {
        rep.add_inner(name, secs);
    }
    let before = Measured {
        info,
        loudness: raw_meter.loudness(),
        frames,
        stats: decoder.stats(),
    };
    let analysis = InputAnalysis {
        sample_rate: rate,
        channels,
        loudness: before.loudness,
        spectrum: spectrum.spectrum_db(),
        band_stereo: spectrum.band_stereo(),
        stereo_correlation: stats.correlation(),
        crest_factor_db: stats.crest_factor_db(),
    };
    Ok((before, analysis, spill))
}

/// The limiter will have work at the linear gain (its peaks pass the ceiling less the
/// 0.1 dB that covers the limiter's own margin).
fn limiter_works(pre_limiter: &Loudness, params: &MasterParams, ceiling: f64) -> bool {
    let linear = (params.target_lufs - pre_limiter.lufs).min(MAX_GAIN_DB);
    pre_limiter.true_peak_db + linear > ceiling - 0.1
}

/// Whether pass B builds the loudness model, and with what: the limiter at the lowest
/// ceiling the model answers for, and the highest gain it detects exactly at, dB — from
/// what pass A measured and [`PASS_B_REACH_DB`] ([`DEEP_REACH_DB`] under heavy limiting,
/// [`HEAVY_LIMITING_DB`]; deeper is refined on demand). `None`
/// (pass B meters the track as before) when the factory's limiter has no model or the
/// limiter will very likely stay idle ([`IDLE_SLACK_DB`]).
fn plan_model(
    analysis: &InputAnalysis,
    params: &MasterParams,
    factory: &dyn StageFactory,
    ceiling: f64,
) -> Result<Option<(LimiterModel, f64)>, MasterError> {
    let input = &analysis.loudness;
    let linear = (params.target_lufs - input.lufs).min(MAX_GAIN_DB);
    if input.true_peak_db + linear <= ceiling - 0.1 - IDLE_SLACK_DB {
        return Ok(None);
    }
    let lowest = (ceiling - MODEL_CEILING_SLACK_DB).max(-20.0);
    let format = (analysis.sample_rate, analysis.channels);
    let Some(limiter) = factory.limiter_model(params, format, lowest, 0)? else {
        return Ok(None);
    };
    let reach = if input.true_peak_db + linear - ceiling > HEAVY_LIMITING_DB {
        DEEP_REACH_DB
    } else {
        PASS_B_REACH_DB
    };
    let max_gain_db = (linear + reach).min(MAX_GAIN_DB);
    Ok(Some((limiter, max_gain_db)))
}

/// Pass B. Returns the store of the processed (pre-gain, pre-limiter) signal, its
/// loudness and true peak, and, when `plan` asks for it, its loudness model (whose
/// measurement the loudness and true peak then are: the track is K-weighted and detected
/// once, see [`LoudnessModel::loudness`]).
fn process_stages(
    mut spill: TrackStore,
    analysis: &InputAnalysis,
    params: &MasterParams,
    factory: &dyn StageFactory,
    (dir, frames): (&Path, u64),
    plan: Option<&(LimiterModel, f64)>,
    rep: &mut Reporter<'_>,
) -> Result<(TrackStore, Loudness, Option<LoudnessModel>), MasterError> {
    let mut stages = Pipeline::new(factory.processing(params, analysis)?);
    if stages.is_empty() {
        return Ok((spill, analysis.loudness, None));
    }
    let channels = analysis.channels;
    let format = (analysis.sample_rate, channels);
    /// What measures the processed track: the model, or the meter as before.
    enum Measure {
        Model(Box<LoudnessModel>),
        Meter(Box<FastMeter>),
    }
    let mut measure = match plan {
        Some((limiter, max_gain_db)) => Measure::Model(Box::new(LoudnessModel::new(
            dir,
            format,
            frames,
            limiter.threshold(),
            *max_gain_db,
        )?)),
        None => Measure::Meter(Box::new(FastMeter::new(
            channels,
            analysis.sample_rate,
            MeterMode::INTEGRATED_TRUE_PEAK,
        )?)),
    };
    let mut model_secs = 0.0;
    let mut add = |block: &[Vec<f32>]| -> Result<(), MasterError> {
        match &mut measure {
            Measure::Model(m) => {
                let t = Instant::now();
                m.add_block(block)?;
                model_secs += t.elapsed().as_secs_f64();
                Ok(())
            }
            Measure::Meter(m) => m.add_block(block),
        }
    };
    let span = Span {
        start: 0.25,
        end: 0.4,
        total_frames: frames,
    };
    // Long blocks: the linear-phase EQ filters one FFT frame per call.
    let mut pass = spill.rewrite(dir, PROCESSING_BLOCK_FRAMES)?;
    let mut block = Vec::new();
    let mut done = 0u64;
    loop {
        let n = pass.read_block(&mut block)?;
        if n == 0 {
            break;
        }
        done += n as u64;
        if stages.process(&mut block) > 0 {
            add(&block)?;
            pass.write(&block)?;
        }
        rep.advance(span.at(done))?;
    }
    stages.flush(channels, BLOCK_FRAMES, |block: &[Vec<f32>]| {
        add(block)?;
        pass.write(block)
    })?;
    if let Some(out) = pass.finish()? {
        spill = TrackStore::Disk(out);
    }
    for (name, secs) in stages.timings() {
        rep.add_inner(name, secs);
    }
    Ok(match measure {
        Measure::Model(mut model) => {
            let t = Instant::now();
            model.finish()?;
            rep.add_inner("loudness_model", model_secs + t.elapsed().as_secs_f64());
            (spill, model.loudness(), Some(*model))
        }
        Measure::Meter(meter) => (spill, meter.loudness(), None),
    })
}

/// The loudness model of the processed track (see [`loudness_model`]), built by one
/// detection pass over it, when the limiter will have work to do at the linear gain and
/// the factory's limiter can be modelled (`None` otherwise). It answers up to
/// [`MODEL_HEADROOM_DB`] over the linear gain and a ceiling up to
/// [`MODEL_CEILING_SLACK_DB`] lower; its peaks are exact at up to [`PASS_B_REACH_DB`]
/// over the linear gain, refined deeper on demand.
#[allow(clippy::too_many_arguments)]
fn build_model(
    spill: &mut TrackStore,
    format: (u32, usize),
    pre_limiter: &Loudness,
    params: &MasterParams,
    factory: &dyn StageFactory,
    ceiling: f64,
    dir: &Path,
    rep: &mut Reporter<'_>,
) -> Result<Option<LoudnessModel>, MasterError> {
    let linear = (params.target_lufs - pre_limiter.lufs).min(MAX_GAIN_DB);
    if pre_limiter.true_peak_db + linear <= ceiling - 0.1 {
        return Ok(None);
    }
    let lowest = (ceiling - MODEL_CEILING_SLACK_DB).max(-20.0);
    let Some(limiter) = factory.limiter_model(params, format, lowest, 0)? else {
        return Ok(None);
    };
    #[cfg(test)]
    tests::MODEL_READS.with(|c| c.set(c.get() + 1));
    let t = Instant::now();
    let frames = spill.frames();
    let max_gain_db = (linear + PASS_B_REACH_DB).min(MAX_GAIN_DB);
    let mut model = LoudnessModel::new(dir, format, frames, limiter.threshold(), max_gain_db)?;
    let mut reader = spill.reader(BLOCK_FRAMES)?;
    let mut block = Vec::new();
    while reader.read_block(&mut block)? > 0 {
        model.add_block(&block)?;
    }
    model.finish()?;
    model.answer_up_to(
        limiter.threshold(),
        (linear + MODEL_HEADROOM_DB).min(MAX_GAIN_DB),
    );
    rep.add_inner("loudness_model", t.elapsed().as_secs_f64());
    Ok(Some(model))
}

/// One pass: spill → gain → limiter → `sink`, with progress inside `[start, end]`.
fn limited_pass(
    run: &mut Run<'_>,
    gain_db: f64,
    rep: &mut Reporter<'_>,
    start: f32,
    end: f32,
    mut sink: impl FnMut(&[Vec<f32>]) -> Result<(), MasterError>,
) -> Result<(), MasterError> {
    let gain = run::db_to_gain(gain_db) as f32;
    let trim = run::db_to_gain(run.trim_db) as f32;
    let mut sink = |block: &mut [Vec<f32>]| {
        if trim != 1.0 {
            run::apply_gain(block, trim);
        }
        sink(block)
    };
    let use_limiter = !run.limiter_idle;
    if use_limiter {
        #[cfg(test)]
        tests::LIMITER_PASSES.with(|c| c.set(c.get() + 1));
    }
    let span = Span {
        start,
        end,
        total_frames: run.frames,
    };
    if use_limiter
        && let (Some(model), Some((limiter_model, limiter))) = (&mut run.model, &mut run.stored)
        && model.covers(limiter_model, gain_db)
    {
        #[cfg(test)]
        tests::STORED_PEAK_PASSES.with(|c| c.set(c.get() + 1));
        let t = Instant::now();
        model.refine_for(&mut run.spill, limiter_model, gain_db)?;
        rep.add_inner("loudness_model", t.elapsed().as_secs_f64());
        let secs = stored_peak_pass(&mut run.spill, model, limiter, (gain, span), rep, sink)?;
        rep.add_inner("limiter", secs);
        return Ok(());
    }
    let limiter_before = run.limiter.total_seconds();
    run.limiter.reset();
    let limiter = &mut run.limiter;
    gained_pass(&mut run.spill, (gain, span), rep, |block| {
        if !use_limiter || limiter.process(block) > 0 {
            sink(block)?;
        }
        Ok(())
    })?;
    if use_limiter {
        run.limiter
            .flush(run.channels, BLOCK_FRAMES, |tail| sink(&mut tail.to_vec()))?;
    }
    rep.add_inner("limiter", run.limiter.total_seconds() - limiter_before);
    Ok(())
}

/// The loop both limiter passes share: every block of the track, times `gain`, handed to
/// `step` (which limits it and passes it on), with progress inside `span`.
fn gained_pass(
    spill: &mut TrackStore,
    (gain, span): (f32, Span),
    rep: &mut Reporter<'_>,
    mut step: impl FnMut(&mut Vec<Vec<f32>>) -> Result<(), MasterError>,
) -> Result<(), MasterError> {
    let mut reader = spill.reader(BLOCK_FRAMES)?;
    let mut block = Vec::new();
    let mut done = 0u64;
    loop {
        let n = reader.read_block(&mut block)?;
        if n == 0 {
            break;
        }
        done += n as u64;
        run::apply_gain(&mut block, gain);
        step(&mut block)?;
        rep.advance(span.at(done))?;
    }
    Ok(())
}

/// Where a pass hands its output blocks.
type BlockSink<'a> = dyn FnMut(&mut [Vec<f32>]) -> Result<(), MasterError> + 'a;

/// [`limited_pass`]'s loop with the limiter fed by the model's stored peaks times the
/// gain ([`LoudnessModel::peaks`], [`TruePeakLimiter::process_with_peaks`]) instead of
/// detecting them: the latency is compensated as [`Pipeline`] does (the first `latency`
/// output frames dropped, as many frames of silence after the track). Returns the
/// limiter's seconds.
fn stored_peak_pass(
    spill: &mut TrackStore,
    model: &mut LoudnessModel,
    limiter: &mut TruePeakLimiter,
    (gain, span): (f32, Span),
    rep: &mut Reporter<'_>,
    mut sink: impl FnMut(&mut [Vec<f32>]) -> Result<(), MasterError>,
) -> Result<f64, MasterError> {
    use crate::stage::BlockProcessor;
    limiter.reset();
    let latency = limiter.latency();
    let channels = model.channels();
    let mut to_skip = latency;
    let mut peaks = model.peaks()?;
    let mut peak = vec![0.0f32; BLOCK_FRAMES];
    let mut secs = 0.0;
    let mut limit =
        |block: &mut Vec<Vec<f32>>, sink: &mut BlockSink<'_>| -> Result<(), MasterError> {
            let n = block.first().map_or(0, Vec::len);
            let t = Instant::now();
            if peak.len() < n {
                peak.resize(n, 0.0);
            }
            peaks.fill(&mut peak[..n], gain)?;
            limiter.process_with_peaks(block, &peak[..n]);
            secs += t.elapsed().as_secs_f64();
            let skip = to_skip.min(n);
            if skip > 0 {
                for plane in block.iter_mut() {
                    plane.drain(..skip);
                }
                to_skip -= skip;
            }
            if n > skip {
                sink(block)?;
            }
            Ok(())
        };
    gained_pass(spill, (gain, span), rep, |block| limit(block, &mut sink))?;
    let mut left = latency;
    while left > 0 {
        let n = left.min(BLOCK_FRAMES);
        let mut silence = vec![vec![0.0f32; n]; channels];
        limit(&mut silence, &mut sink)?;
        left -= n;
    }
    Ok(secs)
}

/// Integrated loudness of the limited signal at `gain_db`.
fn loudness_at(
    run: &mut Run<'_>,
    gain_db: f64,
    rep: &mut Reporter<'_>,
    start: f32,
    end: f32,
) -> Result<f64, MasterError> {
    let mut meter = FastMeter::new(run.channels, run.rate, MeterMode::INTEGRATED)?;
    limited_pass(run, gain_db, rep, start, end, |b| meter.add_block(b))?;
    Ok(meter.integrated())
}

/// The loudness-correction loop: the gain that brings the limited signal to the target.
///
/// When the limiter cannot act (the gained true peak stays under the ceiling) loudness is
/// linear in the gain and no pass is needed. Otherwise: secant iterations on
/// f(g) = I(g) − target, starting from the linear estimate and a unit slope, the slope
/// clamped to [0.05, 1.5] (limiting only ever flattens it), until |f| ≤ 0.02 LU ([`LOOP_TOLERANCE_LU`]).
/// With `speculate`, once a pass is within [`SPECULATE_LU`] the next gain is returned
/// unmeasured, with the target as its loudness: the caller's final pass checks it.
/// Returns the gain, the loudness it gives before encoding, and whether the limiter is
/// saturated (the target is out of reach under this ceiling).
fn find_gain(
    run: &mut Run<'_>,
    pre_limiter: &Loudness,
    ceiling: f64,
    target: f64,
    speculate: bool,
    rep: &mut Reporter<'_>,
) -> Result<(f64, f64, bool), MasterError> {
    let linear = (target - pre_limiter.lufs).min(MAX_GAIN_DB);
    // The limiter aims 0.05 dB inside its ceiling; 0.1 dB covers that margin.
    run.limiter_idle = pre_limiter.true_peak_db + linear <= ceiling - 0.1;
    if run.limiter_idle {
        return Ok((linear, pre_limiter.lufs + linear, false));
    }
    let step = (0.75 - 0.4) / MAX_LOOP_PASSES as f32;
    let at = |k: usize| 0.4 + step * k as f32;
    let mut g_prev = linear;
    let mut f_prev = loudness_at(run, g_prev, rep, at(0), at(1))? - target;
    let mut best = (f_prev.abs(), g_prev, f_prev);
    if f_prev.abs() <= LOOP_TOLERANCE_LU {
        return Ok((g_prev, target + f_prev, false));
    }
    let mut g = (g_prev - f_prev).min(MAX_GAIN_DB);
    if speculate && f_prev.abs() <= SPECULATE_LU {
        return Ok((g, target, false));
    }
    for k in 1..MAX_LOOP_PASSES {
        let f = loudness_at(run, g, rep, at(k), at(k + 1))? - target;
        if f.abs() < best.0 {
            best = (f.abs(), g, f);
        }
        if f.abs() <= LOOP_TOLERANCE_LU {
            break;
        }
        // Saturated: the gain is at its limit or more gain no longer makes it louder.
        if g >= MAX_GAIN_DB || (f - f_prev).abs() < 0.01 {
            return Ok((best.1, target + best.2, true));
        }
        let slope = if (g - g_prev).abs() > 1e-9 {
            ((f - f_prev) / (g - g_prev)).clamp(0.05, 1.5)
        } else {
            1.0
        };
        // Short of the target and nearly flat: 1 LU more would take 10 dB more gain.
        if f < 0.0 && slope < SATURATED_SLOPE {
            return Ok((best.1, target + best.2, true));
        }
        g_prev = g;
        f_prev = f;
        g = (g - f / slope).min(MAX_GAIN_DB);
        if speculate && f.abs() <= SPECULATE_LU {
            return Ok((g, target, false));
        }
    }
    Ok((best.1, target + best.2, false))
}

/// [`find_gain_driven`] on the loudness model: no limiter pass. From the current drive
/// level up, solves `Î(g) + bias = target` on the model (see [`solve_on_model`]); a level
/// whose limiter saturates short of the target hands over to the next. Returns `None` when
/// the model cannot answer (no model, a drive level it does not model — the saturator's —
/// or a gain beyond what it detected): the caller then measures with limiter passes. The
/// loudness returned is the prediction plus the bias; the final pass measures the truth,
/// and the correction after it learns the bias from that measurement.
///
/// Each search is seeded from what earlier ones found ([`ModelSeed`]): a correction
/// starts at the last answer moved along the slope measured there, a new drive level at
/// the gain where the level below stopped rising, with that level's slope.
fn find_gain_modeled(
    run: &mut Run<'_>,
    factory: &dyn StageFactory,
    pre_limiter: &Loudness,
    target: f64,
    rep: &mut Reporter<'_>,
) -> Result<Option<(f64, f64, bool)>, MasterError> {
    let linear = (target - pre_limiter.lufs).min(MAX_GAIN_DB);
    // The limiter aims 0.05 dB inside its ceiling; 0.1 dB covers that margin.
    run.limiter_idle = pre_limiter.true_peak_db + linear <= run.ceiling - 0.1;
    if run.limiter_idle {
        run.modelled = None;
        return Ok(Some((linear, pre_limiter.lufs + linear, false)));
    }
    let Some(model) = run.model.as_mut() else {
        return Ok(None);
    };
    let t = Instant::now();
    let format = (run.rate, run.channels);
    let aim = target - run.model_bias;
    let mut seed = match run.model_seed {
        Some(last) if last.drive == run.drive => last.moved_to(aim, run.ceiling),
        _ => Seed {
            gain_db: linear,
            slope: 1.0,
        },
    };
    let mut drive = run.drive;
    let found = loop {
        let Some(limiter) = factory.limiter_model(run.params, format, run.ceiling, drive)? else {
            break None;
        };
        let Some(solved) = solve_on_model(model, &mut run.spill, &limiter, aim, seed)? else {
            break None;
        };
        if !solved.saturated || drive >= factory.max_drive() {
            break Some(solved);
        }
        drive += 1;
        seed = Seed {
            gain_db: solved.knee_db,
            slope: solved.slope,
        };
    };
    rep.add_inner("loudness_model", t.elapsed().as_secs_f64());
    if drive != run.drive {
        run.drive = drive;
        run.rebuild_limiter(factory)?;
    }
    run.modelled = found.as_ref().map(|s| s.predicted);
    run.model_seed = found.as_ref().map(|s| ModelSeed {
        drive,
        ceiling: run.ceiling,
        gain_db: s.gain_db,
        predicted: s.predicted,
        slope: s.slope,
    });
    Ok(found.map(|s| (s.gain_db, s.predicted + run.model_bias, s.saturated)))
}

/// Where [`solve_on_model`] starts: its first gain, dB, and the slope, LU/dB, its first
/// step assumes.
#[derive(Debug, Clone, Copy)]
struct Seed {
    gain_db: f64,
    slope: f64,
}

/// The last answer found on the model, to seed the next search at the same drive level.
#[derive(Debug, Clone, Copy)]
struct ModelSeed {
    drive: usize,
    /// The limiter's ceiling it was found at, dBTP.
    ceiling: f64,
    gain_db: f64,
    /// The model's loudness there, LUFS, and its slope there, LU/dB.
    predicted: f64,
    slope: f64,
}

impl ModelSeed {
    /// The seed for `aim` at `ceiling`. The limiter only compares the peaks with its
    /// ceiling, so lowering the ceiling by `d` dB gives the output of `d` dB more gain at
    /// the old ceiling, `d` dB quieter: `I_{c−d}(g) = I_c(g + d) − d`. Near the last answer
    /// the loudness is close to linear in the gain.
    fn moved_to(self, aim: f64, ceiling: f64) -> Seed {
        let d = self.ceiling - ceiling;
        let step = (aim + d - self.predicted) / self.slope;
        let gain_db = self.gain_db - d + step.clamp(-MODEL_STEP_DB, MODEL_STEP_DB);
        Seed {
            gain_db: if gain_db.is_finite() {
                gain_db
            } else {
                self.gain_db
            },
            slope: self.slope,
        }
    }
}

/// A gain found on the loudness model.
#[derive(Debug, Clone, Copy)]
struct Solved {
    gain_db: f64,
    /// The model's loudness at that gain, LUFS.
    predicted: f64,
    /// The limiter saturates: the loudest gain short of the aim.
    saturated: bool,
    /// The last slope measured short of saturation, LU/dB (the seed's when none was).
    slope: f64,
    /// Saturated: the gain where the loudness stopped rising (the lower end of the flat
    /// step), where the next drive level's search starts. Otherwise the gain found.
    knee_db: f64,
}

/// Slopes the search steps with, LU/dB: limiting only flattens the loudness curve (at most
/// 1 LU/dB, a little over that from rounding), and under 0.02 a step would leap 50 dB a LU.
const MODEL_SLOPES: (f64, f64) = (0.02, 1.5);

/// Solves `Î(g) = aim` on `model` for `limiter`, starting at `seed`: secant steps (the
/// first with the seed's slope) until the aim is bracketed; then secant steps that stay
/// inside the bracket, and false position on it when one would leave it, kept at least a
/// tenth of the bracket from either end so it shrinks every step; until within
/// [`MODEL_TOLERANCE_LU`]. Saturated, as in [`find_gain`], when short of the aim and the
/// loudness rises by less than [`SATURATED_SLOPE`] LU per dB. `None` when the model
/// refuses a gain.
fn solve_on_model(
    model: &mut LoudnessModel,
    track: &mut TrackStore,
    limiter: &LimiterModel,
    aim: f64,
    seed: Seed,
) -> Result<Option<Solved>, MasterError> {
    // The model answers up to `top`: a limiter still short of the aim there is treated as
    // saturated (the next drive level, or limiter passes, take over).
    let top = (model.max_gain_db(limiter) - 1e-6).min(MAX_GAIN_DB);
    let mut at = |g: f64| -> Result<Option<f64>, MasterError> {
        #[cfg(test)]
        tests::PREDICTIONS.with(|c| c.set(c.get() + 1));
        model.predict(track, limiter, g)
    };
    let mut slope = if seed.slope.is_finite() {
        seed.slope.clamp(MODEL_SLOPES.0, MODEL_SLOPES.1)
    } else {
        1.0
    };
    let mut g0 = seed.gain_db.min(top);
    let Some(i0) = at(g0)? else { return Ok(None) };
    let mut f0 = i0 - aim;
    let mut best = (f0.abs(), g0, i0);
    // Bracket: the highest gain known short of the aim, the lowest known over it, with
    // how far off each is.
    let mut lo: Option<(f64, f64)> = None;
    let mut hi: Option<(f64, f64)> = None;
    let update = |g: f64, f: f64, lo: &mut Option<(f64, f64)>, hi: &mut Option<(f64, f64)>| {
        if f < 0.0 {
            if lo.is_none_or(|(l, _)| g > l) {
                *lo = Some((g, f));
            }
        } else if hi.is_none_or(|(h, _)| g < h) {
            *hi = Some((g, f));
        }
    };
    update(g0, f0, &mut lo, &mut hi);
    let mut g1 = (g0 - f0 / slope).min(g0 + MODEL_STEP_DB).min(top);
    for _ in 0..MAX_MODEL_STEPS {
        if best.0 <= MODEL_TOLERANCE_LU || !g1.is_finite() {
            break;
        }
        let Some(i1) = at(g1)? else { return Ok(None) };
        let f1 = i1 - aim;
        if f1.abs() < best.0 {
            best = (f1.abs(), g1, i1);
        }
        update(g1, f1, &mut lo, &mut hi);
        if f1.abs() <= MODEL_TOLERANCE_LU {
            break;
        }
        let secant = if (g1 - g0).abs() > 1e-9 {
            (f1 - f0) / (g1 - g0)
        } else {
            slope
        };
        if f1 < 0.0 && (g1 >= top || (secant < SATURATED_SLOPE && g1 > g0)) {
            // Short of the aim, and more gain hardly helps: the loudest point tried.
            let knee_db = if g1 > g0 && g1 < top { g0 } else { g1 };
            return Ok(Some(Solved {
                gain_db: g1,
                predicted: i1,
                saturated: true,
                slope,
                knee_db,
            }));
        }
        if secant.is_finite() {
            slope = secant.clamp(MODEL_SLOPES.0, MODEL_SLOPES.1);
        }
        // At most MODEL_STEP_DB up at a time: a flat slope would jump far past where
        // saturation shows.
        let mut next = (g1 - f1 / slope).min(g1 + MODEL_STEP_DB);
        if let (Some((gl, fl)), Some((gh, fh))) = (lo, hi)
            && !(next > gl && next < gh)
        {
            let w = gh - gl;
            next = (gl - fl * w / (fh - fl)).clamp(gl + 0.1 * w, gh - 0.1 * w);
        }
        (g0, f0) = (g1, f1);
        g1 = next.min(top);
    }
    Ok(Some(Solved {
        gain_db: best.1,
        predicted: best.2,
        saturated: false,
        slope,
        knee_db: best.1,
    }))
}

/// [`find_gain`], raising the limiter's drive level while it saturates below the target.
fn find_gain_driven(
    run: &mut Run<'_>,
    factory: &dyn StageFactory,
    pre_limiter: &Loudness,
    target: f64,
    speculate: bool,
    rep: &mut Reporter<'_>,
) -> Result<(f64, f64, bool), MasterError> {
    if let Some(found) = find_gain_modeled(run, factory, pre_limiter, target, rep)? {
        return Ok(found);
    }
    run.modelled = None;
    loop {
        let found = find_gain(run, pre_limiter, run.ceiling, target, speculate, rep)?;
        if !found.2 || run.drive >= factory.max_drive() {
            return Ok(found);
        }
        run.drive += 1;
        run.rebuild_limiter(factory)?;
    }
}

/// The final pass: gain → limiter → encoder (which dithers) → `output`. A lossless
/// encoder meters the samples it writes (see [`BlockEncoder::monitor`]): its measurement
/// is returned, with the metering time booked as `verify`.
fn encode_pass(
    run: &mut Run<'_>,
    gain_db: f64,
    output: &Path,
    rep: &mut Reporter<'_>,
) -> Result<Option<Monitored>, MasterError> {
    #[cfg(test)]
    mp3_tests::ENCODES.with(|c| c.set(c.get() + 1));
    let mut encoder: Box<dyn BlockEncoder> =
        create_encoder(output, run.params.format, run.rate, run.channels)?;
    let meter = FastMeter::new(run.channels, run.rate, MeterMode::FULL)?;
    encoder.monitor(meter);
    limited_pass(run, gain_db, rep, 0.75, 0.92, |b| encoder.write(b))?;
    let monitored = encoder.take_monitor();
    encoder.finish()?;
    if let Some(m) = &monitored {
        rep.add_inner("verify", m.seconds);
    }
    Ok(monitored)
}

#[cfg(test)]
mod correction_tests;
#[cfg(test)]
mod mp3_tests;
#[cfg(test)]
mod quality_tests;
#[cfg(test)]
mod tests;
