//! TPDF dither and quantisation to 16- or 24-bit integers.
//!
//! Each sample is scaled to the integer range (`2^(bits-1)` per unit), has triangular
//! (TPDF, ±1 LSB) dither added — the sum of two independent uniform values of ±½ LSB — and
//! is rounded. The total error is then signal-independent noise of ½ LSB RMS. Results are
//! **saturated** to the integer range (+1.0 → 32767 at 16 bits), never wrapped.
//! Non-finite samples become 0.
//!
//! The generator is a seeded xorshift64*, so the same input and seed always give the same
//! output, byte for byte (QUALITY.md: determinism).

use super::DspError;

/// Seeded TPDF ditherer and quantiser; see the module documentation.
#[derive(Debug, Clone)]
pub struct Ditherer {
    bits: u16,
    scale: f64,
    min: i32,
    max: i32,
    seed: u64,
    state: u64,
    /// Second half of the last 64-bit draw, not yet used (each sample needs 32 bits).
    spare: Option<u32>,
}

impl Ditherer {
    /// Builds a quantiser to `bit_depth` bits (16 or 24) with a fixed `seed`.
    pub fn new(bit_depth: u16, seed: u64) -> Result<Self, DspError> {
        if bit_depth != 16 && bit_depth != 24 {
            return Err(DspError::Parameter(format!(
                "dither bit depth must be 16 or 24, got {bit_depth}"
            )));
        }
        let full = 1i64 << (bit_depth - 1);
        let mut d = Ditherer {
            bits: bit_depth,
            scale: full as f64,
            min: -(full as i32),
            max: (full - 1) as i32,
            seed,
            state: 0,
            spare: None,
        };
        d.reset();
        Ok(d)
    }

    /// Target bit depth.
    pub fn bit_depth(&self) -> u16 {
        self.bits
    }

    /// Restarts the generator from the seed.
    pub fn reset(&mut self) {
        // SplitMix64 of the seed: a well-mixed, never-zero xorshift state.
        let mut z = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        self.state = if z == 0 { 1 } else { z };
        self.spare = None;
    }

    /// Quantises one sample (nominal range ±1.0).
    #[inline]
    pub fn quantize_sample(&mut self, x: f32) -> i32 {
        let bits = self.next_bits();
        self.quantize_with(x, bits)
    }

    /// The next 32 random bits: the spare half of the last draw, or the high half of a
    /// new one (keeping the low half as the spare).
    #[inline]
    fn next_bits(&mut self) -> u32 {
        match self.spare.take() {
            Some(bits) => bits,
            None => {
                let r = self.draw();
                self.spare = Some((r & 0xFFFF_FFFF) as u32);
                (r >> 32) as u32
            }
        }
    }

    /// One xorshift64* draw.
    #[inline(always)]
    fn draw(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `out` with the next random words, exactly as that many calls of
    /// [`Self::next_bits`] would (whole draws at a time: no branch per sample).
    fn fill_bits(&mut self, out: &mut [u32]) {
        let mut rest = out;
        if let Some(bits) = self.spare.take() {
            match rest.split_first_mut() {
                Some((first, tail)) => {
                    *first = bits;
                    rest = tail;
                }
                None => {
                    self.spare = Some(bits);
                    return;
                }
            }
        }
        let mut pairs = rest.chunks_exact_mut(2);
        for pair in &mut pairs {
            let r = self.draw();
            pair[0] = (r >> 32) as u32;
            pair[1] = (r & 0xFFFF_FFFF) as u32;
        }
        if let [last] = pairs.into_remainder() {
            let r = self.draw();
            *last = (r >> 32) as u32;
            self.spare = Some((r & 0xFFFF_FFFF) as u32);
        }
    }

    /// Quantises `x` with the dither of the random word `bits`.
    #[inline(always)]
    fn quantize_with(&self, x: f32, bits: u32) -> i32 {
        quantize(
            x,
            bits,
            self.scale,
            f64::from(self.min),
            f64::from(self.max) + 0.5,
        )
    }

    /// Quantises a planar block into `out` as interleaved frames (`out` is cleared first;
    /// reuse it across blocks so it stops allocating once large enough). The same values
    /// as [`Self::quantize_sample`] frame by frame, computed a block at a time.
    pub fn quantize_interleaved(&mut self, block: &[Vec<f32>], out: &mut Vec<i32>) {
        self.quantize_interleaved_with(block, out, &mut Scratch::default());
    }

    /// [`Self::quantize_interleaved`] with a caller-kept buffer for the random words.
    pub fn quantize_interleaved_with(
        &mut self,
        block: &[Vec<f32>],
        out: &mut Vec<i32>,
        scratch: &mut Scratch,
    ) {
        let channels = block.len();
        let frames = block.iter().map(Vec::len).min().unwrap_or(0);
        let total = frames * channels;
        out.clear();
        out.resize(total, 0);
        let Scratch { bits, samples } = scratch;
        bits.clear();
        bits.resize(total, 0);
        self.fill_bits(bits);
        // Interleave first, then quantise one flat run: a branch-free loop that vectorises.
        samples.clear();
        samples.resize(total, 0.0);
        if let [l, r] = block {
            for ((dst, &a), &b) in samples.chunks_exact_mut(2).zip(l).zip(r) {
                dst[0] = a;
                dst[1] = b;
            }
        } else {
            for (c, plane) in block.iter().enumerate() {
                for (dst, &x) in samples[c..].iter_mut().step_by(channels).zip(plane) {
                    *dst = x;
                }
            }
        }
        let (scale, lo, hi) = (self.scale, f64::from(self.min), f64::from(self.max) + 0.5);
        for ((d, &x), &w) in out.iter_mut().zip(samples.iter()).zip(bits.iter()) {
            *d = quantize(x, w, scale, lo, hi);
        }
    }
}

/// Reusable buffers of [`Ditherer::quantize_interleaved_with`].
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    bits: Vec<u32>,
    samples: Vec<f32>,
}

/// `x` scaled, plus the TPDF dither of the random word `w` (two uniform values in
/// [-0.5, 0.5) with 16-bit resolution, one from each half), clamped to `[lo, hi]` and
/// floored; 0 for a non-finite `x`. Every step is exact in `f64` for a finite `x`.
#[inline(always)]
fn quantize(x: f32, w: u32, scale: f64, lo: f64, hi: f64) -> i32 {
    let step = 1.0 / 65_536.0;
    let u1 = f64::from(w >> 16) * step - 0.5;
    let u2 = f64::from(w & 0xFFFF) * step - 0.5;
    let v = (f64::from(x) * scale + u1 + u2 + 0.5).max(lo).min(hi);
    // floor(v) without a libm call: truncate, then step down for negative fractions.
    let t = v as i32;
    let floored = t - i32::from(f64::from(t) > v);
    if x.is_finite() { floored } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::sine;

    #[test]
    fn saturates_instead_of_wrapping() {
        let mut d = Ditherer::new(16, 1).unwrap();
        for _ in 0..1000 {
            assert_eq!(d.quantize_sample(1.0), 32767);
            assert_eq!(d.quantize_sample(2.0), 32767);
            let minus_one = d.quantize_sample(-1.0);
            assert!((-32768..=-32767).contains(&minus_one), "{minus_one}");
            assert_eq!(d.quantize_sample(-3.0), -32768);
            assert_eq!(d.quantize_sample(f32::NAN), 0);
        }
        let mut d24 = Ditherer::new(24, 1).unwrap();
        assert_eq!(d24.quantize_sample(1.5), 8_388_607);
        assert_eq!(d24.quantize_sample(-1.5), -8_388_608);
        assert!(Ditherer::new(8, 1).is_err());
    }

    #[test]
    fn is_deterministic_per_seed() {
        let x = vec![sine(440.0, 0.3, 44_100, 10_000); 2];
        let run = |seed| {
            let mut d = Ditherer::new(16, seed).unwrap();
            let mut out = Vec::new();
            d.quantize_interleaved(&x, &mut out);
            out
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let mut d = Ditherer::new(16, 42).unwrap();
        let mut a = Vec::new();
        d.quantize_interleaved(&x, &mut a);
        d.reset();
        let mut b = Vec::new();
        d.quantize_interleaved(&x, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 20_000);
    }

    #[test]
    fn block_quantisation_matches_sample_by_sample() {
        for (bits, channels, frames) in [(16, 2, 4097), (24, 2, 1000), (16, 3, 777), (16, 1, 5)] {
            let x: Vec<Vec<f32>> = (0..channels)
                .map(|c| sine(300.0 + 100.0 * c as f64, 0.7, 44_100, frames))
                .collect();
            let mut one = Ditherer::new(bits, 11).unwrap();
            let mut blocks = Ditherer::new(bits, 11).unwrap();
            // Odd block lengths leave a spare half-draw between blocks.
            let mut got = Vec::new();
            let mut start = 0;
            for len in [1usize, 3, 250, 1000, 4096].iter().cycle() {
                if start >= frames {
                    break;
                }
                let end = (start + len).min(frames);
                let part: Vec<Vec<f32>> = x.iter().map(|p| p[start..end].to_vec()).collect();
                let mut out = Vec::new();
                blocks.quantize_interleaved(&part, &mut out);
                got.extend_from_slice(&out);
                start = end;
            }
            let want: Vec<i32> = (0..frames)
                .flat_map(|n| x.iter().map(move |p| p[n]).collect::<Vec<_>>())
                .map(|v| one.quantize_sample(v))
                .collect();
            assert_eq!(got, want, "{bits} bits, {channels} channels");
        }
    }

    #[test]
    fn error_is_tpdf_noise_of_half_an_lsb() {
        let mut d = Ditherer::new(16, 7).unwrap();
        let x = sine(997.0, 0.25, 48_000, 200_000);
        let errors: Vec<f64> = x
            .iter()
            .map(|&v| f64::from(d.quantize_sample(v)) - f64::from(v) * 32768.0)
            .collect();
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let rms = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt();
        assert!(mean.abs() < 0.01, "mean error {mean} LSB");
        assert!((rms - 0.5).abs() < 0.01, "error RMS {rms} LSB (TPDF: 0.5)");
        assert!(
            errors.iter().all(|e| e.abs() <= 1.5),
            "TPDF error stays within ±1.5 LSB"
        );
        // A silent input gives only ±1 LSB of dither, never more.
        let silent: Vec<i32> = (0..10_000).map(|_| d.quantize_sample(0.0)).collect();
        assert!(silent.iter().all(|s| s.abs() <= 1));
    }
}
