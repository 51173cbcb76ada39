//! Writes a deterministic, music-like 16-bit stereo WAV for benchmarks and manual tests:
//! a four-on-the-floor kick, a bass line, a chord pad, hi-hats from noise, and a quieter
//! bridge so that the loudness range is not trivial.
//!
//! `cargo run --release -p mastering --example make_test_track -- OUT.wav [SECONDS] [RATE]`

use std::f32::consts::TAU;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: make_test_track OUT.wav [SECONDS=180] [SAMPLE_RATE=44100]");
        std::process::exit(2);
    };
    let seconds: f32 = parse_or_exit(args.next(), 180.0, "SECONDS");
    let rate: u32 = parse_or_exit(args.next(), 44_100, "SAMPLE_RATE");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&out, spec).unwrap_or_else(|e| {
        eprintln!("cannot create {out}: {e}");
        std::process::exit(1);
    });
    let total = (seconds * rate as f32) as u64;
    let mut noise = Lcg(0x5eed);
    let fs = rate as f32;
    let beat = 60.0 / 124.0; // 124 BPM
    let bass_notes = [55.0, 55.0, 65.41, 49.0];
    let chord = [220.0, 277.18, 329.63];
    let mut hat_env = 0.0f32;
    let mut hat_state = 0.0f32;
    for n in 0..total {
        let t = n as f32 / fs;
        let bar = (t / (4.0 * beat)) as usize;
        let in_beat = t % beat;
        // quieter bridge: every fourth 16-bar section plays at -9 dB
        let section_gain = if (bar / 16) % 4 == 3 { 0.35 } else { 1.0 };
        let kick_env = (-in_beat * 18.0).exp();
        let kick = (TAU * (45.0 + 90.0 * (-in_beat * 30.0).exp()) * in_beat).sin() * kick_env;
        let bass_f = bass_notes[bar % bass_notes.len()];
        let bass = (TAU * bass_f * t).sin() * 0.35 * (1.0 - kick_env * 0.6);
        let pad: f32 = chord.iter().map(|f| (TAU * f * t).sin()).sum::<f32>() * 0.06;
        let half = in_beat > beat * 0.5;
        if half && in_beat - beat * 0.5 < 1.0 / fs {
            hat_env = 1.0;
        }
        hat_env *= 0.9993;
        let white = noise.next_f32();
        hat_state = white - hat_state * 0.6; // crude high-pass tilt
        let hat = hat_state * hat_env * 0.08;
        let mid = (kick * 0.55 + bass + pad) * section_gain;
        let left = (mid + hat * 1.2 + (TAU * 0.2 * t).sin() * pad * 0.3) * 0.5;
        let right = (mid + hat * 0.8 - (TAU * 0.2 * t).sin() * pad * 0.3) * 0.5;
        for s in [left, right] {
            let q = (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
            if let Err(e) = writer.write_sample(q) {
                eprintln!("write failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = writer.finalize() {
        eprintln!("finalize failed: {e}");
        std::process::exit(1);
    }
}

fn parse_or_exit<T: std::str::FromStr>(arg: Option<String>, default: T, name: &str) -> T {
    match arg {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("{name}: not a number: {s}");
            std::process::exit(2);
        }),
    }
}

/// Small deterministic noise source (no dependency on `rand` for a test signal).
struct Lcg(u64);

impl Lcg {
    fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}
