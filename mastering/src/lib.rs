//! Magic Master's mastering library: decode, analyse, process and encode audio.
//!
//! A pure DSP library: no async runtime, no SQL, no HTTP. Its public API is small (the worker
//! and the API use nothing else):
//!
//! - [`probe`] opens a file and proves that it decodes (used before a job is queued);
//!   [`probe_masterable`] also refuses clips too short to master and files over a length.
//! - [`analyze_file`] measures a file (loudness, true peak, LRA, spectrum, …) into an
//!   [`Analysis`]; [`analyze_file_within`] refuses files over a length.
//! - [`master_file`] masters one file to another with [`MasterParams`] (a [`Style`], a
//!   target, a ceiling, an [`OutputFormat`]), reporting [`Progress`] per [`Stage`] and
//!   honouring a cancellation flag, and returns a [`MasterReport`]; [`master_file_within`]
//!   also refuses files over a length.
//! - Errors are [`MasterError`] (and [`ParamError`] for a parameter out of range).
//!
//! Everything else (the chain, the DSP stages, the meters, decode and encode) is
//! `pub(crate)`. The `internals` feature makes those modules public for the crate's benches,
//! examples and decode property test (they enable it through a dev-dependency on this crate;
//! nothing in production does), as ebur128's `internal-tests` feature does. `tests/public_api.rs`
//! fails when an item is added to this list or a module is made public without the feature.

// The public API.
pub use chain::master_file_within;
pub use error::MasterError;
pub use params::{DEFAULT_TRUE_PEAK_DB, MasterParams, OutputFormat, ParamError, Style};
pub use progress::{Progress, Stage};
pub use report::{Analysis, AudioInfo, Loudness, MasterReport, SpectrumBand, StreamingPreview};

// The internals: public only with the `internals` feature. Without it, what only the tests,
// benches and examples use (accessors, the reference `LoudnessMeter`'s momentary and
// short-term readings, `simd::dispatched_isa`, …) is unused by the library itself: that is
// expected, not dead code, hence the allow on the `pub(crate)` declarations.
#[cfg(feature = "internals")]
pub mod analysis;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod analysis;
#[cfg(feature = "internals")]
pub mod chain;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod chain;
#[cfg(feature = "internals")]
pub mod decode;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod decode;
#[cfg(feature = "internals")]
pub mod dsp;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod dsp;
#[cfg(feature = "internals")]
pub mod encode;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod encode;
#[cfg(feature = "internals")]
pub mod error;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod error;
#[cfg(feature = "internals")]
pub mod meter;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod meter;
#[cfg(feature = "internals")]
pub mod params;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod params;
#[cfg(feature = "internals")]
pub mod progress;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod progress;
#[cfg(feature = "internals")]
pub mod report;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod report;
#[cfg(feature = "internals")]
pub mod run;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod run;
#[cfg(feature = "internals")]
pub mod simd;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod simd;
#[cfg(feature = "internals")]
pub mod stage;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod stage;

/// Test signals, file writers and the reference true-peak meter: test builds, and the
/// `testutil` feature (benches and examples; it implies `internals`); production code never
/// uses it.
#[cfg(feature = "testutil")]
pub mod testutil;
#[cfg(all(test, not(feature = "testutil")))]
pub(crate) mod testutil;

use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Opens `path` and decodes its first packets, proving that it is audio we can master.
/// Cheap: it never decodes the whole file.
pub fn probe(path: &Path) -> Result<AudioInfo, MasterError> {
    decode::probe(path)
}

/// [`probe`] for an upload to be mastered: also refuses audio shorter than
/// `run::MIN_DURATION_SEC` (half a second) and a declared length over `max_duration_sec`.
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
/// Runs the full chain (the `chain` module) with the `dsp` stages (`chain::MasteringStages`).
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
