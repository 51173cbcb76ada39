//! The limiter's gain computer: required gain per frame → hold (sliding minimum) →
//! release → two moving averages (the S-shaped attack). It sees only per-frame peaks, so it
//! can be run on stored peaks scaled by any gain without touching the audio.

/// Sliding-window minimum of the required gain over the last `window` frames (monotonic
/// deque in a fixed ring). Frames whose required gain is exactly 1.0 are never pushed:
/// an empty window means 1.0, which keeps quiet passages cheap.
#[derive(Debug, Clone)]
struct SlidingMin {
    window: u64,
    idx: Vec<u64>,
    val: Vec<f32>,
    head: usize,
    len: usize,
}

impl SlidingMin {
    fn new(window: usize) -> Self {
        SlidingMin {
            window: window as u64,
            idx: vec![0; window + 1],
            val: vec![0.0; window + 1],
            head: 0,
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.idx.len() {
            i - self.idx.len()
        } else {
            i
        }
    }

    /// Adds value `v < 1` at position `i` (positions strictly increase).
    #[inline]
    fn push(&mut self, i: u64, v: f32) {
        // Drop values at the back that can never be the minimum again.
        while self.len > 0 {
            let back = self.wrap(self.head + self.len - 1);
            if self.val[back] >= v {
                self.len -= 1;
            } else {
                break;
            }
        }
        // The ring holds at most `window` live entries plus the new one.
        let slot = self.wrap(self.head + self.len);
        self.idx[slot] = i;
        self.val[slot] = v;
        self.len += 1;
    }

    /// The minimum over positions `i - window + 1 ..= i` (1.0 when none was pushed).
    #[inline]
    fn min_at(&mut self, i: u64) -> f32 {
        while self.len > 0 && self.idx[self.head] + self.window <= i {
            self.head = self.wrap(self.head + 1);
            self.len -= 1;
        }
        if self.len > 0 {
            self.val[self.head]
        } else {
            1.0
        }
    }

    fn is_empty_at(&mut self, i: u64) -> bool {
        self.min_at(i) >= 1.0
    }
}

/// Moving average over the last `len` values, starting full of 1.0 (unity gain).
#[derive(Debug, Clone)]
struct MovingAverage {
    ring: Vec<f64>,
    pos: usize,
    sum: f64,
    inv_len: f64,
    /// Consecutive exact 1.0 values pushed; once it reaches `len` the average is exactly 1.
    unity_run: usize,
}

impl MovingAverage {
    fn new(len: usize) -> Self {
        MovingAverage {
            ring: vec![1.0; len],
            pos: 0,
            sum: len as f64,
            inv_len: 1.0 / len as f64,
            unity_run: len,
        }
    }

    fn clear(&mut self) {
        self.ring.fill(1.0);
        self.pos = 0;
        self.sum = self.ring.len() as f64;
        self.unity_run = self.ring.len();
    }

    /// True when every value in the window is 1.0 (the average is exactly 1.0).
    fn is_unity(&self) -> bool {
        self.unity_run >= self.ring.len()
    }

    #[inline]
    fn push(&mut self, v: f64) -> f64 {
        self.sum += v - self.ring[self.pos];
        self.ring[self.pos] = v;
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
            // Re-sum once per lap so rounding never accumulates.
            self.sum = self.ring.iter().sum();
        }
        if v == 1.0 {
            self.unity_run += 1;
            if self.unity_run == self.ring.len() {
                self.sum = self.ring.len() as f64;
            }
        } else {
            self.unity_run = 0;
        }
        if self.is_unity() {
            1.0
        } else {
            self.sum * self.inv_len
        }
    }
}

/// The gain computer's state; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct GainComputer {
    /// Linear level the peaks are held under.
    threshold: f32,
    hold: SlidingMin,
    release_coef: f64,
    envelope: f64,
    smooth1: MovingAverage,
    smooth2: MovingAverage,
    position: u64,
    min_gain: f32,
    /// `release_coef^(k + 1)` for `k < RUN`: the release over a run of frames in closed form.
    release_powers: Vec<f64>,
}

/// Frames [`GainComputer::compute`] works on at a time (its scratch lives on the stack).
const RUN: usize = 256;

impl GainComputer {
    /// `threshold` linear; `hold_len`, `w1`, `w2` in frames; `release_coef` per frame.
    pub(crate) fn new(
        threshold: f32,
        hold_len: usize,
        release_coef: f64,
        (w1, w2): (usize, usize),
    ) -> Self {
        GainComputer {
            threshold,
            hold: SlidingMin::new(hold_len),
            release_coef,
            envelope: 1.0,
            smooth1: MovingAverage::new(w1),
            smooth2: MovingAverage::new(w2),
            position: 0,
            min_gain: 1.0,
            release_powers: (1..=RUN as i32).map(|k| release_coef.powi(k)).collect(),
        }
    }

    /// The same gain computer running at one value per `factor` frames (a fresh state):
    /// hold window and moving averages shortened `factor` times (rounded, at least one
    /// value), the release coefficient raised to the power `factor`, so every time constant
    /// stays the same in seconds. The loudness model runs it on per-tile peaks
    /// (`chain::loudness_model`).
    pub(crate) fn decimated(&self, factor: usize) -> Self {
        let factor = factor.max(1);
        let shorten = |len: usize| ((len as f64 / factor as f64).round() as usize).max(1);
        GainComputer::new(
            self.threshold,
            (self.hold.window as usize).div_ceil(factor),
            self.release_coef.powi(factor as i32),
            (
                shorten(self.smooth1.ring.len()),
                shorten(self.smooth2.ring.len()),
            ),
        )
    }

    /// The linear level peaks are held under.
    pub(crate) fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The smallest gain computed since construction or [`reset`](Self::reset).
    pub(crate) fn min_gain(&self) -> f32 {
        self.min_gain
    }

    pub(crate) fn reset(&mut self) {
        self.hold.clear();
        self.envelope = 1.0;
        self.smooth1.clear();
        self.smooth2.clear();
        self.position = 0;
        self.min_gain = 1.0;
    }

    /// True when no gain reduction is in flight: with no peak over the threshold in the
    /// next frames the gain stays exactly 1.
    pub(crate) fn is_idle(&mut self) -> bool {
        self.envelope == 1.0
            && self.smooth1.is_unity()
            && self.smooth2.is_unity()
            && self.hold.is_empty_at(self.position)
    }

    /// Advances over `n` frames of unity gain (only valid while [`Self::is_idle`] and no
    /// peak passes the threshold).
    pub(crate) fn skip(&mut self, n: usize) {
        self.position += n as u64;
    }

    /// Gains for the frames whose peaks are `peak`, into `gain` (same length): required
    /// gain → hold (sliding min) → release → two moving averages.
    ///
    /// Three loops per run of up to [`RUN`] frames instead of one per frame: the held gain
    /// of every frame, then the envelope, then the smoothing. The envelope's release
    /// `e ← h + (e − h)·c` was the per-frame loop's critical path (a subtract, a multiply
    /// and an add in series, every frame); over a stretch of equal held values `h` it is
    /// `h + (e₀ − h)·c^(k+1)`, computed for all frames at once from a table of powers.
    /// The held value changes at most once per new peak or expiry, so the stretches are
    /// long. The same gains to rounding (`tests::runs_match_the_per_frame_recursion`).
    /// Measured on the dense 322 s track, standard → wav16 (perf, one core of the shared
    /// 2-core machine): `compute` (the final pass and the loudness model's predictions)
    /// 8.6 % of 2.03 s (0.17 s) per frame, 7.6 % of 2.01 s (0.15 s) in runs, 6.1 % of
    /// 1.91 s (0.12 s) with the held gains skipped; the WAV written byte for byte the same.
    /// What is left is mostly the two moving averages (a ring each, serial sums).
    pub(crate) fn compute(&mut self, peak: &[f32], gain: &mut [f32]) {
        for (p, g) in peak.chunks(RUN).zip(gain.chunks_mut(RUN)) {
            self.compute_run(p, g);
        }
    }

    /// [`Self::compute`] on at most [`RUN`] frames.
    fn compute_run(&mut self, peak: &[f32], gain: &mut [f32]) {
        let n = peak.len().min(gain.len()).min(RUN);
        let mut env = [1.0f64; RUN];
        // The held gain of each frame: 1 throughout when the hold window is empty and no
        // peak passes the threshold (a release after the hold, most of a dense track).
        let threshold = self.threshold;
        if self.hold.min_at(self.position) < 1.0 || peak[..n].iter().any(|&p| p > threshold) {
            for (k, (&p, e)) in peak[..n].iter().zip(&mut env[..n]).enumerate() {
                let at = self.position + k as u64;
                if p > threshold {
                    self.hold.push(at, threshold / p);
                }
                *e = f64::from(self.hold.min_at(at));
            }
        }
        self.position += n as u64;
        // The envelope, stretch by stretch of equal held values.
        let mut e = self.envelope;
        let mut a = 0;
        while a < n {
            let h = env[a];
            let b = a + 1 + env[a + 1..n].iter().take_while(|&&v| v == h).count();
            if h < e {
                // Attack: the envelope drops to the held value and stays on it (`env`
                // already holds it).
                e = h;
            } else {
                let d = e - h;
                for (v, &ck) in env[a..b].iter_mut().zip(&self.release_powers) {
                    *v = h + d * ck;
                }
                if h == 1.0 {
                    // Snap the last 1e-7 of a full release to exact unity (an idle state):
                    // the release rises monotonically, so from the first frame past it on.
                    if let Some(k) = env[a..b].iter().position(|&v| v > 1.0 - 1e-7) {
                        env[a + k..b].fill(1.0);
                    }
                }
                e = env[b - 1];
            }
            a = b;
        }
        self.envelope = e;
        // The two moving averages.
        let mut min_gain = self.min_gain;
        for (&v, g_out) in env[..n].iter().zip(gain.iter_mut()) {
            let g = self.smooth2.push(self.smooth1.push(v)) as f32;
            min_gain = min_gain.min(g);
            *g_out = g;
        }
        self.min_gain = min_gain;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gain computer as it was, one frame at a time: the reference.
    fn per_frame(gc: &mut GainComputer, peak: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(peak.len());
        for &p in peak {
            if p > gc.threshold {
                gc.hold.push(gc.position, gc.threshold / p);
            }
            let held = f64::from(gc.hold.min_at(gc.position));
            gc.position += 1;
            gc.envelope = if held < gc.envelope {
                held
            } else {
                let released = held + (gc.envelope - held) * gc.release_coef;
                if held == 1.0 && released > 1.0 - 1e-7 {
                    1.0
                } else {
                    released
                }
            };
            let g = gc.smooth2.push(gc.smooth1.push(gc.envelope)) as f32;
            gc.min_gain = gc.min_gain.min(g);
            out.push(g);
        }
        out
    }

    /// Peaks of bursts over the threshold between quiet stretches long enough for full
    /// releases, fed in pieces of every length around [`RUN`]: every gain within 1e-6 of
    /// the per-frame recursion, the same frames at exactly 1.0 (idle) but for frames the
    /// snap to unity reaches one frame apart (rounding), and the same deepest gain.
    #[test]
    fn runs_match_the_per_frame_recursion() {
        let rate = 44_100.0f64;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut peak = Vec::new();
        for _ in 0..40 {
            let burst = (uniform() * 3000.0) as usize;
            let quiet = (uniform() * 30_000.0) as usize;
            let level = 0.5 + 1.5 * uniform();
            for k in 0..burst {
                // Tile-like steps: constant over 64 frames, as stored peaks are.
                let step = ((k / 64) as f64 * 0.37).sin().abs();
                peak.push((level * (0.6 + 0.4 * step)) as f32);
            }
            peak.extend((0..quiet).map(|_| (0.3 * uniform()) as f32));
        }
        let make = || GainComputer::new(0.89, 1103, (-1.0 / (0.15 * rate)).exp(), (59, 58));
        let mut reference = make();
        let want = per_frame(&mut reference, &peak);
        for piece in [1, 7, 255, 256, 257, 1000, 4096] {
            let mut gc = make();
            let mut got = vec![0.0f32; peak.len()];
            for (p, g) in peak.chunks(piece).zip(got.chunks_mut(piece)) {
                gc.compute(p, g);
            }
            let mut unity_mismatch = 0;
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6,
                    "pieces of {piece}: frame {i}: {g} against {w}"
                );
                if (g == 1.0) != (w == 1.0) {
                    unity_mismatch += 1;
                }
            }
            assert!(
                unity_mismatch <= 40,
                "pieces of {piece}: {unity_mismatch} frames idle in one and not the other"
            );
            assert!(
                (gc.min_gain() - reference.min_gain()).abs() <= 1e-6,
                "pieces of {piece}: deepest gain {} against {}",
                gc.min_gain(),
                reference.min_gain()
            );
            assert!(reference.min_gain() < 0.6, "the bursts must be limited");
        }
    }
}
