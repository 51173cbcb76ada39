//! The generated programme shared by the criterion benches (`benches/stages.rs`) and the
//! `stage_speed` example: pink-ish noise, a 55 Hz bass line and a 440 Hz tone, stereo,
//! peaking near full scale. Deterministic (a fixed xorshift seed).

/// `secs` seconds of the programme at `rate` Hz, planar (left, right).
pub fn music_like(rate: u32, secs: f64) -> Vec<Vec<f32>> {
    let n = (f64::from(rate) * secs) as usize;
    let mut state = 0x1234_5678_u64;
    let (mut b0, mut b1) = (0.0f64, 0.0f64);
    let mut l = Vec::with_capacity(n);
    let mut r = Vec::with_capacity(n);
    for i in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let white = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        b0 = 0.997 * b0 + 0.03 * white;
        b1 = 0.96 * b1 + 0.2 * white;
        let t = i as f64 / f64::from(rate);
        let bass = 0.3 * (2.0 * std::f64::consts::PI * 55.0 * t).sin();
        let tone = 0.1 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
        l.push((0.4 * (b0 + b1) + bass + tone) as f32);
        r.push((0.4 * (b0 - b1) + bass + 0.5 * tone) as f32);
    }
    vec![l, r]
}
