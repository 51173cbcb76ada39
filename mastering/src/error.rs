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
    /// The input is too short to be measured or mastered (under 0.5 s).
    #[error("the audio is too short: {0}")]
    TooShort(String),
    /// The input lasts longer than the service accepts (declared by its header or found
    /// while decoding).
    #[error("the audio is too long: {0}")]
    TooLong(String),
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
    /// True when retrying the same input with the same parameters cannot succeed. Only a
    /// cancellation (the worker is stopping) and file-system errors that go away by
    /// themselves are transient: see [`io_is_transient`].
    pub fn is_permanent(&self) -> bool {
        match self {
            MasterError::Io(e) => !io_is_transient(e),
            MasterError::Cancelled => false,
            _ => true,
        }
    }

    /// True when the input itself cannot be mastered (not audio, damaged, too short, too
    /// long, silent), as opposed to a failure of the service (disk, encoder, a bug).
    pub fn is_input_fault(&self) -> bool {
        matches!(
            self,
            MasterError::Unsupported(_)
                | MasterError::Corrupt(_)
                | MasterError::TooShort(_)
                | MasterError::TooLong(_)
                | MasterError::Silent(_)
        )
    }
}

/// Whether a file-system error may go away if the same job runs again a little later.
///
/// Transient: a full disk or quota (the retention sweeper and other jobs' temp files free
/// space), out of memory, file descriptors or processes, interrupted or timed-out calls, a
/// busy resource, a stale network handle, a failing device. Permanent: everything a second
/// run would meet again: a name or path the file system refuses (`ENAMETOOLONG`, invalid
/// name), missing permission or a read-only file system, a path component that is not a
/// directory (or is one), a missing file, a file larger than the file system allows. Those
/// are the service's configuration or the job's own paths: retrying would only burn the
/// chain's CPU again.
pub fn io_is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull
        | K::QuotaExceeded
        | K::OutOfMemory
        | K::Interrupted
        | K::TimedOut
        | K::WouldBlock
        | K::ResourceBusy
        | K::StaleNetworkFileHandle
        | K::ExecutableFileBusy
        | K::Deadlock
        | K::WriteZero => true,
        K::InvalidFilename
        | K::PermissionDenied
        | K::ReadOnlyFilesystem
        | K::NotADirectory
        | K::IsADirectory
        | K::NotFound
        | K::AlreadyExists
        | K::DirectoryNotEmpty
        | K::FileTooLarge
        | K::CrossesDevices
        | K::TooManyLinks
        | K::InvalidInput
        | K::InvalidData
        | K::Unsupported
        | K::UnexpectedEof => false,
        // EMFILE, ENFILE, EIO and the rest: the process or the device may recover.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> MasterError {
        MasterError::Io(std::io::Error::from_raw_os_error(code))
    }

    #[test]
    fn file_system_errors_are_classified() {
        // ENAMETOOLONG, EACCES, EPERM, EROFS, ENOTDIR, EISDIR, ENOENT, EFBIG: a rerun meets
        // them again.
        for code in [36, 13, 1, 30, 20, 21, 2, 27] {
            assert!(os(code).is_permanent(), "errno {code}");
        }
        // ENOSPC, EDQUOT, ENOMEM, EINTR, EAGAIN, EBUSY, EMFILE, ENFILE, EIO: they may pass.
        for code in [28, 122, 12, 4, 11, 16, 24, 23, 5] {
            assert!(!os(code).is_permanent(), "errno {code}");
        }
        assert!(!MasterError::Cancelled.is_permanent());
        for e in [
            MasterError::TooLong("x".into()),
            MasterError::Silent("x".into()),
            MasterError::Corrupt("x".into()),
        ] {
            assert!(e.is_permanent() && e.is_input_fault(), "{e}");
        }
        for e in [MasterError::Encode("x".into()), os(28), os(36)] {
            assert!(!e.is_input_fault(), "{e}");
        }
    }
}
