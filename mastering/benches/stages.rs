//! One criterion bench per stage on 10 s of generated stereo 44.1 kHz audio:
//! `cargo bench -p mastering --bench stages`. Speed targets are checked here and by the
//! `stage_speed` example, not by timed unit tests.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mastering::decode::Decoder;
use mastering::dsp::dc::DcBlocker;
use mastering::dsp::dither::Ditherer;
use mastering::dsp::dynamics::Compressor;
use mastering::dsp::eq::LinearPhaseEq;
use mastering::dsp::limiter::{LimiterSettings, TruePeakLimiter};
use mastering::dsp::spectrum::OctaveAnalyzer;
use mastering::dsp::styles::{BAND_CENTRES_HZ, StyleParams};
use mastering::dsp::width::StereoWidth;
use mastering::encode::create_encoder;
use mastering::meter::{FastMeter, MeterMode};
use mastering::stage::BlockProcessor;
use mastering::{OutputFormat, Style};
use std::hint::black_box;

#[path = "support/signal.rs"]
mod support;

const RATE: u32 = 44_100;
const SECONDS: usize = 10;
const BLOCK: usize = 4096;

/// The shared generated programme, `SECONDS` long.
fn signal() -> Vec<Vec<f32>> {
    support::music_like(RATE, SECONDS as f64)
}

fn blocks(x: &[Vec<f32>]) -> Vec<Vec<Vec<f32>>> {
    (0..x[0].len())
        .step_by(BLOCK)
        .map(|s| {
            let e = (s + BLOCK).min(x[0].len());
            x.iter().map(|c| c[s..e].to_vec()).collect()
        })
        .collect()
}

fn run_stage(c: &mut Criterion, name: &str, x: &[Vec<Vec<f32>>], stage: &mut dyn BlockProcessor) {
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements((RATE as usize * SECONDS) as u64));
    g.sample_size(10);
    g.bench_function(name, |b| {
        b.iter(|| {
            stage.reset();
            for block in x {
                let mut block = block.clone();
                stage.process(&mut block);
                black_box(&block);
            }
        })
    });
    g.finish();
}

fn stages(c: &mut Criterion) {
    let x = signal();
    let bl = blocks(&x);
    let dir = tempfile::tempdir().expect("temp dir");

    // decode (16-bit WAV written by our encoder)
    let wav = dir.path().join("in.wav");
    let mut enc = create_encoder(&wav, OutputFormat::Wav { bit_depth: 16 }, RATE, 2).unwrap();
    for b in &bl {
        enc.write(b).unwrap();
    }
    enc.finish().unwrap();
    let mut g = c.benchmark_group("io");
    g.sample_size(10);
    g.bench_function("decode_wav16", |b| {
        b.iter(|| {
            let mut d = Decoder::open(&wav).unwrap();
            let mut block = Vec::new();
            while d.read_block(&mut block).unwrap() > 0 {
                black_box(&block);
            }
        })
    });
    g.bench_function("meter_i_tp_lra", |b| {
        b.iter(|| {
            let mut m = FastMeter::new(2, RATE, MeterMode::FULL).unwrap();
            for block in &bl {
                m.add_block(block).unwrap();
            }
            black_box(m.loudness())
        })
    });
    g.bench_function("spectrum", |b| {
        b.iter(|| {
            let mut s = OctaveAnalyzer::new(RATE, 2).unwrap();
            for block in &bl {
                s.add(block);
            }
            black_box(s.spectrum_db())
        })
    });
    g.bench_function("dither16", |b| {
        b.iter(|| {
            let mut d = Ditherer::new(16, 1).unwrap();
            let mut out = Vec::new();
            for block in &bl {
                d.quantize_planar(block, &mut out);
                black_box(&out);
            }
        })
    });
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ] {
        let out = dir.path().join(format!("o.{}", format.extension()));
        g.bench_function(format!("encode_{}", format.extension()), |b| {
            b.iter(|| {
                let mut e = create_encoder(&out, format, RATE, 2).unwrap();
                for block in &bl {
                    e.write(block).unwrap();
                }
                e.finish().unwrap();
            })
        });
    }
    g.finish();

    let style = StyleParams::of(Style::Standard);
    run_stage(c, "dc", &bl, &mut DcBlocker::new(RATE, 2).unwrap());
    let gains: Vec<(f64, f64)> = BAND_CENTRES_HZ.iter().map(|&hz| (hz, 2.0)).collect();
    run_stage(
        c,
        "eq",
        &bl,
        &mut LinearPhaseEq::new(RATE, 2, &gains).unwrap(),
    );
    run_stage(
        c,
        "dynamics",
        &bl,
        &mut Compressor::new(RATE, 2, -18.0, &style.compressor).unwrap(),
    );
    run_stage(
        c,
        "width",
        &bl,
        &mut StereoWidth::new(RATE, 2, 1.15).unwrap(),
    );
    let loud: Vec<Vec<Vec<f32>>> = bl
        .iter()
        .map(|b| {
            b.iter()
                .map(|c| c.iter().map(|v| v * 2.5).collect())
                .collect()
        })
        .collect();
    let settings = LimiterSettings::with_ceiling(-1.0);
    run_stage(
        c,
        "limiter_active",
        &loud,
        &mut TruePeakLimiter::new(RATE, 2, &settings).unwrap(),
    );
    let quiet: Vec<Vec<Vec<f32>>> = bl
        .iter()
        .map(|b| {
            b.iter()
                .map(|c| c.iter().map(|v| v * 0.3).collect())
                .collect()
        })
        .collect();
    run_stage(
        c,
        "limiter_idle",
        &quiet,
        &mut TruePeakLimiter::new(RATE, 2, &settings).unwrap(),
    );
}

criterion_group!(benches, stages);
criterion_main!(benches);
