use super::*;
use crate::testutil::*;

fn bands_of(planes: &[Vec<f32>], rate: u32) -> Vec<crate::report::SpectrumBand> {
    let mut a = OctaveAnalyzer::new(rate, planes.len()).unwrap();
    // Uneven blocks across segment boundaries.
    for chunk in (0..planes[0].len()).step_by(3000) {
        let end = (chunk + 3000).min(planes[0].len());
        let block: Vec<Vec<f32>> = planes.iter().map(|p| p[chunk..end].to_vec()).collect();
        a.add(&block);
    }
    a.finish();
    a.report_bands()
}

/// Least-squares slope of band level against octave number, dB per octave.
fn slope(bands: &[crate::report::SpectrumBand]) -> f64 {
    let pts: Vec<(f64, f64)> = bands
        .iter()
        .map(|b| ((b.hz / 1000.0).log2(), b.db))
        .collect();
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

#[test]
fn sines_land_in_their_octave_band() {
    let rate = 44_100;
    for (freq, band_hz) in [
        (1000.0, 1000.0),
        (250.0, 250.0),
        (60.0, 62.5),
        (5000.0, 4000.0),
    ] {
        let bands = bands_of(&[sine(freq, 0.5, rate, rate as usize * 3)], rate);
        assert_eq!(bands.len(), 10);
        let best = bands.iter().max_by(|a, b| a.db.total_cmp(&b.db)).unwrap();
        assert_eq!(best.hz, band_hz, "{freq} Hz: {bands:?}");
        for b in &bands {
            if b.hz != band_hz {
                assert!(
                    best.db - b.db > 30.0,
                    "{freq} Hz leaks into {} Hz: {bands:?}",
                    b.hz
                );
            }
        }
    }
    let bands = bands_of(&[sine(1000.0, 0.5, rate, rate as usize)], rate);
    let k1 = bands.iter().find(|b| b.hz == 1000.0).unwrap();
    assert_eq!(k1.db, 0.0, "levels are relative to the 1 kHz band");
}

#[test]
fn noise_slopes_white_plus_three_pink_flat() {
    let rate = 48_000;
    let n = rate as usize * 30;
    let white = bands_of(&[white_noise(0.5, n, 1), white_noise(0.5, n, 2)], rate);
    let s = slope(&white);
    assert!(
        (s - 3.01).abs() < 0.25,
        "white noise slope {s:.2} dB/oct: {white:?}"
    );
    let pink = bands_of(&[pink_noise(0.5, n, 3)], rate);
    let s = slope(&pink);
    assert!(s.abs() < 0.4, "pink noise slope {s:.2} dB/oct: {pink:?}");
    for b in &pink {
        assert!(b.db.abs() < 1.5, "pink band {} Hz at {:.2} dB", b.hz, b.db);
    }
}

#[test]
fn bands_above_nyquist_are_omitted_and_short_input_works() {
    let bands = bands_of(&[white_noise(0.5, 11_025 * 2, 4)], 11_025);
    let hz: Vec<f64> = bands.iter().map(|b| b.hz).collect();
    assert_eq!(
        hz,
        [31.25, 62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0]
    );
    // Shorter than one FFT segment.
    let bands = bands_of(&[sine(1000.0, 0.5, 48_000, 2000)], 48_000);
    let best = bands.iter().max_by(|a, b| a.db.total_cmp(&b.db)).unwrap();
    assert_eq!(best.hz, 1000.0);
    // Silence: 0 dB everywhere rather than NaN.
    let bands = bands_of(&[vec![0.0; 48_000]], 48_000);
    assert!(bands.iter().all(|b| b.db == 0.0));
}

#[test]
fn correlation_of_identical_inverted_and_independent_channels() {
    let n = 48_000 * 5;
    let a = pink_noise(0.5, n, 5);
    let inv: Vec<f32> = a.iter().map(|x| -x).collect();
    let b = pink_noise(0.5, n, 6);
    let corr = |l: &Vec<f32>, r: &Vec<f32>| {
        let mut s = SignalStats::new(2);
        s.add_block(&[l, r]);
        s.correlation()
    };
    assert!((corr(&a, &a) - 1.0).abs() < 1e-9);
    assert!((corr(&a, &inv) + 1.0).abs() < 1e-9);
    let white_a = white_noise(0.5, n, 7);
    let white_b = white_noise(0.5, n, 8);
    assert!(corr(&white_a, &white_b).abs() < 0.01);
    // Pink noise is low-pass: independent channels still correlate near 0.
    assert!(corr(&a, &b).abs() < 0.1, "{}", corr(&a, &b));
    let mut mono = SignalStats::new(1);
    mono.add_block(&[&a]);
    assert_eq!(mono.correlation(), 1.0);
}

#[test]
fn crest_factor_of_a_sine_is_three_db() {
    let mut s = SignalStats::new(2);
    let x = sine(1000.0, 0.5, 48_000, 48_000);
    s.add_block(&[&x, &x]);
    assert!(
        (s.crest_factor_db() - 3.0103).abs() < 0.01,
        "{}",
        s.crest_factor_db()
    );
    assert!((s.peak_db() + 6.0206).abs() < 0.01);
}

#[test]
fn streaming_preview_follows_each_platform_policy() {
    let get = |p: &[StreamingPreview], name: &str| {
        p.iter()
            .find(|x| x.platform == name)
            .unwrap()
            .gain_applied_db
    };
    // Quiet track with plenty of headroom.
    let p = streaming_preview(-20.0, -10.0);
    assert_eq!(get(&p, "Spotify"), 6.0);
    assert_eq!(get(&p, "Apple Music"), 4.0);
    for name in ["YouTube", "Tidal", "Amazon Music", "Deezer"] {
        assert_eq!(get(&p, name), 0.0, "{name} only turns down");
    }
    // Quiet track with little headroom: positive gain capped at -1 dBTP.
    let p = streaming_preview(-20.0, -3.0);
    assert_eq!(get(&p, "Spotify"), 2.0);
    assert_eq!(get(&p, "Apple Music"), 2.0);
    // Loud track: everyone turns it down to their reference.
    let p = streaming_preview(-8.0, -0.3);
    assert_eq!(get(&p, "Spotify"), -6.0);
    assert_eq!(get(&p, "Apple Music"), -8.0);
    assert_eq!(get(&p, "YouTube"), -6.0);
    assert_eq!(get(&p, "Deezer"), -7.0);
    assert_eq!(p.len(), 6);
}

#[test]
fn analyze_file_reports_every_field() {
    let dir = temp_dir();
    let path = path_in(&dir, "tone.wav");
    let x = sine(1000.0, db_to_amp(-23.0), 44_100, 44_100 * 10);
    write_wav(&path, &[x.clone(), x], 44_100, WavKind::Float);
    let a = analyze_file(&path, None).unwrap();
    assert!((a.lufs + 23.0).abs() < 0.1, "{}", a.lufs);
    assert!((a.true_peak_db + 23.0).abs() < 0.1);
    assert!((a.sample_peak_db + 23.0).abs() < 0.01);
    assert!((a.plr_db - 0.0).abs() < 0.2);
    assert!((a.crest_factor_db - 3.01).abs() < 0.02);
    assert!(a.lra < 0.5);
    assert!((a.duration_sec - 10.0).abs() < 1e-9);
    assert_eq!((a.sample_rate, a.channels), (44_100, 2));
    assert!((a.stereo_correlation - 1.0).abs() < 1e-9);
    assert_eq!(a.spectrum.len(), 10);
    assert_eq!(a.streaming_preview.len(), 6);
    // JSON-safe: every number finite.
    assert!(all_finite(&a), "non-finite number in the analysis");
}

fn all_finite(a: &Analysis) -> bool {
    let nums = [
        a.lufs,
        a.true_peak_db,
        a.sample_peak_db,
        a.lra,
        a.plr_db,
        a.crest_factor_db,
        a.stereo_correlation,
    ];
    nums.iter().all(|x| x.is_finite()) && a.spectrum.iter().all(|b| b.db.is_finite())
}

/// The stereo single pass gives exactly the sums of the per-channel passes (the mono and
/// multichannel path): correlation, RMS and peak bit for bit, block by block.
#[test]
fn stereo_stats_single_pass_equals_the_per_channel_sums() {
    let x = crate::dsp::test_signals::music_like(7, 44_100, 44_100 + 13, 2, 0.97);
    let mut fast = SignalStats::new(2);
    let mut slow = SignalStats::new(2);
    for start in (0..x[0].len()).step_by(4099) {
        let end = (start + 4099).min(x[0].len());
        let block: Vec<&[f32]> = x.iter().map(|p| &p[start..end]).collect();
        fast.add_block(&block);
        // The per-channel path, as for mono and more than two channels.
        for plane in &block {
            let (sq, peak) = sum_sq_and_peak(plane);
            slow.peak = slow.peak.max(peak);
            slow.sum_sq += sq;
            slow.samples += plane.len() as u64;
        }
        let (lr, ll, rr) = cross_sums(block[0], block[1]);
        slow.sum_lr += lr;
        slow.sum_ll += ll;
        slow.sum_rr += rr;
    }
    assert_eq!(fast.correlation(), slow.correlation());
    assert_eq!(fast.rms_db(), slow.rms_db());
    assert_eq!(fast.peak_db(), slow.peak_db());
    assert_eq!(fast.crest_factor_db(), slow.crest_factor_db());
    assert_eq!((fast.sum_ll, fast.sum_rr), (slow.sum_ll, slow.sum_rr));
    assert!(fast.correlation() > -1.0 && fast.correlation() < 1.0);
}
