//! The loudness model: the integrated loudness `I(g)` the limiter's output would have at
//! pre-gain `g`, predicted without running the limiter over the audio.
//!
//! The limiter's detection is linear in the gain: the per-frame peak of `g·x` is `g` times
//! that of `x`. So the track is detected **once**, at unity gain, with the limiter's own
//! [`PeakDetector`] (during the processing pass, which reads the track anyway), and stored
//! compactly per tile of 8–16 frames (the largest divisor of the 100 ms sub-block in that
//! range: tiles never straddle a sub-block):
//!
//! - the tile's largest peak,
//! - the K-weighted, channel-weighted energy of the unlimited signal over the tile.
//!
//! For a candidate gain, [`LoudnessModel::predict`] runs the limiter's own gain computer
//! (built by [`TruePeakLimiter::parts`], decimated to one value per tile by
//! [`GainComputer::decimated`]: the same hold, release and smoothing in seconds) over the
//! stored peaks times `g`, weights each tile's energy by `g²·gain²` (the gain it gets after
//! the limiter's delay), sums the 100 ms sub-blocks and gates them with the meter's own
//! BS.1770 gating ([`integrated_from_subs`]). No audio is touched: a prediction reads
//! 8 bytes per tile, about 1/15 of a limiter pass's input, and runs the gain computer at
//! 1/15 of the frame rate.
//!
//! The model ignores what the gain's variation within a tile and the K-weighting's memory
//! across a gain change do to the energy: it is biased by a few hundredths of a LU on
//! music. The chain measures that bias on the written file and corrects for it (see
//! `chain::find_gain_modeled`). The tiles live in a [`TrackStore`], in memory up to
//! [`MODEL_BUDGET_BYTES`] (about 22 minutes of 44.1 kHz audio) and on disk beyond, so
//! memory stays bounded whatever the length.

use super::store::TrackStore;
use crate::dsp::DspError;
use crate::dsp::limiter::{CHUNK, GainComputer, LimiterSettings, PeakDetector, TruePeakLimiter};
use crate::error::MasterError;
use crate::meter::fast::{channel_weight, integrated_from_subs, k_weighting_coefficients};
use std::path::Path;

/// Bytes of tiles (8 per tile) kept in memory before the model's store spills to disk.
pub const MODEL_BUDGET_BYTES: u64 = 32 << 20;

/// Tile lengths tried, frames: the largest that divides the 100 ms sub-block is used.
const TILE_FRAMES: std::ops::RangeInclusive<usize> = 8..=16;
/// Tile length when none divides the sub-block (odd rates): the last tile of each
/// sub-block is then shorter.
const FALLBACK_TILE_FRAMES: usize = 12;
/// Tiles moved to and from the store at a time.
const TILE_BLOCK: usize = 4096;

/// The limiter as the model runs it: its gain computer and its delay, frames.
#[derive(Debug, Clone)]
pub struct LimiterModel {
    gains: GainComputer,
    delay: usize,
}

impl LimiterModel {
    /// The model of [`TruePeakLimiter::new`]`(sample_rate, channels, settings)`.
    pub fn of(
        sample_rate: u32,
        channels: usize,
        settings: &LimiterSettings,
    ) -> Result<LimiterModel, DspError> {
        let (_, gains, delay) = TruePeakLimiter::parts(sample_rate, channels, settings)?;
        Ok(LimiterModel { gains, delay })
    }

    /// The linear level the limiter holds peaks under.
    pub fn threshold(&self) -> f32 {
        self.gains.threshold()
    }
}

/// One K-weighting section, direct form I in `f64` (as the meter's).
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    #[inline(always)]
    fn run(&mut self, x: f64) -> f64 {
        let ahead =
            self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1] - self.a[1] * self.y[1];
        let y = ahead - self.a[0] * self.y[0];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// Per-tile peaks and energies of a track; see the module documentation.
#[derive(Debug)]
pub struct LoudnessModel {
    tile: usize,
    sub_len: usize,
    tiles_per_sub: usize,
    frames: u64,
    /// Plane 0: each tile's largest peak; plane 1: its K-weighted energy.
    tiles: TrackStore,
    detector: PeakDetector,
    /// Peaks under this level may be reported low (see [`PeakDetector::detect`]).
    report_above: f32,
    filters: Vec<[Biquad; 2]>,
    weights: Vec<f64>,
    peak: Vec<f32>,
    energy: Vec<f64>,
    tile_peak: f32,
    tile_energy: f64,
    tile_fill: usize,
    sub_fill: usize,
    pending: Vec<Vec<f32>>,
}

impl LoudnessModel {
    /// A model of a track of about `expected_frames` frames (0: unknown), spilling its tiles
    /// into `dir` when long. Peaks are detected exactly wherever, at a gain up to
    /// `max_gain_db`, they could reach `lowest_threshold` (linear): predictions at lower
    /// thresholds or higher gains are refused.
    pub fn new(
        dir: &Path,
        (rate, channels): (u32, usize),
        expected_frames: u64,
        lowest_threshold: f32,
        max_gain_db: f64,
    ) -> Result<LoudnessModel, MasterError> {
        let detector = PeakDetector::new(rate, channels)?;
        let sub_len = (rate as usize).div_ceil(10).max(1);
        let tile = TILE_FRAMES
            .rev()
            .find(|t| sub_len.is_multiple_of(*t))
            .unwrap_or(FALLBACK_TILE_FRAMES)
            .min(sub_len);
        let tiles_per_sub = sub_len.div_ceil(tile);
        let expected_tiles = (expected_frames / sub_len as u64 + 1) * tiles_per_sub as u64;
        let coefficients = k_weighting_coefficients(f64::from(rate));
        let biquads = coefficients.map(|(b, a)| Biquad {
            b,
            a,
            ..Biquad::default()
        });
        Ok(LoudnessModel {
            tile,
            sub_len,
            tiles_per_sub,
            frames: 0,
            tiles: TrackStore::new(dir, 2, expected_tiles, MODEL_BUDGET_BYTES)?,
            detector,
            report_above: (f64::from(lowest_threshold) * 10f64.powf(-max_gain_db / 20.0)) as f32,
            filters: vec![biquads; channels],
            weights: (0..channels).map(|c| channel_weight(channels, c)).collect(),
            peak: vec![0.0; CHUNK],
            energy: vec![0.0; CHUNK],
            tile_peak: 0.0,
            tile_energy: 0.0,
            tile_fill: 0,
            sub_fill: 0,
            pending: (0..2).map(|_| Vec::with_capacity(TILE_BLOCK)).collect(),
        })
    }

    /// Frames per tile.
    pub fn tile_frames(&self) -> usize {
        self.tile
    }

    /// Adds the next planar block of the (pre-gain, pre-limiter) track.
    pub fn add_block(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        let n = block.first().map_or(0, Vec::len);
        if block.len() != self.filters.len() || block.iter().any(|p| p.len() != n) {
            return Err(MasterError::InvalidParameter(
                "loudness model: block has the wrong shape".into(),
            ));
        }
        let mut offset = 0;
        while offset < n {
            let m = (n - offset).min(CHUNK);
            self.detector
                .detect(block, offset, m, &mut self.peak, self.report_above);
            let energy = &mut self.energy[..m];
            if let ([l, r], [lf, rf], &[wl, wr]) =
                (block, self.filters.as_mut_slice(), self.weights.as_slice())
            {
                // Two independent filter chains in one loop run in parallel on the CPU
                // (each alone is bound by its recursion's latency), as in the meter.
                let ([l1, l2], [r1, r2]) = (lf, rf);
                let frames = l[offset..offset + m].iter().zip(&r[offset..offset + m]);
                for (e, (&a, &b)) in energy.iter_mut().zip(frames) {
                    let ya = l2.run(l1.run(f64::from(a)));
                    let yb = r2.run(r1.run(f64::from(b)));
                    *e = wl * ya * ya + wr * yb * yb;
                }
            } else {
                energy.fill(0.0);
                for ((plane, filters), &w) in block.iter().zip(&mut self.filters).zip(&self.weights)
                {
                    if w == 0.0 {
                        continue;
                    }
                    let [f1, f2] = filters;
                    for (e, &x) in energy.iter_mut().zip(&plane[offset..offset + m]) {
                        let y = f2.run(f1.run(f64::from(x)));
                        *e += w * y * y;
                    }
                }
            }
            for i in 0..m {
                self.tile_peak = self.tile_peak.max(self.peak[i]);
                self.tile_energy += self.energy[i];
                self.tile_fill += 1;
                self.sub_fill += 1;
                if self.sub_fill == self.sub_len {
                    self.sub_fill = 0;
                    self.push_tile()?;
                } else if self.tile_fill == self.tile {
                    self.push_tile()?;
                }
            }
            offset += m;
        }
        self.frames += n as u64;
        Ok(())
    }

    fn push_tile(&mut self) -> Result<(), MasterError> {
        self.pending[0].push(self.tile_peak);
        self.pending[1].push(self.tile_energy as f32);
        self.tile_peak = 0.0;
        self.tile_energy = 0.0;
        self.tile_fill = 0;
        if self.pending[0].len() >= TILE_BLOCK {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), MasterError> {
        if !self.pending[0].is_empty() {
            self.tiles.write(&self.pending)?;
            for p in &mut self.pending {
                p.clear();
            }
        }
        Ok(())
    }

    /// Ends the track (call once, after the last block).
    pub fn finish(&mut self) -> Result<(), MasterError> {
        if self.tile_fill > 0 {
            self.push_tile()?;
        }
        self.write_pending()
    }

    /// The highest gain, dB, at which [`Self::predict`] answers for `limiter`.
    pub fn max_gain_db(&self, limiter: &LimiterModel) -> f64 {
        20.0 * (f64::from(limiter.threshold()) / f64::from(self.report_above)).log10()
    }

    /// Predicted integrated loudness, LUFS, of `limiter`'s output at pre-gain `gain_db`;
    /// `None` when the peaks that matter there were not detected exactly (a gain or a
    /// ceiling beyond those given to [`Self::new`]).
    pub fn predict(
        &mut self,
        limiter: &LimiterModel,
        gain_db: f64,
    ) -> Result<Option<f64>, MasterError> {
        let g = 10f64.powf(gain_db / 20.0);
        let threshold = limiter.gains.threshold();
        // (Written so that a NaN gain is refused too.)
        let detected = f64::from(threshold) / g >= f64::from(self.report_above);
        if !detected {
            return Ok(None);
        }
        let mut gains = limiter.gains.decimated(self.tile);
        let lag = (limiter.delay as f64 / self.tile as f64).round() as usize;
        let subs_len = (self.frames / self.sub_len as u64) as usize;
        let mut subs = vec![0.0f64; subs_len];
        // Energies of the last `lag + 1` tiles: tile j's audio leaves the limiter with the
        // gain computed when tile j + lag is detected.
        let mut ring = vec![0.0f32; lag + 1];
        let mut scaled = vec![0.0f32; TILE_BLOCK];
        let mut gain = vec![0.0f32; TILE_BLOCK];
        let mut block = Vec::new();
        let mut k = 0usize;
        let tiles_per_sub = self.tiles_per_sub;
        let mut step = |peaks: &[f32], energies: Option<&[f32]>, k: &mut usize| {
            let n = peaks.len();
            let g32 = g as f32;
            for (s, &p) in scaled.iter_mut().zip(peaks) {
                *s = p * g32;
            }
            let scaled = &scaled[..n];
            let gain = &mut gain[..n];
            if gains.is_idle() && scaled.iter().all(|&p| p <= threshold) {
                gain.fill(1.0);
                gains.skip(n);
            } else {
                gains.compute(scaled, gain);
            }
            for (i, &gi) in gain.iter().enumerate() {
                let t = *k + i;
                ring[t % (lag + 1)] = energies.map_or(0.0, |e| e[i]);
                if let Some(j) = t.checked_sub(lag) {
                    let sub = j / tiles_per_sub;
                    if let Some(acc) = subs.get_mut(sub) {
                        *acc += f64::from(gi) * f64::from(gi) * f64::from(ring[j % (lag + 1)]);
                    }
                }
            }
            *k += n;
        };
        let mut reader = self.tiles.reader(TILE_BLOCK)?;
        loop {
            let n = reader.read_block(&mut block)?;
            if n == 0 {
                break;
            }
            step(&block[0][..n], Some(&block[1][..n]), &mut k);
        }
        // The limiter is flushed with silence: the last tiles leave with the gains computed
        // over it.
        let silence = vec![0.0f32; lag.min(TILE_BLOCK)];
        let mut left = lag;
        while left > 0 {
            let n = left.min(silence.len());
            step(&silence[..n], None, &mut k);
            left -= n;
        }
        let scale = g * g / self.sub_len as f64;
        for s in &mut subs {
            *s *= scale;
        }
        Ok(Some(integrated_from_subs(&subs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::{FastMeter, MeterMode};
    use crate::stage::BlockProcessor;
    use crate::testutil::pink_noise;

    /// Dense noise with a beat, `secs` long, stereo.
    fn dense(rate: u32, secs: f64) -> Vec<Vec<f32>> {
        let n = (f64::from(rate) * secs) as usize;
        let kick = |i: usize| {
            let t = i as f64 / f64::from(rate);
            ((-((t * 2.0).fract()) * 30.0).exp() * (2.0 * std::f64::consts::PI * 55.0 * t).sin())
                as f32
        };
        [31, 32]
            .iter()
            .map(|&seed| {
                pink_noise(0.5, n, seed)
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x + 0.6 * kick(i))
                    .collect()
            })
            .collect()
    }

    /// The exact loudness of the limiter's output at `gain_db`, by the chain's meter.
    fn limited_loudness(
        x: &[Vec<f32>],
        rate: u32,
        settings: &LimiterSettings,
        gain_db: f64,
    ) -> f64 {
        let g = 10f32.powf(gain_db as f32 / 20.0);
        let mut lim = TruePeakLimiter::new(rate, x.len(), settings).unwrap();
        let lat = lim.latency();
        let mut y: Vec<Vec<f32>> = x
            .iter()
            .map(|p| {
                let mut p: Vec<f32> = p.iter().map(|v| v * g).collect();
                p.extend(std::iter::repeat_n(0.0, lat));
                p
            })
            .collect();
        lim.process(&mut y);
        let y: Vec<Vec<f32>> = y.iter().map(|p| p[lat..].to_vec()).collect();
        let mut meter = FastMeter::new(x.len(), rate, MeterMode::INTEGRATED).unwrap();
        meter.add_block(&y).unwrap();
        meter.integrated()
    }

    /// The model's prediction follows the real limiter within 0.1 LU from no limiting to
    /// 8 dB of it, at the style's settings and the fastest drive level, at 44.1 and
    /// 48 kHz (measured: a few hundredths), and its error changes little from one gain to
    /// the next, so one measured bias corrects it.
    #[test]
    fn predictions_follow_the_limiter() {
        let dir = tempfile::tempdir().unwrap();
        for rate in [44_100, 48_000] {
            let x = dense(rate, 12.0);
            let mut model = LoudnessModel::new(dir.path(), (rate, 2), 0, 0.5, 30.0).unwrap();
            for block in x[0].chunks(4096).zip(x[1].chunks(4096)) {
                model
                    .add_block(&[block.0.to_vec(), block.1.to_vec()])
                    .unwrap();
            }
            model.finish().unwrap();
            for settings in [
                LimiterSettings::with_ceiling(-1.0),
                LimiterSettings {
                    lookahead_ms: 1.0,
                    hold_ms: 0.0,
                    release_ms: 10.0,
                    ..LimiterSettings::with_ceiling(-1.0)
                },
            ] {
                let lim = LimiterModel::of(rate, 2, &settings).unwrap();
                let mut errors = Vec::new();
                for gain_db in [-6.0, 0.0, 3.0, 6.0, 9.0] {
                    let exact = limited_loudness(&x, rate, &settings, gain_db);
                    let predicted = model.predict(&lim, gain_db).unwrap().unwrap();
                    eprintln!(
                        "model {rate} Hz {settings:?} {gain_db:+} dB: exact {exact:.3}, \
                         predicted {predicted:.3} LUFS"
                    );
                    errors.push(predicted - exact);
                }
                for (e, gain_db) in errors.iter().zip([-6.0, 0.0, 3.0, 6.0, 9.0]) {
                    assert!(
                        e.abs() <= 0.1,
                        "{rate} Hz {gain_db:+} dB: model off by {e:.3} LU"
                    );
                }
                for w in errors.windows(2) {
                    assert!(
                        (w[1] - w[0]).abs() <= 0.05,
                        "{rate} Hz: the bias moves {:.3} LU between gains",
                        w[1] - w[0]
                    );
                }
            }
        }
    }

    /// A gain or ceiling beyond what was detected exactly is refused, not guessed.
    #[test]
    fn predictions_beyond_the_detected_range_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let x = dense(44_100, 2.0);
        let mut model = LoudnessModel::new(dir.path(), (44_100, 2), 0, 0.8, 10.0).unwrap();
        model.add_block(&x).unwrap();
        model.finish().unwrap();
        let lim = LimiterModel::of(44_100, 2, &LimiterSettings::with_ceiling(-1.0)).unwrap();
        assert!(model.predict(&lim, 6.0).unwrap().is_some());
        assert!(model.predict(&lim, 20.0).unwrap().is_none());
        let low = LimiterModel::of(44_100, 2, &LimiterSettings::with_ceiling(-12.0)).unwrap();
        assert!(model.predict(&low, 6.0).unwrap().is_none());
    }
}
