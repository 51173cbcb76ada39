//! [`JobMeasurements`]: what the worker measured on a done job, stored on its row
//! (`before_json`, `after_json`) and shown by the API as the status document's `before` and
//! `after`. One type on both sides of the seam: the worker writes it, the API reads it.
//!
//! A level that is not a finite number (the loudness of silence is −∞) is written as JSON
//! `null`, as serde_json writes every non-finite number, and read back as NaN.

use mastering::MasterReport;
use serde::{Deserialize, Deserializer, Serialize};

/// Loudness and peaks of one file (the status document's `after`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoudnessMeasurements {
    /// Integrated loudness, LUFS.
    #[serde(deserialize_with = "number_or_nan")]
    pub lufs: f64,
    /// True peak, dBTP.
    #[serde(deserialize_with = "number_or_nan")]
    pub true_peak_db: f64,
    /// Highest sample magnitude, dBFS.
    #[serde(deserialize_with = "number_or_nan")]
    pub sample_peak_db: f64,
    /// Loudness range, LU.
    #[serde(deserialize_with = "number_or_nan")]
    pub lra: f64,
}

/// The upload's loudness and peaks and its shape (the status document's `before`): the
/// [`LoudnessMeasurements`] fields, then the input's own, in one flat JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputMeasurements {
    /// Integrated loudness, true and sample peak, loudness range.
    #[serde(flatten)]
    pub loudness: LoudnessMeasurements,
    /// Length, seconds.
    #[serde(deserialize_with = "number_or_nan")]
    pub duration_sec: f64,
    /// Hz.
    pub sample_rate: u32,
    pub channels: u16,
}

/// A done job's measurements of its upload (`before`) and its master (`after`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobMeasurements {
    pub before: InputMeasurements,
    pub after: LoudnessMeasurements,
}

impl From<&MasterReport> for JobMeasurements {
    fn from(report: &MasterReport) -> JobMeasurements {
        JobMeasurements {
            before: InputMeasurements {
                loudness: LoudnessMeasurements::from(&report.before),
                duration_sec: report.duration_sec,
                sample_rate: report.sample_rate,
                channels: report.channels,
            },
            after: LoudnessMeasurements::from(&report.after),
        }
    }
}

impl From<&mastering::Loudness> for LoudnessMeasurements {
    fn from(l: &mastering::Loudness) -> LoudnessMeasurements {
        LoudnessMeasurements {
            lufs: l.lufs,
            true_peak_db: l.true_peak_db,
            sample_peak_db: l.sample_peak_db,
            lra: l.lra,
        }
    }
}

/// A number, or NaN for the `null` that stands for a non-finite one.
fn number_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> MasterReport {
        let loudness = |lufs: f64| mastering::Loudness {
            lufs,
            true_peak_db: lufs + 13.0,
            sample_peak_db: lufs + 12.5,
            lra: 6.25,
        };
        MasterReport {
            before: loudness(-20.5),
            after: loudness(-14.0),
            duration_sec: 6.0,
            sample_rate: 44_100,
            channels: 2,
            stage_seconds: vec![],
            warnings: vec![],
        }
    }

    /// The stored and served format: the keys clients read, unchanged since they were
    /// written with `json!`.
    #[test]
    fn measurements_are_written_in_the_status_documents_format() {
        let m = JobMeasurements::from(&report());
        assert_eq!(
            serde_json::to_value(m.before).unwrap(),
            json!({
                "lufs": -20.5, "true_peak_db": -7.5, "sample_peak_db": -8.0, "lra": 6.25,
                "duration_sec": 6.0, "sample_rate": 44_100, "channels": 2,
            })
        );
        assert_eq!(
            serde_json::to_value(m.after).unwrap(),
            json!({ "lufs": -14.0, "true_peak_db": -1.0, "sample_peak_db": -1.5, "lra": 6.25 })
        );
    }

    /// The stored `before_json` of a silent upload (loudness −∞ written as `null`) reads back
    /// into the flattened loudness fields.
    #[test]
    fn an_inputs_measurements_read_back_from_the_stored_format() {
        let stored = json!({
            "lufs": null, "true_peak_db": -7.5, "sample_peak_db": -8.0, "lra": 6.25,
            "duration_sec": 6.0, "sample_rate": 48_000, "channels": 1,
        });
        let read: InputMeasurements = serde_json::from_value(stored.clone()).unwrap();
        assert!(read.loudness.lufs.is_nan());
        assert_eq!(read.loudness.true_peak_db, -7.5);
        assert_eq!(read.loudness.lra, 6.25);
        assert_eq!(
            (read.duration_sec, read.sample_rate, read.channels),
            (6.0, 48_000, 1)
        );
        assert_eq!(serde_json::to_value(read).unwrap(), stored);
    }

    #[test]
    fn a_level_that_is_not_finite_is_written_as_null_and_read_back() {
        let mut m = JobMeasurements::from(&report());
        m.after.sample_peak_db = f64::NEG_INFINITY;
        let text = serde_json::to_string(&m.after).unwrap();
        assert!(text.contains("\"sample_peak_db\":null"), "{text}");
        let read: LoudnessMeasurements = serde_json::from_str(&text).unwrap();
        assert!(read.sample_peak_db.is_nan());
        assert_eq!(read.lufs, m.after.lufs);
    }
}
