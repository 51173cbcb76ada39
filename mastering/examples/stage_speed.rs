//! Times each streaming stage on a generated 3-minute 44.1 kHz stereo 16-bit WAV and prints
//! the real-time factor of each (one core).
//!
//! `cargo run -p mastering --release --example stage_speed [seconds]`

use mastering::decode::Decoder;
use mastering::dsp::spectrum::OctaveAnalyzer;
use mastering::encode::create_encoder;
use mastering::meter::{FastMeter, LoudnessMeter, MeterMode};
use mastering::{MasterParams, OutputFormat, Style};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

#[path = "../benches/support/signal.rs"]
mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args().nth(1).map_or(Ok(180.0), |s| s.parse())?;
    let rate = 44_100u32;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.wav");
    write_test_wav(&input, rate, secs)?;

    // Decode everything once into memory so the other stages are timed alone.
    let t = Instant::now();
    let mut dec = Decoder::open(&input)?;
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    while dec.read_block(&mut block)? > 0 {
        blocks.push(block.clone());
    }
    report("decode (WAV 16)", secs, t.elapsed().as_secs_f64());

    for (name, mode) in [
        ("meter I only", MeterMode::INTEGRATED),
        ("meter I + true peak", MeterMode::INTEGRATED_TRUE_PEAK),
        ("meter full (I, LRA, TP)", MeterMode::FULL),
    ] {
        let t = Instant::now();
        let mut m = LoudnessMeter::new(2, rate, mode)?;
        for b in &blocks {
            m.add_block(b)?;
        }
        let _ = m.integrated();
        report(name, secs, t.elapsed().as_secs_f64());
    }

    for (name, mode) in [
        ("fast meter I only", MeterMode::INTEGRATED),
        ("fast meter I + true peak", MeterMode::INTEGRATED_TRUE_PEAK),
        ("fast meter full (I, LRA, TP)", MeterMode::FULL),
    ] {
        let t = Instant::now();
        let mut m = FastMeter::new(2, rate, mode)?;
        for b in &blocks {
            m.add_block(b)?;
        }
        let _ = (m.integrated(), m.lra());
        report(name, secs, t.elapsed().as_secs_f64());
    }

    let t = Instant::now();
    let mut s = OctaveAnalyzer::new(rate, 2)?;
    for b in &blocks {
        s.add(b);
    }
    let _ = s.spectrum_db();
    report("spectrum (Welch LTAS)", secs, t.elapsed().as_secs_f64());

    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ] {
        let out = dir.path().join(format!("out.{}", format.extension()));
        let t = Instant::now();
        let mut enc = create_encoder(&out, format, rate, 2)?;
        for b in &blocks {
            enc.write(b)?;
        }
        enc.finish()?;
        report(
            &format!("encode {format:?}"),
            secs,
            t.elapsed().as_secs_f64(),
        );
        if let OutputFormat::Flac { .. } = format {
            let t = Instant::now();
            let mut d = Decoder::open(&out)?;
            while d.read_block(&mut block)? > 0 {}
            report("decode (FLAC)", secs, t.elapsed().as_secs_f64());
        }
    }

    for style in [Style::Standard, Style::Edm] {
        let out = dir.path().join("master.wav");
        let params = MasterParams::new(style, None, None, OutputFormat::Wav { bit_depth: 16 })?;
        let t = Instant::now();
        let rep =
            mastering::master_file(&input, &out, &params, &mut |_| {}, &AtomicBool::new(false))?;
        report(
            &format!(
                "master_file {style} ({:.1} LUFS) WAV 16",
                params.target_lufs
            ),
            secs,
            t.elapsed().as_secs_f64(),
        );
        for (stage, s) in &rep.stage_seconds {
            println!("    {stage:<28} {s:>7.3} s");
        }
        println!(
            "    before {:.2} LUFS {:.2} dBTP, after {:.2} LUFS {:.2} dBTP",
            rep.before.lufs, rep.before.true_peak_db, rep.after.lufs, rep.after.true_peak_db
        );
    }
    Ok(())
}

fn report(name: &str, audio_secs: f64, wall: f64) {
    println!(
        "{name:<40} {wall:>7.3} s  {:>8.0}x real time",
        audio_secs / wall
    );
}

/// The shared generated programme (`benches/support/signal.rs`) as a 16-bit stereo WAV.
fn write_test_wav(path: &std::path::Path, rate: u32, secs: f64) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    let planes = support::music_like(rate, secs);
    for (&l, &r) in planes[0].iter().zip(&planes[1]) {
        w.write_sample((l.clamp(-1.0, 1.0) * 32000.0) as i16)?;
        w.write_sample((r.clamp(-1.0, 1.0) * 32000.0) as i16)?;
    }
    w.finalize()
}
