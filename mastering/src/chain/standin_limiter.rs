//! `StandInLimiter`: a plain look-ahead true-peak limiter used **only until the dsp branch's
//! limiter is merged** (see [`super::stages`]). It guarantees the ceiling, not the sound: no
//! adaptive release, no oversampled gain application.
//!
//! Detection: per frame, the largest of the samples and of the 4× interpolated points
//! (polyphase, same 48-tap filter as the meter) over all channels (linked). Gain: the gain
//! each frame needs, min-filtered forward over the look-ahead window W, an instant-attack /
//! exponential-release follower, then a moving average over W. Every value inside the
//! average is at most the gain needed at the frame, so the ceiling holds at every sample and
//! interpolated point of the input; the average turns steps into W-long ramps.

use crate::stage::BlockProcessor;
use std::collections::VecDeque;

const TAPS: usize = 12;
const FACTOR: usize = 4;
/// Frames between an input sample and the interpolated points computed with it.
const DETECT_DELAY: usize = TAPS / 2;

/// The stand-in look-ahead limiter.
pub struct StandInLimiter {
    channels: usize,
    ceiling: f32,
    window: usize,
    release: f64,
    /// Interpolation phases, taps reversed: `y = Σ_j phase[j] · x[n - TAPS + 1 + j]`.
    phases: [[f32; TAPS]; FACTOR - 1],
    /// Per channel: the last TAPS - 1 input samples.
    hist: Vec<Vec<f32>>,
    /// Scratch: history + block of one channel, one phase's output, the block's detection.
    work: Vec<f32>,
    acc: Vec<f32>,
    detected: Vec<f32>,
    /// Per channel: audio delay line of `delay` frames (ring).
    delay: Vec<Vec<f32>>,
    delay_pos: usize,
    /// Sliding minimum of the required gain (index, gain).
    min_q: VecDeque<(u64, f32)>,
    /// Released gain values inside the averaging window, and their sum.
    avg_ring: Vec<f64>,
    avg_pos: usize,
    avg_sum: f64,
    released: f64,
    frame: u64,
}

impl StandInLimiter {
    /// A limiter for `channels` at `rate` Hz holding true peaks to `ceiling_db` dBTP.
    pub fn new(channels: usize, rate: u32, ceiling_db: f64) -> StandInLimiter {
        let window = ((f64::from(rate) * 0.002).ceil() as usize).max(8);
        let total = TAPS * FACTOR;
        let h: Vec<f64> = (0..total)
            .map(|j| {
                let j = j as f64;
                let w = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j / total as f64).cos());
                let m = j - total as f64 / 2.0;
                if m.abs() > 1e-6 {
                    let x = m * std::f64::consts::PI / FACTOR as f64;
                    w * x.sin() / x
                } else {
                    w
                }
            })
            .collect();
        let mut phases = [[0.0f32; TAPS]; FACTOR - 1];
        for (p, phase) in phases.iter_mut().enumerate() {
            for (j, c) in phase.iter_mut().enumerate() {
                *c = h[FACTOR * (TAPS - 1 - j) + p + 1] as f32;
            }
        }
        let delay = window + DETECT_DELAY - 1;
        StandInLimiter {
            channels,
            // 0.05 dB inside the ceiling: the output's own interpolated peaks differ a
            // little from the input's because the gain moves.
            ceiling: 10f64.powf((ceiling_db - 0.05) / 20.0) as f32,
            window,
            release: 1.0 - (-1.0 / (0.08 * f64::from(rate))).exp(),
            phases,
            hist: vec![vec![0.0; TAPS - 1]; channels],
            work: Vec::new(),
            acc: Vec::new(),
            detected: Vec::new(),
            delay: vec![vec![0.0; delay]; channels],
            delay_pos: 0,
            min_q: VecDeque::with_capacity(window + 1),
            avg_ring: vec![1.0; window],
            avg_pos: 0,
            avg_sum: window as f64,
            released: 1.0,
            frame: 0,
        }
    }

    /// Fills `self.detected[i]` with the largest magnitude, over all channels, of the sample
    /// `DETECT_DELAY` frames before frame `i` of the block and of the interpolated points
    /// next to it. Vectorisable: the taps are accumulated over the whole block.
    fn detect_block(&mut self, block: &[Vec<f32>], n: usize) {
        self.detected.clear();
        self.detected.resize(n, 0.0);
        for (plane, hist) in block.iter().zip(&mut self.hist) {
            self.work.clear();
            self.work.extend_from_slice(hist);
            self.work.extend_from_slice(&plane[..n]);
            let centre = &self.work[TAPS - 1 - DETECT_DELAY..TAPS - 1 - DETECT_DELAY + n];
            for (d, x) in self.detected.iter_mut().zip(centre) {
                *d = d.max(x.abs());
            }
            for phase in &self.phases {
                self.acc.clear();
                self.acc.resize(n, 0.0);
                for (j, &c) in phase.iter().enumerate() {
                    for (y, &x) in self.acc.iter_mut().zip(&self.work[j..j + n]) {
                        *y += c * x;
                    }
                }
                for (d, y) in self.detected.iter_mut().zip(&self.acc) {
                    *d = d.max(y.abs());
                }
            }
            let len = self.work.len();
            hist.copy_from_slice(&self.work[len - (TAPS - 1)..]);
        }
    }
}

impl BlockProcessor for StandInLimiter {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        let n = block.first().map_or(0, Vec::len);
        let delay_len = self.delay.first().map_or(1, Vec::len);
        self.detect_block(block, n);
        for i in 0..n {
            let peak = self.detected[i];
            let need = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            // Forward minimum over the window: frames frame-window+1 ..= frame.
            while self.min_q.back().is_some_and(|&(_, g)| g >= need) {
                self.min_q.pop_back();
            }
            self.min_q.push_back((self.frame, need));
            while self
                .min_q
                .front()
                .is_some_and(|&(idx, _)| idx + (self.window as u64) <= self.frame)
            {
                self.min_q.pop_front();
            }
            let held = f64::from(self.min_q.front().map_or(1.0, |&(_, g)| g));
            self.released = held.min(self.released + self.release * (1.0 - self.released));
            self.avg_sum += self.released - self.avg_ring[self.avg_pos];
            self.avg_ring[self.avg_pos] = self.released;
            self.avg_pos = (self.avg_pos + 1) % self.window;
            let gain = (self.avg_sum / self.window as f64) as f32;
            // Delay the audio so that the gain lines up with the frame it was computed for.
            for (ch, plane) in block.iter_mut().enumerate().take(self.channels) {
                let line = &mut self.delay[ch];
                let out = line[self.delay_pos];
                line[self.delay_pos] = plane[i];
                plane[i] = out * gain;
            }
            self.delay_pos = (self.delay_pos + 1) % delay_len;
            self.frame += 1;
        }
    }

    fn latency(&self) -> usize {
        self.delay.first().map_or(0, Vec::len)
    }

    fn reset(&mut self) {
        for h in &mut self.hist {
            h.fill(0.0);
        }
        for d in &mut self.delay {
            d.fill(0.0);
        }
        self.delay_pos = 0;
        self.min_q.clear();
        self.avg_ring.fill(1.0);
        self.avg_pos = 0;
        self.avg_sum = self.window as f64;
        self.released = 1.0;
        self.frame = 0;
    }
}
