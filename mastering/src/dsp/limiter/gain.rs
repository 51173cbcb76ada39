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
}

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
    pub(crate) fn compute(&mut self, peak: &[f32], gain: &mut [f32]) {
        for (&p, g_out) in peak.iter().zip(gain.iter_mut()) {
            if p > self.threshold {
                self.hold.push(self.position, self.threshold / p);
            }
            let held = f64::from(self.hold.min_at(self.position));
            self.position += 1;
            self.envelope = if held < self.envelope {
                held
            } else {
                let released = held + (self.envelope - held) * self.release_coef;
                // Snap the last 1e-7 of a full release to exact unity (an idle state).
                if held == 1.0 && released > 1.0 - 1e-7 {
                    1.0
                } else {
                    released
                }
            };
            let smooth = self.smooth2.push(self.smooth1.push(self.envelope));
            let g = smooth as f32;
            if g < self.min_gain {
                self.min_gain = g;
            }
            *g_out = g;
        }
    }
}
