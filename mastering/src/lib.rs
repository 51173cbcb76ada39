//! Magic Master's mastering library: decode, analyse, process and encode audio.
//!
//! A pure DSP library: no async runtime, no SQL, no HTTP. The worker and the API call the
//! three entry points below; everything else is public so that it can be tested and
//! benchmarked stage by stage.
//!
//! - [`probe`] opens a file and proves that it decodes (used before a job is queued).
//! - [`analyze_file`] measures a file (loudness, true peak, LRA, spectrum, …).
//! - [`master_file`] masters one file to another, reporting progress per stage and honouring
//!   a cancellation flag.

pub mod analysis;
pub mod chain;
pub mod decode;
pub mod dsp;
pub mod encode;
pub mod error;
pub mod meter;
pub mod params;
pub mod progress;
pub mod report;
pub mod run;
pub mod simd;
pub mod stage;

/// Test signals, file writers and the reference true-peak meter: test builds, and the
/// `testutil` feature (benches and examples); production code never uses it.
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

pub use chain::master_file_within;
pub use error::MasterError;
pub use params::{MasterParams, OutputFormat, Style};
pub use progress::{Progress, Stage};
pub use report::{Analysis, AudioInfo, Loudness, MasterReport};

use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Opens `path` and decodes its first packets, proving that it is audio we can master.
/// Cheap: it never decodes the whole file.
pub fn probe(path: &Path) -> Result<AudioInfo, MasterError> {
    decode::probe(path)
}

/// [`probe`] for an upload to be mastered: also refuses audio shorter than
/// [`run::MIN_DURATION_SEC`] and a declared length over `max_duration_sec`.
pub fn probe_masterable(path: &Path, max_duration_sec: f64) -> Result<AudioInfo, MasterError> {
    run::probe_masterable(path, max_duration_sec)
}

/// Decodes and measures the whole file.
pub fn analyze_file(path: &Path) -> Result<Analysis, MasterError> {
    analysis::analyze_file(path, None)
}

/// [`analyze_file`], refusing a file longer than `max_duration_sec` (declared by its
/// header or found while decoding) with [`MasterError::TooLong`].
pub fn analyze_file_within(path: &Path, max_duration_sec: f64) -> Result<Analysis, MasterError> {
    analysis::analyze_file(path, Some(max_duration_sec))
}

/// Masters `input` into `output` (written in place: callers that need atomic visibility
/// pass a temporary path and rename it). `on_progress` is called at every stage change and
/// periodically inside long stages; setting `cancel` stops the work with
/// [`MasterError::Cancelled`] at the next block. On error no output file is left behind.
///
/// Runs the full chain ([`chain`]) with the [`dsp`] stages ([`chain::MasteringStages`]).
pub fn master_file(
    input: &Path,
    output: &Path,
    params: &MasterParams,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<MasterReport, MasterError> {
    chain::master_file_with(
        input,
        output,
        params,
        &chain::MasteringStages,
        on_progress,
        cancel,
    )
}
