//! Property test of the decode boundary (issue 10, "Also"): damaged and hostile files of every
//! supported format fed to [`mastering::probe`] and to the decode loop the chain uses.
//!
//! Small real files of each format are made here with ffmpeg (a generated signal, mono and
//! stereo, several sample rates; nothing is committed), plus the short frozen-bubble Vorbis
//! files when `MAGIC_MASTER_TEST_MUSIC_DIR` is set. Each file is then mutated by a seeded,
//! deterministic generator: truncation at every offset of the header region and around every
//! container marker, single and multiple bit flips and random byte runs (biased toward the
//! headers), 16- and 32-bit fields set to extremes (0, 1, `i32::MAX`, `u32::MAX`, …) in both
//! byte orders, and random bytes behind a valid magic prefix.
//!
//! For every case: no panic (each call runs under `catch_unwind`; the input that panicked is
//! named and saved), `Ok` or a permanent typed error (a damaged file must not read as a
//! transient I/O failure, which the worker would retry), a bounded heap (the test binary's
//! global allocator is [`cap::Cap`]: the peak over each case, less what was allocated before
//! it, stays under [`HEAP_BOUND`], and an allocation beyond [`HEAP_HARD_LIMIT`] fails instead
//! of reaching the system), and a bounded time ([`CASE_TIMEOUT`] per case, enforced by the
//! test thread while the cases run on another).

use cap::Cap;
use mastering::MasterError;
use mastering::decode::Decoder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::System;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// Heap a single case may hold at its peak beyond what the harness held before it. The
/// decoder holds one packet and one block: the highest peak of one case here is about 4 MiB.
/// 16 MiB is well above that and far below what a header claiming gigabytes would cost.
const HEAP_BOUND: usize = 16 << 20;
/// An allocation that would take a case past this fails (and aborts the test binary with
/// "memory allocation of N bytes failed") instead of taking the machine's memory.
const HEAP_HARD_LIMIT: usize = 1 << 30;
/// Longest one case may take (probe plus a full decode of a file of a few seconds; typically
/// a few milliseconds).
const CASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the whole run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Frames the full decode of one case reads at most: a damaged header may announce (and a
/// damaged FLAC frame may produce) far more audio than the file holds; the duration cap is
/// the caller's business, here only the memory and the time of each step matter.
const MAX_DECODED_FRAMES: u64 = 10_000_000;
/// Failing inputs kept on disk (the others are only named).
const MAX_KEPT_INPUTS: usize = 20;
/// Seed of the mutation generator (the run is the same on every machine).
const SEED: u64 = 0x1550_e10f_0220;

/// Serialises the tests of this binary: the allocator's counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` and returns its result with the peak heap it held above what was allocated
/// before it, or why that peak cannot be told.
///
/// The allocator keeps one high-water mark for the whole process. A call whose peak passes
/// the mark raises it, and then the mark is that call's peak; a call that stays under it held
/// at most `mark - held`, which must itself be within [`HEAP_BOUND`] for the call to be
/// judged. An allocation that would take the call past [`HEAP_HARD_LIMIT`] fails instead.
fn with_peak_heap<T>(f: impl FnOnce() -> T) -> (T, Result<usize, String>) {
    let held = HEAP.allocated();
    let mark = HEAP.max_allocated();
    HEAP.set_limit(held + HEAP_HARD_LIMIT)
        .expect("the limit is above what is allocated");
    let out = f();
    HEAP.set_limit(usize::MAX).expect("lifting the limit");
    let new_mark = HEAP.max_allocated();
    let peak = if new_mark > mark {
        Ok(new_mark.saturating_sub(held))
    } else if mark.saturating_sub(held) <= HEAP_BOUND + (1 << 20) {
        Ok(0)
    } else {
        Err(format!(
            "the heap cannot be judged: {held} bytes held, an earlier high-water mark of {mark}"
        ))
    };
    (out, peak)
}

/// One input file the mutations start from.
struct Base {
    name: String,
    ext: &'static str,
    bytes: Vec<u8>,
}

/// Starts `cmd` with its stderr piped.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): install ffmpeg"))
}

/// Waits for `child` until `deadline`, killing it then; panics with its stderr when it fails.
fn wait_until(mut child: Child, what: &str, deadline: Instant) {
    loop {
        match child.try_wait().expect("waiting for ffmpeg") {
            Some(status) => {
                let mut err = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut err);
                }
                assert!(status.success(), "ffmpeg making {what} failed: {err}");
                return;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ffmpeg making {what} did not finish in time");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A generated signal: a tone per channel plus a little noise, so that lossless and lossy
/// codecs alike produce varied frames.
fn lavfi_source(rate: u32, channels: u32, seconds: f64) -> String {
    let exprs: Vec<String> = (0..channels)
        .map(|c| format!("0.45*sin(2*PI*{}*t)+0.05*(random({c})-0.5)", 330 + 220 * c))
        .collect();
    format!("aevalsrc=exprs={}:s={rate}:d={seconds}", exprs.join("|"))
}

/// A base file to make: name, extension, sample rate, channels, seconds, ffmpeg's output
/// options.
type BaseSpec = (
    &'static str,
    &'static str,
    u32,
    u32,
    f64,
    &'static [&'static str],
);

const FLAC24: &[&str] = &[
    "-c:a",
    "flac",
    "-sample_fmt",
    "s32",
    "-bits_per_raw_sample",
    "24",
];
const AAC_FASTSTART: &[&str] = &["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"];

/// Small real files of every format the decoder supports, made with ffmpeg in `dir`.
fn make_bases(dir: &Path) -> Vec<Base> {
    // PCM and lossless files are short (their size is what costs); one file of each codec
    // family lasts 2.5 s or more, at a low rate, so that probe also seeks to its end.
    #[rustfmt::skip]
    let specs: &[BaseSpec] = &[
        ("pcm16-stereo", "wav", 44_100, 2, 0.5, &["-c:a", "pcm_s16le"]),
        ("pcm24-mono", "wav", 11_025, 1, 2.5, &["-c:a", "pcm_s24le"]),
        ("float32-stereo", "wav", 22_050, 2, 0.5, &["-c:a", "pcm_f32le"]),
        ("u8-mono", "wav", 8_000, 1, 1.0, &["-c:a", "pcm_u8"]),
        ("adpcm-ima-mono", "wav", 16_000, 1, 3.0, &["-c:a", "adpcm_ima_wav"]),
        ("adpcm-ms-stereo", "wav", 22_050, 2, 1.0, &["-c:a", "adpcm_ms"]),
        ("aiff-stereo", "aiff", 44_100, 2, 0.5, &["-c:a", "pcm_s16be"]),
        ("caf-mono", "caf", 8_000, 1, 3.0, &["-c:a", "pcm_s16le"]),
        ("flac16-stereo", "flac", 44_100, 2, 0.5, &["-c:a", "flac"]),
        ("flac24-mono", "flac", 96_000, 1, 0.6, FLAC24),
        ("mp3-stereo", "mp3", 44_100, 2, 1.0, &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("mp3-mono", "mp3", 22_050, 1, 3.0, &["-c:a", "libmp3lame", "-b:a", "64k"]),
        ("vorbis-stereo", "ogg", 44_100, 2, 1.5, &["-c:a", "libvorbis", "-q:a", "3"]),
        ("vorbis-mono", "ogg", 16_000, 1, 3.0, &["-c:a", "libvorbis", "-q:a", "2"]),
        ("aac-stereo", "m4a", 44_100, 2, 1.5, &["-c:a", "aac", "-b:a", "96k"]),
        ("aac-mono-faststart", "m4a", 24_000, 1, 3.0, AAC_FASTSTART),
        ("aac-adts", "aac", 44_100, 2, 1.5, &["-c:a", "aac", "-b:a", "96k"]),
        ("alac-mono", "m4a", 8_000, 1, 3.0, &["-c:a", "alac"]),
        ("mka-flac", "mka", 16_000, 1, 3.0, &["-c:a", "flac"]),
    ];
    // All at once (each ffmpeg is a short single-threaded encode), then collected in order.
    let children: Vec<Child> = specs
        .iter()
        .map(|&(name, ext, rate, channels, seconds, opts)| {
            spawn(
                Command::new("ffmpeg")
                    .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
                    .args(["-threads", "1"])
                    .args(["-f", "lavfi", "-i", &lavfi_source(rate, channels, seconds)])
                    .args([
                        "-metadata",
                        "title=Fuzz base",
                        "-metadata",
                        "artist=Magic Master",
                    ])
                    .args(opts)
                    .arg(dir.join(format!("{name}.{ext}"))),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    specs
        .iter()
        .zip(children)
        .map(|(&(name, ext, ..), child)| {
            let path = dir.join(format!("{name}.{ext}"));
            wait_until(child, &format!("{name}.{ext}"), deadline);
            let bytes = std::fs::read(&path).expect("ffmpeg wrote the base file");
            // The base itself must decode: otherwise the mutations prove nothing.
            if let Err(e) = mastering::probe(&path) {
                panic!("base file {name}.{ext} does not probe: {e}");
            }
            Base {
                name: name.to_string(),
                ext,
                bytes,
            }
        })
        .collect()
}

/// The short frozen-bubble Vorbis files (the long tracks take too long per case).
fn real_bases() -> Vec<Base> {
    let Ok(dir) = std::env::var("MAGIC_MASTER_TEST_MUSIC_DIR") else {
        eprintln!("decode_fuzz: MAGIC_MASTER_TEST_MUSIC_DIR is not set: generated files only");
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("MAGIC_MASTER_TEST_MUSIC_DIR={dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ogg"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.len(), p)))
        .filter(|(len, _)| *len <= 32 * 1024)
        .collect();
    files.sort();
    // The largest of the short ones: the most packets, several pages.
    files
        .iter()
        .rev()
        .take(3)
        .map(|(_, p)| Base {
            name: format!(
                "frozen-bubble-{}",
                p.file_stem().unwrap_or_default().to_string_lossy()
            ),
            ext: "ogg",
            bytes: std::fs::read(p).expect("reading a test-music file"),
        })
        .collect()
}

/// Offsets of the container markers in `bytes` (chunk ids, box types, sync words), at most a
/// few of each: the header fields sit right behind them.
fn marker_offsets(bytes: &[u8]) -> Vec<usize> {
    const MARKERS: &[&[u8]] = &[
        b"RIFF",
        b"WAVE",
        b"fmt ",
        b"data",
        b"LIST",
        b"fact",
        b"FORM",
        b"AIFF",
        b"COMM",
        b"SSND",
        b"caff",
        b"desc",
        b"pakt",
        b"fLaC",
        b"OggS",
        b"\x01vorbis",
        b"\x03vorbis",
        b"\x05vorbis",
        b"ID3",
        b"Xing",
        b"Info",
        b"LAME",
        b"ftyp",
        b"moov",
        b"mvhd",
        b"trak",
        b"mdia",
        b"mdhd",
        b"stsd",
        b"mp4a",
        b"alac",
        b"esds",
        b"stts",
        b"stsc",
        b"stsz",
        b"stco",
        b"co64",
        b"mdat",
        b"udta",
        b"meta",
        b"ilst",
        b"\x1a\x45\xdf\xa3",
        b"\x18\x53\x80\x67",
        b"\x16\x54\xae\x6b",
        b"\x1f\x43\xb6\x75",
        b"\xa3",
    ];
    let mut out = Vec::new();
    for marker in MARKERS {
        let mut found = 0;
        let mut from = 0;
        while found < 4 && from + marker.len() <= bytes.len() {
            match bytes[from..]
                .windows(marker.len())
                .position(|w| w == *marker)
            {
                Some(i) => {
                    out.push(from + i);
                    from += i + 1;
                    found += 1;
                }
                None => break,
            }
        }
    }
    // MPEG audio frame sync words (MP3, ADTS), the first few.
    out.extend(
        bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == 0xff && w[1] & 0xe0 == 0xe0)
            .map(|(i, _)| i)
            .take(6),
    );
    out.sort_unstable();
    out.dedup();
    out
}

/// A mutation of a base file: its first `keep` bytes, with `xor` masks and `patch`es
/// applied, then `append`ed bytes. The cases are kept as mutations and applied one at a time,
/// so that the harness itself holds little heap while a case is measured.
#[derive(Default)]
struct Mutation {
    keep: usize,
    xor: Vec<(usize, u8)>,
    patch: Option<(usize, Vec<u8>)>,
    append: Vec<u8>,
}

impl Mutation {
    fn apply(&self, base: &[u8]) -> Vec<u8> {
        let mut m = base[..self.keep.min(base.len())].to_vec();
        for &(pos, mask) in &self.xor {
            if let Some(b) = m.get_mut(pos) {
                *b ^= mask;
            }
        }
        if let Some((pos, bytes)) = &self.patch {
            let end = (pos + bytes.len()).min(m.len());
            if *pos < end {
                m[*pos..end].copy_from_slice(&bytes[..end - pos]);
            }
        }
        m.extend_from_slice(&self.append);
        m
    }
}

/// One case: a mutation of `bases[base]`, and how it was made.
struct Case {
    base: usize,
    label: String,
    mutation: Mutation,
}

/// A position biased toward the headers: the first 512 bytes, the markers, or anywhere.
fn header_biased_pos(rng: &mut StdRng, len: usize, markers: &[usize]) -> usize {
    match rng.random_range(0..10) {
        0..=4 => rng.random_range(0..len.min(512)),
        5..=7 if !markers.is_empty() => {
            let m = markers[rng.random_range(0..markers.len())];
            (m + rng.random_range(0..24)).min(len - 1)
        }
        _ => rng.random_range(0..len),
    }
}

/// Every mutation of `bases[index]`, in a fixed order.
fn cases_of(bases: &[Base], index: usize, rng: &mut StdRng) -> Vec<Case> {
    let base = &bases[index];
    let len = base.bytes.len();
    let markers = marker_offsets(&base.bytes);
    let mut cases = Vec::new();
    let mut push = |label: String, mutation: Mutation| {
        cases.push(Case {
            base: index,
            label: format!("{}.{}: {label}", base.name, base.ext),
            mutation,
        })
    };
    let whole = || Mutation {
        keep: len,
        ..Mutation::default()
    };

    // Truncations: every offset of the header region, around every marker, and at fractions
    // of the file.
    let mut cuts: Vec<usize> = (0..len.min(80)).collect();
    for &m in &markers {
        cuts.extend([m, m + 1, m + 4, m + 8, m + 12, m + 20, m + 40]);
    }
    cuts.extend((1..16).map(|k| len * k / 16));
    cuts.extend([len - 1, len.saturating_sub(7)]);
    cuts.retain(|&c| c < len);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        push(
            format!("truncated to {cut} bytes"),
            Mutation {
                keep: cut,
                ..Mutation::default()
            },
        );
    }

    // Single bit flips, header-biased.
    for _ in 0..48 {
        let pos = header_biased_pos(rng, len, &markers);
        let bit = rng.random_range(0..8);
        push(
            format!("bit {bit} of byte {pos} flipped"),
            Mutation {
                xor: vec![(pos, 1 << bit)],
                ..whole()
            },
        );
    }
    // Several bit flips at once.
    for _ in 0..24 {
        let flips: Vec<(usize, u8)> = (0..rng.random_range(2..=12))
            .map(|_| {
                (
                    header_biased_pos(rng, len, &markers),
                    1 << rng.random_range(0..8),
                )
            })
            .collect();
        push(
            format!("bits flipped (byte, mask): {flips:?}"),
            Mutation {
                xor: flips,
                ..whole()
            },
        );
    }
    // Runs of random bytes.
    for _ in 0..24 {
        let pos = header_biased_pos(rng, len, &markers);
        let run = rng.random_range(1..=64).min(len - pos);
        let bytes: Vec<u8> = (0..run).map(|_| rng.random()).collect();
        push(
            format!("random bytes at {pos}: {bytes:02x?}"),
            Mutation {
                patch: Some((pos, bytes)),
                ..whole()
            },
        );
    }
    // 16- and 32-bit fields set to extremes (chunk and box sizes, sample rates, channel
    // counts, sample and frame counts), both byte orders: behind the markers, and at random
    // offsets of the first 128 bytes.
    const EXTREMES32: [u32; 6] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
    const EXTREMES16: [u16; 4] = [0, 1, 0x7fff, 0xffff];
    let mut field_offsets: Vec<usize> = markers
        .iter()
        .flat_map(|&m| [m.saturating_sub(4), m + 4, m + 8, m + 12, m + 16, m + 20])
        .collect();
    field_offsets.extend((0..24).map(|_| rng.random_range(0..len.min(128))));
    field_offsets.retain(|&off| off + 4 <= len);
    field_offsets.sort_unstable();
    field_offsets.dedup();
    for &off in &field_offsets {
        let value = EXTREMES32[rng.random_range(0..EXTREMES32.len())];
        for bytes in [value.to_le_bytes(), value.to_be_bytes()] {
            push(
                format!("u32 at {off} set to bytes {bytes:02x?}"),
                Mutation {
                    patch: Some((off, bytes.to_vec())),
                    ..whole()
                },
            );
        }
        let value = EXTREMES16[rng.random_range(0..EXTREMES16.len())];
        let bytes = if rng.random_bool(0.5) {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        push(
            format!("u16 at {off} set to bytes {bytes:02x?}"),
            Mutation {
                patch: Some((off, bytes.to_vec())),
                ..whole()
            },
        );
    }
    // Every even offset of the first 64 bytes (where the fixed headers keep their counts,
    // rates and sizes) set to 0, to 1 in both byte orders and to u32::MAX.
    for off in (0..len.saturating_sub(3).min(64)).step_by(2) {
        for bytes in [[0; 4], [0xff; 4], 1u32.to_le_bytes(), 1u32.to_be_bytes()] {
            push(
                format!("u32 at {off} set to bytes {bytes:02x?}"),
                Mutation {
                    patch: Some((off, bytes.to_vec())),
                    ..whole()
                },
            );
        }
    }
    // The real header, then random bytes (cut behind a marker or in the first 256 bytes).
    for _ in 0..12 {
        let keep = if !markers.is_empty() && rng.random_bool(0.5) {
            markers[rng.random_range(0..markers.len())] + rng.random_range(4..16)
        } else {
            rng.random_range(4..256)
        }
        .min(len);
        let extra = rng.random_range(0..8192);
        push(
            format!("first {keep} bytes, then {extra} random bytes"),
            Mutation {
                keep,
                append: (0..extra).map(|_| rng.random()).collect(),
                ..Mutation::default()
            },
        );
    }
    cases
}

/// Random bytes behind the magic of every container, as extra (empty) bases and their cases.
fn magic_cases(bases: &mut Vec<Base>, rng: &mut StdRng) -> Vec<Case> {
    let magics: &[(&[u8], &'static str)] = &[
        (b"RIFF\xff\xff\xff\xffWAVEfmt ", "wav"),
        (b"RIFF\x24\x00\x00\x00WAVE", "wav"),
        (b"FORM\xff\xff\xff\xffAIFFCOMM", "aiff"),
        (b"FORM\x00\x00\x10\x00AIFC", "aiff"),
        (b"caff\x00\x01\x00\x00desc", "caf"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"fLaC", "flac"),
        (b"OggS\x00\x02", "ogg"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "m4a"),
        (
            b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41\xff\xff\xff\xffmoov",
            "m4a",
        ),
        (b"\x1a\x45\xdf\xa3", "mka"),
    ];
    let mut out = Vec::new();
    for &(magic, ext) in magics {
        bases.push(Base {
            name: format!("magic {magic:02x?}"),
            ext,
            bytes: magic.to_vec(),
        });
        let index = bases.len() - 1;
        for i in 0..12 {
            let extra = [16, 64, 256, 1024, 8192, 65_536][i % 6];
            out.push(Case {
                base: index,
                label: format!("magic {magic:02x?} then {extra} random bytes (#{i})"),
                mutation: Mutation {
                    keep: magic.len(),
                    append: (0..extra).map(|_| rng.random()).collect(),
                    ..Mutation::default()
                },
            });
        }
    }
    out
}

/// The decode loop the chain runs (block size included), bounded in frames.
fn decode_all(path: &Path) -> Result<u64, MasterError> {
    let mut decoder = Decoder::open_with_block(path, mastering::chain::BLOCK_FRAMES)?;
    let mut block = Vec::new();
    let mut frames = 0u64;
    loop {
        let n = decoder.read_block(&mut block)?;
        if n == 0 || frames > MAX_DECODED_FRAMES {
            return Ok(frames);
        }
        if block.len() != decoder.channels() || block.iter().any(|p| p.len() != n) {
            return Err(MasterError::InvalidParameter(format!(
                "a block of {n} frames came with planes of {:?} samples",
                block.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        frames += n as u64;
    }
}

/// What one case did wrong, if anything; otherwise the frames its full decode delivered.
fn check_case(path: &Path) -> Result<u64, String> {
    match catch_unwind(AssertUnwindSafe(|| mastering::probe(path))) {
        Err(panic) => return Err(format!("probe panicked: {}", panic_text(&panic))),
        Ok(Ok(info)) => {
            if !(8_000..=192_000).contains(&info.sample_rate) || !(1..=32).contains(&info.channels)
            {
                return Err(format!("probe accepted {info:?}"));
            }
        }
        Ok(Err(e)) if !e.is_permanent() => {
            return Err(format!("probe: a transient error for damaged input: {e:?}"));
        }
        Ok(Err(_)) => {}
    }
    match catch_unwind(AssertUnwindSafe(|| decode_all(path))) {
        Err(panic) => Err(format!("decoding panicked: {}", panic_text(&panic))),
        Ok(Err(MasterError::InvalidParameter(msg))) => Err(format!("decoding: {msg}")),
        Ok(Err(e)) if !e.is_permanent() => Err(format!(
            "decoding: a transient error for damaged input: {e:?}"
        )),
        Ok(Ok(frames)) => Ok(frames),
        Ok(Err(_)) => Ok(0),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Where a failing input is kept for a rerun (`cargo test` prints the path).
fn keep_failing_input(label: &str, ext: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("decode_fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(120)
        .collect();
    let path = dir.join(format!("{name}.{ext}"));
    let _ = std::fs::write(&path, bytes);
    path
}

/// What a run found.
struct RunReport {
    failures: Vec<String>,
    /// The highest heap peak of one case above what the harness held before it, bytes.
    highest_peak: usize,
    /// Cases whose full decode stopped at [`MAX_DECODED_FRAMES`].
    capped: usize,
    /// Cases and seconds spent on them, per base file.
    time_per_file: Vec<(usize, f64)>,
    /// The slowest case: seconds and label.
    slowest: (f64, String),
}

/// Runs `check_case` on every case in a thread of its own, under the heap accounting, while
/// this thread enforces the time limits.
fn run_cases(dir: &Path, bases: Vec<Base>, cases: Vec<Case>) -> RunReport {
    // The case in progress and when it started (ms since `t0`), polled by this thread: a
    // message per case would wake it 30,000 times, which costs seconds on a loaded machine.
    let progress = Arc::new((AtomicUsize::new(usize::MAX), AtomicU64::new(0)));
    let t0 = Instant::now();
    let labels: Vec<String> = cases.iter().map(|c| c.label.clone()).collect();
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    let runner_progress = Arc::clone(&progress);
    let worker = std::thread::spawn(move || {
        let mut report = RunReport {
            failures: Vec::new(),
            highest_peak: 0,
            capped: 0,
            time_per_file: vec![(0, 0.0); bases.len()],
            slowest: (0.0, String::new()),
        };
        let mut heap_judged = true;
        for (i, case) in cases.iter().enumerate() {
            let base = &bases[case.base];
            let bytes = case.mutation.apply(&base.bytes);
            // A new name for each case: rewriting one file in place makes ext4 flush it to
            // disk at every close (auto_da_alloc), 5 ms a case.
            let path = dir.join(format!("case-{i}.{}", base.ext));
            std::fs::write(&path, &bytes).expect("writing a case");
            let started_ms = t0.elapsed().as_millis() as u64;
            runner_progress.1.store(started_ms, Ordering::Relaxed);
            runner_progress.0.store(i, Ordering::Relaxed);
            let case_start = Instant::now();
            let (verdict, peak) = with_peak_heap(|| check_case(&path));
            let secs = case_start.elapsed().as_secs_f64();
            let time = &mut report.time_per_file[case.base];
            time.0 += 1;
            time.1 += secs;
            if secs > report.slowest.0 {
                report.slowest = (secs, case.label.clone());
            }
            let _ = std::fs::remove_file(&path);
            let verdict = verdict.and_then(|decoded| {
                if decoded > MAX_DECODED_FRAMES {
                    report.capped += 1;
                }
                if !heap_judged {
                    return Ok(());
                }
                let peak = peak.inspect_err(|_| heap_judged = false)?;
                report.highest_peak = report.highest_peak.max(peak);
                if peak > HEAP_BOUND {
                    // Later cases are under this high-water mark: from here on they are judged
                    // for panics and errors only.
                    heap_judged = false;
                    Err(format!(
                        "the heap peaked {:.1} MiB above the harness (bound {} MiB)",
                        peak as f64 / 1_048_576.0,
                        HEAP_BOUND >> 20
                    ))
                } else {
                    Ok(())
                }
            });
            if let Err(why) = verdict {
                let kept = if report.failures.len() < MAX_KEPT_INPUTS {
                    let path = keep_failing_input(&case.label, base.ext, &bytes);
                    format!(" (input kept at {})", path.display())
                } else {
                    String::new()
                };
                report
                    .failures
                    .push(format!("{} → {why}{kept}", case.label));
            }
        }
        runner_progress.0.store(usize::MAX, Ordering::Relaxed);
        let _ = tx.send(report);
    });
    let in_progress = || {
        let i = progress.0.load(Ordering::Relaxed);
        labels.get(i).map_or("none", String::as_str)
    };
    let report = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(report) => break report,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now_ms = t0.elapsed().as_millis() as u64;
                let case_ms = now_ms.saturating_sub(progress.1.load(Ordering::Relaxed));
                if case_ms > CASE_TIMEOUT.as_millis() as u64 {
                    panic!(
                        "a case ran for more than {CASE_TIMEOUT:?}: {}",
                        in_progress()
                    );
                }
                if t0.elapsed() > RUN_TIMEOUT {
                    panic!(
                        "the run took more than {RUN_TIMEOUT:?}; case in progress: {}",
                        in_progress()
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The runner died: a panic outside catch_unwind, in the harness itself.
                let err = worker.join().err().map(|p| panic_text(&p));
                panic!(
                    "the case runner stopped ({err:?}); case in progress: {}",
                    in_progress()
                );
            }
        }
    };
    worker
        .join()
        .expect("the case runner ends after sending its report");
    report
}

#[test]
fn damaged_files_of_every_format_never_panic_nor_allocate_without_bound() {
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bases = make_bases(dir.path());
    bases.extend(real_bases());
    let files = bases.len();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut cases: Vec<Case> = (0..bases.len())
        .flat_map(|i| cases_of(&bases, i, &mut rng))
        .collect();
    cases.extend(magic_cases(&mut bases, &mut rng));
    let magics = bases.len() - files;
    let total = cases.len();
    let setup = started.elapsed();

    let names: Vec<String> = bases
        .iter()
        .map(|b| format!("{}.{}", b.name, b.ext))
        .collect();
    let report = run_cases(dir.path(), bases, cases);
    for (name, (n, secs)) in names.iter().zip(&report.time_per_file) {
        eprintln!("decode_fuzz: {name}: {n} cases, {secs:.2} s");
    }
    eprintln!(
        "decode_fuzz: {total} cases from {files} files and {magics} magics, setup {:.1} s, \
         run {:.1} s, highest heap peak of one case {:.2} MiB, {} decodes stopped at {} frames",
        setup.as_secs_f64(),
        (started.elapsed() - setup).as_secs_f64(),
        report.highest_peak as f64 / 1_048_576.0,
        report.capped,
        MAX_DECODED_FRAMES
    );
    eprintln!(
        "decode_fuzz: slowest case {:.3} s: {}",
        report.slowest.0, report.slowest.1
    );
    assert!(total >= 5_000, "only {total} cases");
    assert!(
        report.failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}

/// An AIFF file: a COMM chunk with `channels` and `frames`, 16 bits at 44.1 kHz, and an SSND
/// chunk holding `data`.
fn aiff_bytes(channels: u16, frames: u32, data: &[u8]) -> Vec<u8> {
    let mut comm = Vec::new();
    comm.extend_from_slice(&channels.to_be_bytes());
    comm.extend_from_slice(&frames.to_be_bytes());
    comm.extend_from_slice(&16u16.to_be_bytes());
    // 44,100 as an 80-bit IEEE 754 extended float.
    comm.extend_from_slice(&[0x40, 0x0e, 0xac, 0x44, 0, 0, 0, 0, 0, 0]);
    let mut ssnd = vec![0u8; 8]; // offset, block size
    ssnd.extend_from_slice(data);
    let mut body = b"AIFF".to_vec();
    for (id, chunk) in [(b"COMM", &comm), (b"SSND", &ssnd)] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        body.extend_from_slice(chunk);
    }
    let mut file = b"FORM".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_be_bytes());
    file.extend_from_slice(&body);
    file
}

/// Found by the property test: an AIFF whose header claims 65,535 channels (a 100-byte file)
/// made the decoder reserve 145 MiB before the channel count was refused.
#[test]
fn a_header_claiming_65535_channels_is_refused_before_any_buffer_is_sized() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("channels.aiff");
    std::fs::write(&path, aiff_bytes(0xffff, 0xff7f_ac44, &[0x12; 64])).expect("writing");
    let (probed, peak) = with_peak_heap(|| mastering::probe(&path));
    let (opened, open_peak) = with_peak_heap(|| Decoder::open(&path).map(|_| ()));
    for (what, result, peak) in [
        ("probe", probed.map(|_| ()), peak),
        ("open", opened, open_peak),
    ] {
        let err = result.expect_err("65,535 channels are refused");
        assert!(
            matches!(&err, MasterError::Unsupported(m) if m.contains("65535 channels")),
            "{what}: {err:?}"
        );
        let peak = peak.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(peak < 1 << 20, "{what}: the heap peaked at {peak} bytes");
    }
}

/// A CAF file of 16-bit little-endian PCM whose `desc` chunk says `frames_per_packet`, with a
/// `data` chunk holding `data`.
fn caf_bytes(channels: u32, frames_per_packet: u32, data: &[u8]) -> Vec<u8> {
    let mut file = b"caff\x00\x01\x00\x00".to_vec();
    file.extend_from_slice(b"desc");
    file.extend_from_slice(&32u64.to_be_bytes());
    file.extend_from_slice(&32_000f64.to_be_bytes());
    file.extend_from_slice(b"lpcm");
    file.extend_from_slice(&2u32.to_be_bytes()); // little-endian samples
    file.extend_from_slice(&(2 * channels).to_be_bytes()); // bytes per packet
    file.extend_from_slice(&frames_per_packet.to_be_bytes());
    file.extend_from_slice(&channels.to_be_bytes());
    file.extend_from_slice(&16u32.to_be_bytes()); // bits per channel
    file.extend_from_slice(b"data");
    file.extend_from_slice(&(data.len() as u64 + 4).to_be_bytes());
    file.extend_from_slice(&0u32.to_be_bytes()); // edit count
    file.extend_from_slice(data);
    file
}

/// Found by the property test: one flipped bit in a CAF header (frames per packet 1 →
/// 33,554,433) made the PCM decoder reserve 64 MiB per channel (symphonia 0.6.1 sizes its
/// buffer from that field; at `u32::MAX` the allocation fails and aborts the process).
#[test]
fn a_header_claiming_huge_packets_is_refused_before_any_buffer_is_sized() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("packets.caf");
    std::fs::write(&path, caf_bytes(2, 0x0200_0001, &[0x12; 4096])).expect("writing");
    let (probed, peak) = with_peak_heap(|| mastering::probe(&path));
    let (opened, open_peak) = with_peak_heap(|| Decoder::open(&path).map(|_| ()));
    for (what, result, peak) in [
        ("probe", probed.map(|_| ()), peak),
        ("open", opened, open_peak),
    ] {
        let peak = peak.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(peak < 1 << 20, "{what}: the heap peaked at {peak} bytes");
        let err = result.expect_err("33,554,433 frames per packet are refused");
        assert!(
            matches!(&err, MasterError::Corrupt(m) if m.contains("33554433 frames")),
            "{what}: {err:?}"
        );
    }
    // The same header with one frame per packet (plain PCM) decodes.
    std::fs::write(&path, caf_bytes(2, 1, &[0x12; 4096])).expect("writing");
    let info = mastering::probe(&path).expect("a well-formed CAF probes");
    assert_eq!((info.sample_rate, info.channels), (32_000, 2));
}
