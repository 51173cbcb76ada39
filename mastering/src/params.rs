//! Validated mastering parameters: style, loudness target, true-peak ceiling, output format.
//!
//! Every value is checked by a `parse`/`new` that returns an error naming the problem, so a
//! `MasterParams` that exists is always a valid request.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A mastering style: a documented parameter set with its own loudness target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    Standard,
    Edm,
    Hiphop,
    Classical,
    Podcast,
    Lofi,
    HouseBasic,
    DryVocal,
}

impl Style {
    /// Every style, in the order the API lists them.
    pub const ALL: [Style; 8] = [
        Style::Standard,
        Style::Edm,
        Style::Hiphop,
        Style::Classical,
        Style::Podcast,
        Style::Lofi,
        Style::HouseBasic,
        Style::DryVocal,
    ];

    /// The identifier used by the API and the command line (`house_basic`, …).
    pub fn name(self) -> &'static str {
        match self {
            Style::Standard => "standard",
            Style::Edm => "edm",
            Style::Hiphop => "hiphop",
            Style::Classical => "classical",
            Style::Podcast => "podcast",
            Style::Lofi => "lofi",
            Style::HouseBasic => "house_basic",
            Style::DryVocal => "dry_vocal",
        }
    }

    /// The style's default integrated loudness target in LUFS.
    pub fn target_lufs(self) -> f64 {
        match self {
            Style::Standard => -14.0,
            Style::Edm => -9.0,
            Style::Hiphop => -13.0,
            Style::Classical => -18.0,
            Style::Podcast => -16.0,
            Style::Lofi => -18.0,
            Style::HouseBasic => -10.0,
            Style::DryVocal => -14.0,
        }
    }

    /// One line for a person choosing a style.
    pub fn description(self) -> &'static str {
        match self {
            Style::Standard => "Balanced, streaming-ready master for most music (-14 LUFS).",
            Style::Edm => "Loud and dense for club and electronic music, tight low end (-9 LUFS).",
            Style::Hiphop => "Punchy low end and present vocals for hip-hop and rap (-13 LUFS).",
            Style::Classical => "Gentle: keeps the dynamics and the natural tone (-18 LUFS).",
            Style::Podcast => "Clear, even speech at the podcast standard (-16 LUFS).",
            Style::Lofi => "Warm and soft, rolled-off highs, relaxed dynamics (-18 LUFS).",
            Style::HouseBasic => "Four-on-the-floor weight with open highs for house (-10 LUFS).",
            Style::DryVocal => "Natural vocal-forward balance with little processing (-14 LUFS).",
        }
    }

    /// Parses a style identifier; the error lists the valid ones.
    pub fn parse(s: &str) -> Result<Style, ParamError> {
        let wanted = s.trim().to_ascii_lowercase();
        Style::ALL
            .into_iter()
            .find(|style| style.name() == wanted)
            .ok_or_else(|| {
                ParamError(format!(
                    "unknown style '{s}'; expected one of: {}",
                    Style::ALL.map(Style::name).join(", ")
                ))
            })
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parameter that failed validation; the message is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// Allowed range of a loudness target, LUFS.
pub const TARGET_LUFS_RANGE: (f64, f64) = (-30.0, -5.0);
/// Allowed range of a true-peak ceiling, dBTP.
pub const TRUE_PEAK_RANGE: (f64, f64) = (-9.0, 0.0);
/// Default true-peak ceiling, dBTP.
pub const DEFAULT_TRUE_PEAK_DB: f64 = -1.0;
/// Allowed MP3 bit rates, kb/s.
pub const MP3_BITRATES: [u32; 4] = [128, 192, 256, 320];

/// Checks a loudness target in LUFS.
pub fn validate_target_lufs(value: f64) -> Result<f64, ParamError> {
    let (lo, hi) = TARGET_LUFS_RANGE;
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ParamError(format!(
            "target_lufs must be a number from {lo} to {hi}, got {value}"
        )))
    }
}

/// Checks a true-peak ceiling in dBTP.
pub fn validate_true_peak_db(value: f64) -> Result<f64, ParamError> {
    let (lo, hi) = TRUE_PEAK_RANGE;
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ParamError(format!(
            "true_peak_db must be a number from {lo} to {hi}, got {value}"
        )))
    }
}

/// The encoded output: container/codec and its resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum OutputFormat {
    /// PCM WAV, 16-bit (TPDF-dithered) or 24-bit.
    Wav { bit_depth: u16 },
    /// FLAC, 16-bit (TPDF-dithered) or 24-bit.
    Flac { bit_depth: u16 },
    /// MP3 (LAME, CBR) at 128, 192, 256 or 320 kb/s.
    Mp3 { bitrate_kbps: u32 },
}

impl OutputFormat {
    /// Builds a format from the API's fields: `out_format`, optional `bit_depth` and
    /// `mp3_bitrate`. Defaults: 16-bit WAV, 24-bit FLAC, 320 kb/s MP3.
    pub fn from_parts(
        format: &str,
        bit_depth: Option<u16>,
        mp3_bitrate: Option<u32>,
    ) -> Result<OutputFormat, ParamError> {
        let check_depth = |depth: u16| {
            if depth == 16 || depth == 24 {
                Ok(depth)
            } else {
                Err(ParamError(format!(
                    "bit_depth must be 16 or 24, got {depth}"
                )))
            }
        };
        match format.trim().to_ascii_lowercase().as_str() {
            "wav" => Ok(OutputFormat::Wav {
                bit_depth: check_depth(bit_depth.unwrap_or(16))?,
            }),
            "flac" => Ok(OutputFormat::Flac {
                bit_depth: check_depth(bit_depth.unwrap_or(24))?,
            }),
            "mp3" => {
                let bitrate = mp3_bitrate.unwrap_or(320);
                if MP3_BITRATES.contains(&bitrate) {
                    Ok(OutputFormat::Mp3 {
                        bitrate_kbps: bitrate,
                    })
                } else {
                    Err(ParamError(format!(
                        "mp3_bitrate must be one of 128, 192, 256, 320, got {bitrate}"
                    )))
                }
            }
            other => Err(ParamError(format!(
                "unsupported out_format '{other}'; expected wav, flac or mp3"
            ))),
        }
    }

    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Wav { .. } => "wav",
            OutputFormat::Flac { .. } => "flac",
            OutputFormat::Mp3 { .. } => "mp3",
        }
    }

    /// The short name used by the API (`wav`, `flac`, `mp3`).
    pub fn name(self) -> &'static str {
        self.extension()
    }

    /// HTTP content type of the encoded file.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Wav { .. } => "audio/wav",
            OutputFormat::Flac { .. } => "audio/flac",
            OutputFormat::Mp3 { .. } => "audio/mpeg",
        }
    }
}

/// One complete, validated mastering request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MasterParams {
    pub style: Style,
    /// Integrated loudness target, LUFS, within [`TARGET_LUFS_RANGE`].
    pub target_lufs: f64,
    /// True-peak ceiling, dBTP, within [`TRUE_PEAK_RANGE`].
    pub true_peak_db: f64,
    pub format: OutputFormat,
}

impl MasterParams {
    /// Validates and builds a request; `target_lufs` defaults to the style's target and
    /// `true_peak_db` to -1 dBTP.
    pub fn new(
        style: Style,
        target_lufs: Option<f64>,
        true_peak_db: Option<f64>,
        format: OutputFormat,
    ) -> Result<MasterParams, ParamError> {
        Ok(MasterParams {
            style,
            target_lufs: validate_target_lufs(target_lufs.unwrap_or(style.target_lufs()))?,
            true_peak_db: validate_true_peak_db(true_peak_db.unwrap_or(DEFAULT_TRUE_PEAK_DB))?,
            format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_round_trip_through_their_names() {
        for style in Style::ALL {
            assert_eq!(Style::parse(style.name()).unwrap(), style);
        }
        let err = Style::parse("foo").unwrap_err();
        assert!(err.0.contains("house_basic"), "{err}");
    }

    #[test]
    fn ranges_are_enforced() {
        assert!(validate_target_lufs(-100.0).is_err());
        assert!(validate_target_lufs(f64::NAN).is_err());
        assert_eq!(validate_target_lufs(-5.0).unwrap(), -5.0);
        assert!(validate_true_peak_db(0.5).is_err());
        assert!(validate_true_peak_db(-9.0).is_ok());
    }

    #[test]
    fn output_formats_have_documented_defaults() {
        assert_eq!(
            OutputFormat::from_parts("wav", None, None).unwrap(),
            OutputFormat::Wav { bit_depth: 16 }
        );
        assert_eq!(
            OutputFormat::from_parts("FLAC", None, None).unwrap(),
            OutputFormat::Flac { bit_depth: 24 }
        );
        assert_eq!(
            OutputFormat::from_parts("mp3", None, None).unwrap(),
            OutputFormat::Mp3 { bitrate_kbps: 320 }
        );
        assert!(OutputFormat::from_parts("exe", None, None).is_err());
        assert!(OutputFormat::from_parts("wav", Some(8), None).is_err());
        assert!(OutputFormat::from_parts("mp3", None, Some(100)).is_err());
    }
}
