//! Where files live under the data directory:
//! `uploads/<job_id>/original.<ext>` and `results/<job_id>/result.<ext>`. Every name is
//! fixed: a client's file name never reaches the file system (it appears only in the
//! download's `Content-Disposition`), so no name can be too long or odd for it.

use std::path::{Path, PathBuf};

/// Directory of a job's upload.
pub fn upload_dir(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join("uploads").join(job_id)
}

/// The stored upload of a job.
pub fn upload_path(data_dir: &Path, job_id: &str, ext: &str) -> PathBuf {
    upload_dir(data_dir, job_id).join(format!("original.{ext}"))
}

/// Directory of a job's results.
pub fn result_dir(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join("results").join(job_id)
}

/// The mastered file of a job.
pub fn result_path(data_dir: &Path, job_id: &str, ext: &str) -> PathBuf {
    result_dir(data_dir, job_id).join(format!("result.{ext}"))
}

/// A lower-case file extension made of 1–5 ASCII letters or digits, taken from a client's
/// file name; `None` when it has none or it looks odd.
pub fn safe_extension(file_name: &str) -> Option<String> {
    let (_, ext) = file_name.rsplit_once('.')?;
    let ok = (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| ext.to_ascii_lowercase())
}

/// The base of a client's file name (no directories, no extension), reduced to characters
/// safe in a `Content-Disposition` header; `"audio"` when nothing is left.
pub fn safe_base_name(file_name: &str) -> String {
    let last = file_name.rsplit(['/', '\\']).next().unwrap_or("");
    let base = match last.rsplit_once('.') {
        Some((b, _)) if !b.is_empty() => b,
        _ => last,
    };
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').to_owned();
    if cleaned.is_empty() {
        "audio".to_owned()
    } else {
        cleaned
    }
}

/// Removes a job's upload and result directories (a cancelled job's at once, an expired
/// job's by the retention sweeper), ignoring those already gone; tries both, returns the
/// first error.
pub fn remove_job_files(data_dir: &Path, job_id: &str) -> std::io::Result<()> {
    let upload = remove_dir_if_exists(&upload_dir(data_dir, job_id));
    let result = remove_dir_if_exists(&result_dir(data_dir, job_id));
    upload.and(result)
}

/// Removes a directory tree, ignoring "not found".
pub fn remove_dir_if_exists(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(safe_extension("Song.WAV").as_deref(), Some("wav"));
        assert_eq!(safe_extension("noext"), None);
        assert_eq!(safe_extension("x.w/av"), None);
        assert_eq!(safe_base_name("../../My \"Song\".wav"), "My _Song_");
        assert_eq!(safe_base_name("C:\\mix\\take 2.flac"), "take 2");
        assert_eq!(safe_base_name(".wav"), "wav");
        assert_eq!(safe_base_name("///"), "audio");
    }
}
