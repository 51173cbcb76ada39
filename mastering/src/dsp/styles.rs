//! Per-style processing parameters, kept as data: one row of [`STYLE_TABLE`] per
//! [`Style`], no style-specific code paths.
//!
//! # Where the numbers come from
//!
//! These are **hand-tuned starting points**, not measurements of a corpus we ran here. They
//! are informed by:
//!
//! - published long-term average spectra of commercial masters (e.g. Pestana, Ma, Reiss &
//!   Barbosa, "Spectral characteristics of popular commercial recordings 1950–2010", AES
//!   135th Convention, 2013), which show modern pop/rock/electronic masters falling roughly
//!   3–4.5 dB per octave above 1 kHz in octave-band power, with a low-end bump of a few dB
//!   around 60–125 Hz (more for EDM, hip-hop and house);
//! - classical recordings being flatter in the lows and darker (steeper) in the highs;
//! - the long-term average speech spectrum (Byrne et al., 1994: a maximum around
//!   250–500 Hz, falling ~5 dB per octave above 1 kHz, little below 100 Hz) for `podcast`
//!   and `dry_vocal`, with the presence region (2–4 kHz) kept slightly fuller for clarity;
//! - lo-fi's deliberately rolled-off highs;
//! - EBU R128 / AES TD1004 (podcast loudness around -16 LUFS, gentle dynamics for speech)
//!   and common mastering practice for compressor settings: low ratios, slow attack and
//!   release, thresholds a few LU above the programme's integrated loudness, so only the
//!   louder passages are compressed.
//!
//! Target curves are octave-band **power** levels in dB relative to the 1 kHz band (pink
//! noise is flat), at the centres of [`BAND_CENTRES_HZ`]. `classical` and `podcast` are
//! tuned to keep at least 70 % of the input's loudness range (tested in
//! `dsp::quality_tests`). Only `edm` and `house_basic` ask for extra width; every other
//! style keeps width 1.0 (the stereo image is untouched).

use super::dynamics::CompressorSettings;
use super::limiter::LimiterSettings;
use crate::params::Style;

/// Centre frequencies of the octave bands of the target curves, Hz.
pub const BAND_CENTRES_HZ: [f64; 10] = [
    31.25, 62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0,
];

/// The processing parameters of one style.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StyleParams {
    /// The style this row belongs to.
    pub style: Style,
    /// Target long-term spectrum: octave-band power, dB re the 1 kHz band, at
    /// [`BAND_CENTRES_HZ`].
    pub target_db: [f64; 10],
    /// Fraction of the difference to the target that the EQ corrects (0..=1).
    pub eq_amount: f64,
    /// Compressor settings; the threshold is relative to the measured integrated loudness.
    pub compressor: CompressorSettings,
    /// M/S width above 120 Hz (1.0 = untouched).
    pub width: f64,
    /// Limiter release time constant, ms.
    pub limiter_release_ms: f64,
}

const fn comp(
    threshold_rel_db: f64,
    ratio: f64,
    knee_db: f64,
    attack_ms: f64,
    release_ms: f64,
    rms_ms: f64,
) -> CompressorSettings {
    CompressorSettings {
        threshold_rel_db,
        ratio,
        knee_db,
        attack_ms,
        release_ms,
        rms_ms,
    }
}

/// One level of limiter drive: faster settings that let a dense signal get louder under the
/// same ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterDrive {
    /// Look-ahead, ms.
    pub lookahead_ms: f64,
    /// Hold, ms (0: the look-ahead plus the interpolator support).
    pub hold_ms: f64,
    /// Release time constant, ms (the style's when that is faster).
    pub release_ms: f64,
}

/// Drive levels 1.. of the limiter, used only when the loudness loop finds that the style's
/// own limiter (level 0, 25 ms hold) cannot reach the target under the ceiling: its hold
/// keeps the gain down between the peaks of dense material, so loudness stops rising with
/// gain (about 9 dB of PLR on dense noise-like mixes). Each level shortens the hold and the
/// release, trading a little low-frequency modulation for loudness; none hard-clips (the
/// gain is always a smooth ramp over the look-ahead). Level 4 reaches a PLR of about 4 dB
/// (-5 LUFS at -1 dBTP) on the same material.
pub const LIMITER_DRIVE: [LimiterDrive; 4] = [
    LimiterDrive {
        lookahead_ms: 3.0,
        hold_ms: 0.0,
        release_ms: 60.0,
    },
    LimiterDrive {
        lookahead_ms: 2.0,
        hold_ms: 0.0,
        release_ms: 30.0,
    },
    LimiterDrive {
        lookahead_ms: 1.5,
        hold_ms: 0.0,
        release_ms: 15.0,
    },
    LimiterDrive {
        lookahead_ms: 1.0,
        hold_ms: 0.0,
        release_ms: 10.0,
    },
];

/// One row per style, in the order of [`Style::ALL`].
pub const STYLE_TABLE: [StyleParams; 8] = [
    StyleParams {
        style: Style::Standard,
        target_db: [1.0, 4.0, 4.0, 2.5, 1.0, 0.0, -3.0, -6.5, -10.5, -18.0],
        eq_amount: 0.5,
        compressor: comp(2.0, 1.5, 6.0, 30.0, 250.0, 50.0),
        width: 1.0,
        limiter_release_ms: 150.0,
    },
    StyleParams {
        style: Style::Edm,
        target_db: [5.0, 7.0, 5.0, 2.5, 0.5, 0.0, -2.5, -5.5, -9.0, -15.0],
        eq_amount: 0.6,
        compressor: comp(0.0, 2.5, 6.0, 15.0, 150.0, 30.0),
        width: 1.15,
        limiter_release_ms: 80.0,
    },
    StyleParams {
        style: Style::Hiphop,
        target_db: [5.0, 7.5, 5.0, 2.0, 0.5, 0.0, -3.0, -6.5, -10.5, -18.0],
        eq_amount: 0.6,
        compressor: comp(1.0, 2.0, 6.0, 25.0, 200.0, 40.0),
        width: 1.0,
        limiter_release_ms: 100.0,
    },
    StyleParams {
        style: Style::Classical,
        target_db: [-6.0, -1.0, 1.5, 2.0, 1.0, 0.0, -3.5, -7.5, -12.0, -22.0],
        eq_amount: 0.3,
        compressor: comp(8.0, 1.25, 8.0, 50.0, 500.0, 80.0),
        width: 1.0,
        limiter_release_ms: 300.0,
    },
    StyleParams {
        style: Style::Podcast,
        target_db: [-18.0, -8.0, 0.0, 3.0, 3.0, 0.0, -2.5, -5.5, -11.0, -20.0],
        eq_amount: 0.5,
        compressor: comp(3.0, 1.8, 6.0, 20.0, 300.0, 50.0),
        width: 1.0,
        limiter_release_ms: 200.0,
    },
    StyleParams {
        style: Style::Lofi,
        target_db: [0.0, 3.0, 4.0, 3.0, 1.5, 0.0, -4.5, -10.0, -17.0, -28.0],
        eq_amount: 0.6,
        compressor: comp(1.0, 1.8, 8.0, 40.0, 300.0, 60.0),
        width: 1.0,
        limiter_release_ms: 200.0,
    },
    StyleParams {
        style: Style::HouseBasic,
        target_db: [4.0, 6.5, 4.5, 2.0, 0.5, 0.0, -2.5, -5.5, -9.0, -15.0],
        eq_amount: 0.6,
        compressor: comp(0.0, 2.2, 6.0, 20.0, 180.0, 40.0),
        width: 1.1,
        limiter_release_ms: 90.0,
    },
    StyleParams {
        style: Style::DryVocal,
        target_db: [-10.0, -3.0, 1.0, 2.5, 2.0, 0.0, -2.5, -6.0, -10.0, -19.0],
        eq_amount: 0.4,
        compressor: comp(3.0, 1.4, 6.0, 25.0, 250.0, 50.0),
        width: 1.0,
        limiter_release_ms: 150.0,
    },
];

impl StyleParams {
    /// The parameter row of `style`.
    pub fn of(style: Style) -> &'static StyleParams {
        STYLE_TABLE
            .iter()
            .find(|row| row.style == style)
            .unwrap_or(&STYLE_TABLE[0])
    }

    /// The target curve as `(centre Hz, dB re 1 kHz)` points.
    pub fn target_curve(&self) -> [(f64, f64); 10] {
        std::array::from_fn(|i| (BAND_CENTRES_HZ[i], self.target_db[i]))
    }

    /// Limiter settings for this style at a true-peak ceiling (dBTP).
    pub fn limiter_settings(&self, ceiling_dbtp: f64) -> LimiterSettings {
        self.limiter_settings_driven(ceiling_dbtp, 0)
    }

    /// Limiter settings at drive level `drive` (0 = the style's own; see
    /// [`LIMITER_DRIVE`]; levels beyond the last use the last).
    pub fn limiter_settings_driven(&self, ceiling_dbtp: f64, drive: usize) -> LimiterSettings {
        let base = LimiterSettings {
            release_ms: self.limiter_release_ms,
            ..LimiterSettings::with_ceiling(ceiling_dbtp)
        };
        match drive.checked_sub(1) {
            None => base,
            Some(i) => {
                let d = LIMITER_DRIVE[i.min(LIMITER_DRIVE.len() - 1)];
                LimiterSettings {
                    ceiling_dbtp,
                    lookahead_ms: d.lookahead_ms,
                    hold_ms: d.hold_ms,
                    release_ms: d.release_ms.min(base.release_ms),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_has_exactly_one_row_in_order() {
        for (row, style) in STYLE_TABLE.iter().zip(Style::ALL) {
            assert_eq!(row.style, style);
            assert_eq!(StyleParams::of(style).style, style);
        }
    }

    #[test]
    fn rows_are_within_the_stage_ranges() {
        for row in &STYLE_TABLE {
            assert_eq!(row.target_db[5], 0.0, "{}: curves are re 1 kHz", row.style);
            assert!((0.0..=1.0).contains(&row.eq_amount));
            assert!((0.0..=2.0).contains(&row.width));
            assert!(
                row.limiter_release_ms >= 50.0,
                "release fast enough to distort bass"
            );
            let c = row.compressor;
            assert!(
                c.ratio >= 1.0 && c.ratio <= 3.0,
                "{}: gentle ratios only",
                row.style
            );
            assert!(c.attack_ms >= 10.0 && c.release_ms >= 100.0);
            // Above 1 kHz every curve falls (no style asks for brighter than flat).
            assert!(row.target_db[6..].windows(2).all(|w| w[1] < w[0]));
        }
        for style in [
            Style::Standard,
            Style::Hiphop,
            Style::Classical,
            Style::Podcast,
        ] {
            assert_eq!(StyleParams::of(style).width, 1.0, "{style} must not widen");
        }
    }
}
