//! Streaming true-peak meter: 4× polyphase interpolation (2× from 96 kHz) with the 48-tap
//! Hann-windowed sinc of libebur128, interpolating only the segments that could raise the
//! maximum.

/// Samples per segment of the true-peak detector's skip test (see
/// [`TruePeakMeter::add_block`]); at least the filter's length.
pub const TP_SEGMENT: usize = 256;

/// Largest magnitude of `x` (0 for an empty slice); eight lanes so it vectorises.
fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = l.max(v.abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.iter().copied().fold(tail, f32::max)
}

/// Outputs computed together by [`interpolated_peak`] (held in registers over the taps).
const TP_LANES: usize = 8;

/// The interpolator's phases folded by symmetry. The windowed sinc is symmetric, so phase
/// `factor − p` is phase `p` reversed and the middle phase (`factor / 2`) is its own
/// mirror. With `s_k = x[k] + x[T−1−k]` and `d_k = x[k] − x[T−1−k]` (k < T/2), the pair
/// (p, factor − p) gives `E ± O` with `E = Σ e_k·s_k`, `O = Σ o_k·d_k`, whose larger
/// magnitude is `|E| + |O|`, and the middle phase gives `Σ m_k·s_k`: half the multiplies
/// of evaluating every phase. The interpolator oversamples 4× (phases 1, 2, 3: one pair and
/// the middle) or 2× (phase 1: the middle alone; the pair's coefficients are then zero).
#[derive(Debug, Clone)]
struct FoldedPhases {
    /// The pair's `e_k = (c_k + c_{T−1−k}) / 2` and `o_k = (c_k − c_{T−1−k}) / 2`.
    even: Vec<f32>,
    odd: Vec<f32>,
    /// The middle phase's `m_k = (c_k + c_{T−1−k}) / 2`.
    middle: Vec<f32>,
    taps: usize,
}

impl FoldedPhases {
    /// Folds `phases` (phase 1 .. factor − 1 of a 2× or 4× interpolator, each `taps`
    /// long, `taps` even).
    fn new(phases: &[Vec<f32>]) -> FoldedPhases {
        let taps = phases.first().map_or(0, Vec::len);
        let half = taps / 2;
        let fold = |c: &[f32], sign: f64| -> Vec<f32> {
            (0..half)
                .map(|k| ((f64::from(c[k]) + sign * f64::from(c[taps - 1 - k])) / 2.0) as f32)
                .collect()
        };
        let n = phases.len();
        debug_assert!(n == 1 || n == 3, "2x or 4x oversampling");
        let (even, odd) = match phases.first() {
            Some(first) if n == 3 => (fold(first, 1.0), fold(first, -1.0)),
            _ => (vec![0.0; half], vec![0.0; half]),
        };
        FoldedPhases {
            even,
            odd,
            middle: phases.get(n / 2).map_or(vec![0.0; half], |m| fold(m, 1.0)),
            taps,
        }
    }
}

/// Largest magnitude of the interpolated values of `len` outputs over `work` (the
/// `taps − 1` samples before the first output, then the outputs' own samples), over every
/// phase. [`TP_LANES`] outputs are accumulated at once, the pair and the middle phase in
/// the same sweep over the taps (each `s_k` loaded and added once), so the loop vectorises
/// and keeps its sums in registers; the sums run in a fixed order, so the result does not
/// depend on the segmentation.
fn interpolated_peak(folded: &FoldedPhases, work: &[f32], len: usize) -> f32 {
    let taps = folded.taps;
    let coefficients = || {
        folded
            .even
            .iter()
            .zip(&folded.odd)
            .zip(&folded.middle)
            .enumerate()
    };
    let mut lanes = [0.0f32; TP_LANES];
    let whole = len - len % TP_LANES;
    for i in (0..whole).step_by(TP_LANES) {
        let window = &work[i..i + taps - 1 + TP_LANES];
        let (mut even, mut odd, mut mid) =
            ([0.0f32; TP_LANES], [0.0f32; TP_LANES], [0.0f32; TP_LANES]);
        for (k, ((&e, &o), &m)) in coefficients() {
            let a = &window[k..k + TP_LANES];
            let b = &window[taps - 1 - k..taps - 1 - k + TP_LANES];
            for j in 0..TP_LANES {
                let (s, d) = (a[j] + b[j], a[j] - b[j]);
                even[j] += e * s;
                odd[j] += o * d;
                mid[j] += m * s;
            }
        }
        for j in 0..TP_LANES {
            lanes[j] = lanes[j].max(even[j].abs() + odd[j].abs()).max(mid[j].abs());
        }
    }
    let mut tail = 0.0f32;
    for i in whole..len {
        let (mut even, mut odd, mut mid) = (0.0f32, 0.0f32, 0.0f32);
        for (k, ((&e, &o), &m)) in coefficients() {
            let (a, b) = (work[i + k], work[i + taps - 1 - k]);
            even += e * (a + b);
            odd += o * (a - b);
            mid += m * (a + b);
        }
        tail = tail.max(even.abs() + odd.abs()).max(mid.abs());
    }
    lanes.iter().copied().fold(tail, f32::max)
}

/// Taps of the interpolation prototype (a Hann-windowed sinc), split over the phases.
const TOTAL_TAPS: usize = 48;

/// The taps per phase and the interpolation phases 1..factor at `rate` (oversampling 4×, or
/// 2× from 96 kHz; phase 0 is the sample itself): `y_p[n] = Σ_k
/// h[factor·k + p] · x[n − k]`, each stored reversed so that its window is
/// `x[n−taps+1 ..= n]` in natural order.
fn interpolation_phases(rate: u32) -> (usize, Vec<Vec<f32>>) {
    let factor = if rate < 96_000 { 4 } else { 2 };
    let taps = TOTAL_TAPS / factor;
    let h: Vec<f64> = (0..TOTAL_TAPS)
        .map(|j| {
            let j = j as f64;
            let w = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j / TOTAL_TAPS as f64).cos());
            let m = j - TOTAL_TAPS as f64 / 2.0;
            if m.abs() > 1e-6 {
                let x = m * std::f64::consts::PI / factor as f64;
                w * x.sin() / x
            } else {
                w
            }
        })
        .collect();
    let phases = (1..factor)
        .map(|p| (0..taps).rev().map(|k| h[factor * k + p] as f32).collect())
        .collect();
    (taps, phases)
}

/// Streaming polyphase true-peak detector.
#[derive(Debug, Clone)]
pub struct TruePeakMeter {
    /// The interpolation phases (phase 0, the sample itself, omitted), folded by symmetry.
    folded: FoldedPhases,
    taps: usize,
    /// Largest L1 norm of a phase: the interpolated value is at most this times the largest
    /// input magnitude in its window.
    bound: f32,
    history: Vec<Vec<f32>>,
    work: Vec<f32>,
    /// Per segment of the current block: its largest magnitude, and that of its window.
    seg_max: Vec<f32>,
    win_max: Vec<f32>,
    peak: Vec<f32>,
}

impl TruePeakMeter {
    /// A detector for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32) -> TruePeakMeter {
        let (taps, phases) = interpolation_phases(rate);
        let bound = phases
            .iter()
            .map(|ph| ph.iter().map(|c| c.abs()).sum::<f32>())
            .fold(1.0, f32::max);
        TruePeakMeter {
            folded: FoldedPhases::new(&phases),
            taps,
            bound,
            history: vec![vec![0.0; taps - 1]; channels],
            work: Vec::new(),
            seg_max: Vec::new(),
            win_max: Vec::new(),
            peak: vec![0.0; channels],
        }
    }

    /// Adds one planar block.
    ///
    /// Interpolation is the costly part, so it runs only where it could raise the maximum:
    /// the block is cut into [`TP_SEGMENT`]-sample segments and a segment is interpolated
    /// only when the largest input magnitude in its window times [`Self::bound`] exceeds
    /// the peak so far (the segment with the largest input first, which raises the peak
    /// early). Every interpolated value is computed exactly as over the whole block, so the
    /// result does not depend on the block or segment boundaries.
    pub fn add_block<S: AsRef<[f32]>>(&mut self, block: &[S]) {
        let keep = self.taps - 1;
        for (ch, plane) in block.iter().enumerate().take(self.peak.len()) {
            let x = plane.as_ref();
            if x.is_empty() {
                continue;
            }
            let n = x.len();
            // Segment maxima; segment j's window also reaches `keep` samples back, into
            // segment j − 1 (or the history), which is never shorter than `keep`.
            self.seg_max.clear();
            self.seg_max.extend(x.chunks(TP_SEGMENT).map(max_abs));
            let max_in = self.seg_max.iter().copied().fold(0.0f32, f32::max);
            self.peak[ch] = self.peak[ch].max(max_in);
            let hist_max = max_abs(&self.history[ch]);
            self.win_max.clear();
            let mut prev = hist_max;
            for &m in &self.seg_max {
                self.win_max.push(prev.max(m));
                prev = m;
            }
            let widest = self.win_max.iter().copied().fold(0.0f32, f32::max);
            if widest * self.bound > self.peak[ch] {
                let first = self.win_max.iter().position(|&m| m == widest).unwrap_or(0);
                let order =
                    std::iter::once(first).chain((0..self.win_max.len()).filter(|&j| j != first));
                for j in order {
                    if self.win_max[j] * self.bound <= self.peak[ch] {
                        continue;
                    }
                    let start = j * TP_SEGMENT;
                    let len = TP_SEGMENT.min(n - start);
                    // A segment's window reaches `keep` samples back: inside the block
                    // from the second segment on, into the history for the first.
                    let window = if start >= keep {
                        &x[start - keep..start + len]
                    } else {
                        self.work.clear();
                        self.work.extend_from_slice(&self.history[ch]);
                        self.work.extend_from_slice(&x[..start + len]);
                        &self.work[start..]
                    };
                    let peak = interpolated_peak(&self.folded, window, len);
                    self.peak[ch] = self.peak[ch].max(peak);
                }
            }
            let hist = &mut self.history[ch];
            if x.len() >= keep {
                hist.copy_from_slice(&x[x.len() - keep..]);
            } else {
                hist.rotate_left(x.len());
                let start = keep - x.len();
                hist[start..].copy_from_slice(x);
            }
        }
    }

    /// Highest true peak over all channels, linear.
    pub fn peak(&self) -> f32 {
        self.peak.iter().copied().fold(0.0, f32::max)
    }
}

#[cfg(test)]
mod folded_tests {
    use super::*;

    /// The folded evaluation equals evaluating every phase directly (to f32 rounding), at
    /// 4× (pair + middle phase) and 2× (middle phase only), over whole lanes and tails.
    #[test]
    fn folded_phases_match_direct_evaluation() {
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        for rate in [44_100, 96_000] {
            let meter = TruePeakMeter::new(1, rate);
            let taps = meter.taps;
            // The unfolded phases `new` folds.
            let (_, phases) = interpolation_phases(rate);
            for len in [1usize, 7, 8, 37, 256] {
                let work: Vec<f32> = (0..len + taps - 1).map(|_| next()).collect();
                let direct = phases
                    .iter()
                    .flat_map(|ph| {
                        (0..len).map(|i| {
                            ph.iter()
                                .zip(&work[i..i + taps])
                                .map(|(c, v)| f64::from(*c) * f64::from(*v))
                                .sum::<f64>()
                                .abs()
                        })
                    })
                    .fold(0.0f64, f64::max);
                let folded = f64::from(interpolated_peak(&meter.folded, &work, len));
                assert!(
                    (folded - direct).abs() <= 1e-5 * direct.max(1e-3),
                    "{rate} Hz, {len} outputs: folded {folded}, direct {direct}"
                );
            }
        }
    }
}
