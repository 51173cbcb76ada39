//! Streaming a multipart file field to disk: chunk by chunk into a temp file, with a size
//! limit enforced while reading, then fsynced. The temp file is deleted when dropped unless
//! it was moved into place with [`TempUpload::persist`].

use crate::error::ApiError;
use axum::extract::multipart::{Field, MultipartError};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A file being received; deleted on drop unless persisted.
#[derive(Debug)]
pub struct TempUpload {
    path: PathBuf,
    /// Bytes received.
    pub len: u64,
    keep: bool,
}

impl TempUpload {
    /// Where the bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `dest` (creating its directory); afterwards it is no longer deleted
    /// on drop.
    pub async fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        if let Err(e) = tokio::fs::rename(&self.path, dest).await {
            // Temp dir on another file system: copy, then remove the temp file.
            tracing::debug!(error = %e, "rename failed, copying");
            tokio::fs::copy(&self.path, dest).await?;
            let _ = tokio::fs::remove_file(&self.path).await;
        }
        self.keep = true;
        crate::telemetry::record_upload_bytes(self.len);
        Ok(())
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove temp upload");
        }
    }
}

/// Maps a multipart parsing error to a 400 (or 413 when the body limit was hit).
pub fn multipart_error(e: MultipartError) -> ApiError {
    let text = e.body_text();
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(text)
    } else {
        ApiError::bad_request(
            "invalid-multipart",
            format!("invalid multipart body: {text}"),
        )
    }
}

/// Streams `field` into a new file in `temp_dir`, refusing more than `limit` bytes.
pub async fn receive_file(
    field: &mut Field<'_>,
    temp_dir: &Path,
    limit: u64,
) -> Result<TempUpload, ApiError> {
    tokio::fs::create_dir_all(temp_dir)
        .await
        .map_err(ApiError::internal)?;
    let path = temp_dir.join(format!("upload-{}.part", uuid::Uuid::new_v4().simple()));
    let mut upload = TempUpload {
        path,
        len: 0,
        keep: false,
    };
    let mut file = tokio::fs::File::create(&upload.path)
        .await
        .map_err(ApiError::internal)?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        upload.len += chunk.len() as u64;
        if upload.len > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(upload)
}

/// The 413 answer for a limit in bytes.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "the upload is larger than the limit of {} MB",
        limit / (1024 * 1024)
    ))
}

/// Reads a small text field (at most `max` bytes).
pub async fn read_text_field(field: &mut Field<'_>, max: usize) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_owned();
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > max {
            return Err(ApiError::bad_request(
                "invalid-field",
                format!("field '{name}' is too long"),
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| {
        ApiError::bad_request("invalid-field", format!("field '{name}' is not UTF-8 text"))
    })
}
