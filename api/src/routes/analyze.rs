//! `POST /api/v2/analyze`: measure an uploaded file; nothing is kept. Open to anyone, so
//! it has a rate limit of its own (`MAGIC_MASTER_ANALYZE_RATE_LIMIT`) and the duration cap
//! of mastering (`MAGIC_MASTER_MAX_DURATION_SECONDS`).

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::routes::master::{media_error, read_form, require_file};
use crate::security::{client_ip, rate_limited};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Serialize;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// The one field of the `/api/v2/analyze` form.
pub const ANALYZE_FIELDS: &[&str] = &["file"];

/// The `/api/v2/analyze` form ([`ANALYZE_FIELDS`]), as the OpenAPI document describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnalyzeForm {
    /// WAV, AIFF, FLAC, MP3, OGG/Vorbis, M4A/AAC/ALAC.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// 200 of `POST /api/v2/analyze`: what [`mastering::Analysis`] measured.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisReport {
    /// Integrated loudness, LUFS.
    pub lufs: f64,
    /// True peak, dBTP.
    pub true_peak_db: f64,
    /// Highest sample magnitude, dBFS.
    pub sample_peak_db: f64,
    /// Loudness range, LU.
    pub lra: f64,
    pub duration_sec: f64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Peak-to-loudness ratio: true peak minus integrated loudness, dB.
    pub plr_db: f64,
    /// Crest factor: sample peak over RMS, dB.
    pub crest_factor_db: f64,
    /// L/R correlation, -1 ..= 1 (1.0 for mono).
    pub stereo_correlation: f64,
    /// Long-term average spectrum in octave bands.
    pub spectrum: Vec<SpectrumBand>,
    /// What streaming services would do to this file.
    pub streaming_preview: Vec<StreamingPreview>,
}

/// One octave band of the long-term average spectrum.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpectrumBand {
    /// Centre frequency, Hz.
    pub hz: f64,
    /// Level relative to the 1 kHz band, dB.
    pub db: f64,
}

/// The gain a streaming platform's loudness normalisation would apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamingPreview {
    pub platform: String,
    pub target_lufs: f64,
    pub gain_applied_db: f64,
}

impl From<mastering::Analysis> for AnalysisReport {
    fn from(a: mastering::Analysis) -> AnalysisReport {
        AnalysisReport {
            lufs: a.lufs,
            true_peak_db: a.true_peak_db,
            sample_peak_db: a.sample_peak_db,
            lra: a.lra,
            duration_sec: a.duration_sec,
            sample_rate: a.sample_rate,
            channels: a.channels,
            plr_db: a.plr_db,
            crest_factor_db: a.crest_factor_db,
            stereo_correlation: a.stereo_correlation,
            spectrum: a
                .spectrum
                .iter()
                .map(|b| SpectrumBand { hz: b.hz, db: b.db })
                .collect(),
            streaming_preview: a
                .streaming_preview
                .into_iter()
                .map(|p| StreamingPreview {
                    platform: p.platform,
                    target_lufs: p.target_lufs,
                    gain_applied_db: p.gain_applied_db,
                })
                .collect(),
        }
    }
}

/// `POST /api/v2/analyze`.
#[utoipa::path(
    post,
    path = "/api/v2/analyze",
    tag = "mastering",
    summary = "Measure a file (nothing is kept)",
    description = "The upload is streamed to a temp file, measured and deleted; nothing is kept. The form may carry only the fields listed here, each once (400 unknown-field, duplicate-field; a text field over 256 bytes: 400 invalid-field; a part header over 8 KiB or a malformed body: 400 invalid-multipart). Uploads in flight are capped per client, an IPv4 address or an IPv6 /64 (MAGIC_MASTER_UPLOADS_PER_IP, 429 too-many-uploads) and in all (MAGIC_MASTER_UPLOADS_MAX, 503 uploads-busy), both with Retry-After; a partial upload is deleted at once when it fails or its client leaves. Open to anyone, so it has a rate limit of its own (MAGIC_MASTER_ANALYZE_RATE_LIMIT a minute per client, default 6: 429 rate-limited with Retry-After) and the duration cap of mastering (413 too-long).",
    request_body(content = AnalyzeForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Analysis", body = AnalysisReport),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 413, description = "Too large (`too-large`, `too-long`)", body = ErrorBody),
        (status = 415, description = "Not audio we can read (`unsupported-media`)", body = ErrorBody),
        (status = 408, description = "The body was too slow (`body-timeout`, `body-too-slow`)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "Unavailable, with `Retry-After` where retrying helps", body = ErrorBody),
    ),
)]
pub async fn analyze(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AnalysisReport>, ApiError> {
    // Counted before the upload is received: a refused client costs no disk and no CPU.
    if let Some(limiter) = &state.security.analyze_limiter {
        let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
        let ip = client_ip(peer, &headers, &state.security.trusted_proxies);
        limiter.check(ip).map_err(rate_limited)?;
    }
    let mut form = read_form(&state, &headers, body, ANALYZE_FIELDS).await?;
    let (upload, _name) = require_file(&mut form)?;
    let path = upload.path().to_path_buf();
    let max_duration = state.settings.max_duration_seconds as f64;
    let analysis =
        tokio::task::spawn_blocking(move || mastering::analyze_file_within(&path, max_duration))
            .await
            .map_err(ApiError::internal)?
            .map_err(media_error)?;
    drop(upload);
    Ok(Json(AnalysisReport::from(analysis)))
}
