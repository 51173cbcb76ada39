//! Streaming a multipart file field to disk: chunk by chunk into a temp file, with a size
//! limit enforced while reading, then fsynced. The temp file is deleted when dropped unless
//! it was moved into place with [`TempUpload::persist`].

use crate::error::{ApiError, ErrorCode};
use crate::limits::{FRAMING_SLACK, body_error_response, find_body_error, too_large};
use multer::Field;
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

/// Longest part header (and preamble before the first boundary) accepted, in bytes. A real
/// part header is one `Content-Disposition` and one `Content-Type` line: under 1 KiB.
pub const MAX_PART_HEADER: usize = 8 * 1024;

/// Longest text field value in bytes.
pub const MAX_TEXT_FIELD: u64 = 256;

/// Longest multipart boundary (RFC 2046: 70 characters).
pub const MAX_BOUNDARY: usize = 70;

/// Opens a multipart body for streaming: only `fields` are accepted, the `file` part is
/// limited to `file_limit` bytes, text fields to [`MAX_TEXT_FIELD`], the whole stream to
/// `file_limit` + [`FRAMING_SLACK`], and every part header to [`MAX_PART_HEADER`] (multer
/// itself buffers a part header until its blank line, however long).
pub fn open_multipart(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    fields: &[&str],
    file_limit: u64,
) -> Result<multer::Multipart<'static>, ApiError> {
    let not_multipart = || {
        ApiError::new(
            ErrorCode::InvalidMultipart,
            "send the form as multipart/form-data with a boundary",
        )
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(not_multipart)?;
    let boundary = multer::parse_boundary(content_type).map_err(|_| not_multipart())?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(ApiError::new(
            ErrorCode::InvalidMultipart,
            format!("the multipart boundary must be 1 to {MAX_BOUNDARY} characters long"),
        ));
    }
    let stream = FramingGuard {
        inner: body.into_data_stream(),
        framing: Framing::new(&boundary),
        failed: false,
    };
    let constraints = multer::Constraints::new()
        .allowed_fields(fields.to_vec())
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(file_limit.saturating_add(FRAMING_SLACK))
                .per_field(MAX_TEXT_FIELD)
                .for_field("file", file_limit),
        );
    Ok(multer::Multipart::with_constraints(
        stream,
        boundary,
        constraints,
    ))
}

/// A field name as it may appear in an error message (short, printable).
fn shown(name: &str) -> String {
    let short: String = name.chars().take(40).collect();
    format!("{short:?}")
}

/// Maps a multipart error to a 4xx: 413 past the size limit, 408 for a stalled or too slow
/// body, 400 for everything malformed or unknown.
pub fn multipart_error(e: multer::Error, file_limit: u64, fields: &[&str]) -> ApiError {
    if let Some(body) = find_body_error(&e) {
        return body_error_response(body, || too_large(file_limit));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(framing) = err.downcast_ref::<FramingError>() {
            return ApiError::new(ErrorCode::InvalidMultipart, framing.to_string());
        }
        source = err.source();
    }
    match e {
        multer::Error::StreamSizeExceeded { .. } => too_large(file_limit),
        multer::Error::FieldSizeExceeded { field_name, limit } => match field_name.as_deref() {
            Some("file") => too_large(file_limit),
            name => ApiError::new(
                ErrorCode::InvalidField,
                format!(
                    "field {} is longer than {limit} bytes",
                    shown(name.unwrap_or(""))
                ),
            ),
        },
        multer::Error::UnknownField { field_name } => ApiError::new(
            ErrorCode::UnknownField,
            format!(
                "unknown form field {}: this route accepts {}",
                shown(field_name.as_deref().unwrap_or("")),
                fields.join(", ")
            ),
        ),
        other => ApiError::new(
            ErrorCode::InvalidMultipart,
            format!("invalid multipart body: {other}"),
        ),
    }
}

/// A violation of the multipart framing bounds.
#[derive(Debug, thiserror::Error)]
#[error("a multipart part header (or the preamble) is longer than {MAX_PART_HEADER} bytes")]
pub struct FramingError;

/// Where a [`Framing`] scanner is in the multipart body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the first boundary.
    Preamble,
    /// Just after a boundary: a part header, or `--` (the end), follows.
    AfterBoundary,
    /// Inside a part header, up to its blank line.
    Header,
    /// Inside a part's content.
    Data,
    /// After the closing boundary (multer reads no further).
    Epilogue,
}

/// Follows the multipart framing of the bytes going to multer and refuses a preamble or a
/// part header longer than [`MAX_PART_HEADER`]. Keeps only the few bytes a delimiter split
/// across two chunks needs.
#[derive(Debug)]
struct Framing {
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    stage: Stage,
    /// Bytes held over from the previous chunk (shorter than the delimiter).
    carry: Vec<u8>,
    /// Bytes of the preamble or of the current part header so far.
    header_len: usize,
}

impl Framing {
    fn new(boundary: &str) -> Framing {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Framing {
            delimiter,
            stage: Stage::Preamble,
            // The body may start with the boundary itself, without a CRLF before it.
            carry: b"\r\n".to_vec(),
            header_len: 0,
        }
    }

    fn grow(&mut self, n: usize) -> Result<(), FramingError> {
        self.header_len += n;
        if self.header_len > MAX_PART_HEADER {
            Err(FramingError)
        } else {
            Ok(())
        }
    }

    /// Scans the next chunk of the body.
    fn feed(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        if self.stage == Stage::Epilogue {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.stage {
                Stage::Preamble | Stage::Data => {
                    match memchr::memmem::find(rest, &self.delimiter) {
                        Some(i) => {
                            if self.stage == Stage::Preamble {
                                self.grow(i)?;
                            }
                            pos += i + self.delimiter.len();
                            self.stage = Stage::AfterBoundary;
                        }
                        None => {
                            let keep = rest.len().min(self.delimiter.len() - 1);
                            if self.stage == Stage::Preamble {
                                self.grow(rest.len() - keep)?;
                            }
                            self.carry = rest[rest.len() - keep..].to_vec();
                            return Ok(());
                        }
                    }
                }
                Stage::AfterBoundary => {
                    if rest.len() < 2 {
                        self.carry = rest.to_vec();
                        return Ok(());
                    }
                    if rest.starts_with(b"--") {
                        self.stage = Stage::Epilogue;
                        return Ok(());
                    }
                    self.stage = Stage::Header;
                    self.header_len = 0;
                }
                Stage::Header => match memchr::memmem::find(rest, b"\r\n\r\n") {
                    Some(i) => {
                        self.grow(i + 4)?;
                        pos += i + 4;
                        self.stage = Stage::Data;
                    }
                    None => {
                        let keep = rest.len().min(3);
                        self.grow(rest.len() - keep)?;
                        self.carry = rest[rest.len() - keep..].to_vec();
                        return Ok(());
                    }
                },
                Stage::Epilogue => return Ok(()),
            }
        }
    }
}

/// The body stream handed to multer, checked by a [`Framing`] scanner on the way.
struct FramingGuard {
    inner: axum::body::BodyDataStream,
    framing: Framing,
    failed: bool,
}

impl futures::Stream for FramingGuard {
    type Item = Result<axum::body::Bytes, axum::BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.framing.feed(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(e) => {
                    this.failed = true;
                    Poll::Ready(Some(Err(Box::new(e))))
                }
            },
            Poll::Ready(Some(Err(e))) => {
                this.failed = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Streams `field` into a new file in `temp_dir`, refusing more than `limit` bytes.
pub async fn receive_file(
    field: &mut Field<'_>,
    temp_dir: &Path,
    limit: u64,
    fields: &[&str],
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
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, limit, fields))?
    {
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

/// Reads a small text field (at most [`MAX_TEXT_FIELD`] bytes; multer enforces it).
pub async fn read_text_field(
    field: &mut Field<'_>,
    file_limit: u64,
    fields: &[&str],
) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_owned();
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, file_limit, fields))?
    {
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("field '{name}' is not UTF-8 text"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, header_pad: usize, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"style\"\r\n\r\nedm\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
                 X-Pad: {}\r\n\r\n",
                "p".repeat(header_pad)
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    fn scan(body: &[u8], chunk: usize) -> Result<Stage, FramingError> {
        let mut framing = Framing::new("XB");
        for piece in body.chunks(chunk) {
            framing.feed(piece)?;
        }
        Ok(framing.stage)
    }

    #[test]
    fn framing_accepts_real_forms_in_any_chunking() {
        // Content that almost contains the delimiter, split at every possible place.
        let data = b"\r\n-\r\n--X\r\n--\r\n\r\n".repeat(1000);
        let body = form("XB", 10, &data);
        for chunk in [1, 2, 3, 5, 7, 64, 4096, body.len()] {
            assert_eq!(
                scan(&body, chunk).unwrap(),
                Stage::Epilogue,
                "chunk {chunk}"
            );
        }
        // Headers up to the bound pass.
        let body = form("XB", MAX_PART_HEADER - 200, b"abc");
        assert_eq!(scan(&body, 100).unwrap(), Stage::Epilogue);
    }

    #[test]
    fn framing_refuses_long_headers_and_preambles() {
        let body = form("XB", MAX_PART_HEADER, b"abc");
        for chunk in [1, 1000, body.len()] {
            assert!(scan(&body, chunk).is_err(), "chunk {chunk}");
        }
        // A part header that never ends is refused after the bound, not buffered.
        let mut framing = Framing::new("XB");
        framing
            .feed(b"--XB\r\nContent-Disposition: form-data; name=\"file\"")
            .unwrap();
        let mut fed = 0;
        let refused = (0..100).any(|_| {
            fed += 1024;
            framing.feed(&[b'a'; 1024]).is_err()
        });
        assert!(refused && fed <= MAX_PART_HEADER + 1024, "{fed}");
        // So is a preamble without a boundary.
        let mut framing = Framing::new("XB");
        let refused = (0..100).any(|_| framing.feed(&[b'-'; 1024]).is_err());
        assert!(refused);
        assert!(framing.carry.len() < 8, "{}", framing.carry.len());
    }
}
