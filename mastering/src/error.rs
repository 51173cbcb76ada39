//! Errors of the mastering library.

use thiserror::Error;

/// Why mastering, probing or analysing a file failed.
///
/// [`MasterError::is_permanent`] tells the worker whether a retry could ever help.
#[derive(Debug, Error)]
pub enum MasterError {
    /// The input is not audio we can read (unknown container, unsupported codec such as Opus).
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// The input looked like audio but is damaged (truncated, corrupt frames, no samples).
    #[error("the audio file is damaged: {0}")]
    Corrupt(String),
    /// The input is too short to be measured or mastered (under 3 s for loudness).
    #[error("the audio is too short: {0}")]
    TooShort(String),
    /// The input is silent or nearly so: no sensible gain exists.
    #[error("the audio is silent or nearly silent: {0}")]
    Silent(String),
    /// A parameter is out of range (validated newtypes normally catch this first).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Encoding the output failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// Reading or writing a file failed (disk full, permissions, vanished file).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The caller set the cancellation flag.
    #[error("cancelled")]
    Cancelled,
}

impl MasterError {
    /// True when retrying the same input with the same parameters cannot succeed.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, MasterError::Io(_) | MasterError::Cancelled)
    }
}
