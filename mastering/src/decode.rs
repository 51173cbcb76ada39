//! Streaming decoder: any format symphonia reads, delivered as planar `f32` blocks.
//!
//! [`Decoder`] never holds more than one decoded packet plus the caller's block, so a track
//! of any length decodes in bounded memory. Samples are converted to `f32` full scale
//! (±1.0); non-finite samples (NaN, ±Inf) become 0 and are counted; samples above 0 dBFS in
//! float input are kept as they are (never clipped) so later stages can bring them down.
//!
//! Damage handling: an isolated packet that fails to decode is skipped and counted (the
//! block simply continues with the next good packet); more than
//! [`MAX_CONSECUTIVE_BAD_PACKETS`] bad packets in a row, or a file where not a single packet
//! decodes, is [`MasterError::Corrupt`]. A file that ends early (truncated) keeps the audio
//! that was readable and sets [`DecodeStats::truncated`].

use crate::error::MasterError;
use crate::report::AudioInfo;
use std::fs::File;
use std::path::Path;
use symphonia::core::codecs::audio::well_known::CODEC_ID_PCM_S16LE;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::Time;

/// Frames per block the decoder delivers unless asked otherwise.
pub const DEFAULT_BLOCK_FRAMES: usize = 4096;
/// Lowest sample rate accepted, Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate accepted, Hz.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Most channels accepted.
pub const MAX_CHANNELS: usize = 32;
/// Channels up to which a duration limit holds unchanged ([`Decoder::limit_duration`]).
pub const DURATION_LIMIT_CHANNELS: f64 = 2.0;
/// Sample rate up to which a duration limit holds unchanged ([`Decoder::limit_duration`]).
pub const DURATION_LIMIT_RATE: f64 = 96_000.0;
/// Most samples (frames × channels) one packet may hold: decoders size their buffers from the
/// header's frames per packet. Real codecs stay far under it (FLAC 65,535 × 8, ADPCM blocks
/// about 131,000 frames of mono, MP3 1152, AAC 2048, Vorbis 8192); 2^20 samples are 4 MiB of f32.
pub const MAX_PACKET_SAMPLES: u64 = 1 << 20;
/// Bad packets in a row after which the file is declared corrupt.
pub const MAX_CONSECUTIVE_BAD_PACKETS: usize = 16;
/// How far before its declared end [`probe`] starts decoding a file to prove it is whole, s.
pub const TAIL_CHECK_SECONDS: f64 = 2.0;
/// Audio that may be missing at the end before a file counts as truncated, s (a partial
/// last frame is common in MP3 files and harmless).
pub const TRUNCATION_TOLERANCE_SECONDS: f64 = 0.5;

/// What the decoder saw while reading, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames (samples per channel) delivered so far.
    pub frames: u64,
    /// NaN or infinite samples replaced by 0.
    pub non_finite_samples: u64,
    /// Samples with magnitude above 1.0 (0 dBFS), kept unclipped.
    pub over_samples: u64,
    /// Packets skipped because they failed to decode.
    pub bad_packets: u64,
    /// The stream ended before its container said it would (truncated file).
    pub truncated: bool,
}

/// A streaming decoder yielding planar `f32` blocks of at most `block_frames` frames.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: AudioInfo,
    channels: usize,
    block_frames: usize,
    /// The last decoded packet, planar, and how much of it was handed out.
    packet: Vec<Vec<f32>>,
    packet_pos: usize,
    /// The stream is plain 16-bit little-endian PCM: packets are converted here (see
    /// [`pcm16_to_planar`]) instead of by the symphonia decoder.
    pcm16: bool,
    good_packets: u64,
    consecutive_bad: usize,
    stats: DecodeStats,
    finished: bool,
    /// Most frames delivered before the stream is refused as too long ([`Decoder::limit_duration`]).
    max_frames: Option<u64>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("info", &self.info)
            .field("block_frames", &self.block_frames)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// Opens `path` with the default block size.
    pub fn open(path: &Path) -> Result<Decoder, MasterError> {
        Decoder::open_with_block(path, DEFAULT_BLOCK_FRAMES)
    }

    /// Opens `path`, delivering blocks of `block_frames` frames (the last may be shorter).
    pub fn open_with_block(path: &Path, block_frames: usize) -> Result<Decoder, MasterError> {
        if block_frames == 0 {
            return Err(MasterError::InvalidParameter(
                "decoder block size must be at least one frame".into(),
            ));
        }
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Err(MasterError::Unsupported("the file is empty".into()));
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::Unsupported(_) => MasterError::Unsupported(
                    "not a recognised audio format (supported: WAV, AIFF, CAF, FLAC, MP3, \
                     Ogg Vorbis, AAC/ALAC in MP4 or MKV)"
                        .into(),
                ),
                SymError::IoError(_) => MasterError::Unsupported(
                    "the file ended before a recognisable audio header".into(),
                ),
                other => MasterError::Corrupt(format!("cannot read the container: {other}")),
            })?;
        Decoder::from_format(format, block_frames)
    }

    fn from_format(
        format: Box<dyn FormatReader>,
        block_frames: usize,
    ) -> Result<Decoder, MasterError> {
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| MasterError::Unsupported("the file has no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| MasterError::Unsupported("the audio track has no codec info".into()))?
            .clone();
        let registry = symphonia::default::get_codecs();
        let codec = registry
            .get_audio_decoder(params.codec)
            .map(|r| r.codec.info.short_name.to_string())
            .ok_or_else(|| {
                MasterError::Unsupported(format!(
                    "the audio codec ({:?}) is not supported (Opus is not)",
                    params.codec
                ))
            })?;
        // The header's rate, channel count and packet size are checked before the decoder is
        // made: the decoder sizes its buffers from them (symphonia 0.6.1's PCM decoder
        // reserved 145 MiB for an AIFF whose COMM chunk claims 65,535 channels, 64 MiB a
        // channel for a CAF whose `desc` claims 33,554,433 frames per packet, and aborts the
        // process when the allocation fails).
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| MasterError::Corrupt("the sample rate is missing".into()))?;
        check_sample_rate(sample_rate)?;
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        check_channels(channels)?;
        check_packet_size(params.max_frames_per_packet, channels)?;
        let decoder = registry
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| MasterError::Unsupported(format!("cannot decode {codec}: {e}")))?;

        let duration_sec = track
            .num_frames
            .map(|n| n as f64 / f64::from(sample_rate))
            .or_else(|| {
                let tb = track.time_base?;
                Some(tb.calc_duration(track.duration?)?.as_secs_f64())
            });
        let info = AudioInfo {
            codec,
            sample_rate,
            channels: channels as u16,
            duration_sec,
            bits_per_sample: params.bits_per_sample,
        };
        let track_id = track.id;
        let pcm16 = params.codec == CODEC_ID_PCM_S16LE
            && matches!(params.bits_per_sample, None | Some(16))
            && matches!(params.bits_per_coded_sample, None | Some(16));
        Ok(Decoder {
            format,
            decoder,
            track_id,
            info,
            channels,
            block_frames,
            packet: vec![Vec::new(); channels],
            packet_pos: 0,
            pcm16,
            good_packets: 0,
            consecutive_bad: 0,
            stats: DecodeStats::default(),
            finished: false,
            max_frames: None,
        })
    }

    /// Format facts of the stream.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// Sample rate, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.info.sample_rate
    }

    /// Number of channels of every block.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Largest block `read_block` delivers, frames.
    pub fn block_frames(&self) -> usize {
        self.block_frames
    }

    /// What has been seen so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Fills `block` (resized to one `Vec` per channel) with the next frames: exactly
    /// `block_frames` of them except at the end of the stream. Returns the number of frames;
    /// 0 means the stream is over.
    pub fn read_block(&mut self, block: &mut Vec<Vec<f32>>) -> Result<usize, MasterError> {
        block.resize_with(self.channels, Vec::new);
        for plane in block.iter_mut() {
            plane.clear();
        }
        let mut filled = 0;
        while filled < self.block_frames {
            let available = self.packet.first().map_or(0, Vec::len) - self.packet_pos;
            if available == 0 {
                if !self.next_packet()? {
                    break;
                }
                continue;
            }
            let take = available.min(self.block_frames - filled);
            let range = self.packet_pos..self.packet_pos + take;
            for (dst, src) in block.iter_mut().zip(&self.packet) {
                dst.extend_from_slice(&src[range.clone()]);
            }
            self.packet_pos += take;
            filled += take;
        }
        self.stats.frames += filled as u64;
        if let Some(max) = self.max_frames
            && self.stats.frames > max
        {
            return Err(self.too_long(format!(
                "more than {:.0} s of audio were decoded",
                max as f64 / f64::from(self.info.sample_rate)
            )));
        }
        if filled == 0 && self.good_packets == 0 {
            return Err(if self.stats.bad_packets > 0 {
                MasterError::Corrupt("no packet of the audio stream could be decoded".into())
            } else {
                MasterError::TooShort("the file contains no audio samples".into())
            });
        }
        Ok(filled)
    }

    /// Refuses the stream once it lasts longer than `max_seconds`: at once when its header
    /// declares more, otherwise as soon as the frames decoded pass it (a header that lies or
    /// declares no length), with [`MasterError::TooLong`].
    ///
    /// `max_seconds` holds for up to [`DURATION_LIMIT_CHANNELS`] channels at
    /// [`DURATION_LIMIT_RATE`]; wider or faster audio gets proportionally less, so the samples a
    /// job decodes and spills to temp disk stay bounded whatever the header says (an hour of
    /// 32 channels at 192 kHz would be 64 times the stereo 48 kHz hour).
    pub fn limit_duration(&mut self, max_seconds: f64) -> Result<(), MasterError> {
        let rate = f64::from(self.info.sample_rate);
        let samples_per_second = rate * f64::from(self.info.channels);
        let budget = DURATION_LIMIT_RATE * DURATION_LIMIT_CHANNELS;
        let max_seconds = max_seconds.max(0.0) * (budget / samples_per_second).min(1.0);
        self.max_frames = Some((max_seconds * rate) as u64);
        match self.info.duration_sec {
            Some(declared) if declared > max_seconds => {
                Err(self.too_long(format!("its header declares {declared:.0} s of audio")))
            }
            _ => Ok(()),
        }
    }

    fn too_long(&self, what: String) -> MasterError {
        let max = self.max_frames.unwrap_or(0) as f64 / f64::from(self.info.sample_rate);
        let (channels, rate) = (self.info.channels, self.info.sample_rate);
        let shape = if f64::from(channels) * f64::from(rate)
            > DURATION_LIMIT_RATE * DURATION_LIMIT_CHANNELS
        {
            format!(" for {channels} channels at {rate} Hz")
        } else {
            String::new()
        };
        MasterError::TooLong(format!("{what}; at most {max:.0} s are accepted{shape}"))
    }

    /// Decodes the next packet of our track into `self.packet`. Returns false at the end.
    fn next_packet(&mut self) -> Result<bool, MasterError> {
        if self.finished {
            return Ok(false);
        }
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) | Err(SymError::ResetRequired) => {
                    self.finished = true;
                    return Ok(false);
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.stats.truncated = true;
                    self.finished = true;
                    return Ok(false);
                }
                Err(SymError::DecodeError(msg)) => {
                    self.bad_packet(msg)?;
                    continue;
                }
                Err(SymError::IoError(e)) => return Err(MasterError::Io(e)),
                Err(other) => {
                    return Err(MasterError::Corrupt(format!(
                        "reading the container failed: {other}"
                    )));
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            if self.pcm16 {
                // 16-bit samples are always finite and within ±1: nothing to sanitize.
                pcm16_to_planar(&packet.data, &mut self.packet);
                self.packet_pos = 0;
                self.good_packets += 1;
                self.consecutive_bad = 0;
                if self.packet.first().is_some_and(|p| !p.is_empty()) {
                    return Ok(true);
                }
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.spec().rate() != self.info.sample_rate
                        || buf.num_planes() != self.channels
                    {
                        return Err(MasterError::Unsupported(
                            "the sample rate or channel count changes inside the stream".into(),
                        ));
                    }
                    buf.copy_to_vecs_planar::<f32>(&mut self.packet);
                    self.packet_pos = 0;
                    self.good_packets += 1;
                    self.consecutive_bad = 0;
                    self.sanitize_packet();
                    if self.packet.first().is_some_and(|p| !p.is_empty()) {
                        return Ok(true);
                    }
                }
                Err(SymError::DecodeError(msg)) => self.bad_packet(msg)?,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.bad_packet("packet ends early")?
                }
                Err(other) => {
                    return Err(MasterError::Corrupt(format!(
                        "decoding the audio failed: {other}"
                    )));
                }
            }
        }
    }

    fn bad_packet(&mut self, msg: &str) -> Result<(), MasterError> {
        self.stats.bad_packets += 1;
        self.consecutive_bad += 1;
        if self.consecutive_bad > MAX_CONSECUTIVE_BAD_PACKETS {
            return Err(MasterError::Corrupt(format!(
                "{} damaged packets in a row (last: {msg})",
                self.consecutive_bad
            )));
        }
        Ok(())
    }

    /// Replaces non-finite samples by 0 and counts them and the overs.
    fn sanitize_packet(&mut self) {
        for plane in &mut self.packet {
            for s in plane.iter_mut() {
                if !s.is_finite() {
                    *s = 0.0;
                    self.stats.non_finite_samples += 1;
                } else if s.abs() > 1.0 {
                    self.stats.over_samples += 1;
                }
            }
        }
    }
}

/// Converts interleaved 16-bit little-endian PCM to planar `f32` exactly as symphonia's
/// PCM decoder and sample conversion do (`v / 32768`, trailing partial frame dropped), in
/// one loop per channel the compiler vectorises: the symphonia path goes through a
/// per-sample reader and a generic buffer, five times the instructions of this loop.
fn pcm16_to_planar(data: &[u8], planes: &mut [Vec<f32>]) {
    let channels = planes.len();
    let frame_bytes = 2 * channels;
    if frame_bytes == 0 {
        return;
    }
    for (c, plane) in planes.iter_mut().enumerate() {
        plane.clear();
        // A frame length known at compile time lets the loop vectorise (stereo, mono).
        match frame_bytes {
            4 => extend_pcm16::<4>(data, c, plane),
            2 => extend_pcm16::<2>(data, c, plane),
            _ => plane.extend(
                data.chunks_exact(frame_bytes)
                    .map(|f| f32::from(i16::from_le_bytes([f[2 * c], f[2 * c + 1]])) / 32_768.0),
            ),
        }
    }
}

/// Appends channel `c` of interleaved 16-bit frames of `FRAME` bytes to `plane`.
fn extend_pcm16<const FRAME: usize>(data: &[u8], c: usize, plane: &mut Vec<f32>) {
    plane.extend(data.chunks_exact(FRAME).map(|f| {
        let f: &[u8; FRAME] = f.try_into().unwrap_or(&[0; FRAME]);
        f32::from(i16::from_le_bytes([f[2 * c], f[2 * c + 1]])) / 32_768.0
    }));
}

fn check_sample_rate(rate: u32) -> Result<(), MasterError> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(MasterError::Unsupported(format!(
            "sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz"
        )))
    }
}

fn check_channels(channels: usize) -> Result<(), MasterError> {
    if (1..=MAX_CHANNELS).contains(&channels) {
        Ok(())
    } else {
        Err(MasterError::Unsupported(format!(
            "{channels} channels: between 1 and {MAX_CHANNELS} are supported"
        )))
    }
}

fn check_packet_size(frames: Option<u64>, channels: usize) -> Result<(), MasterError> {
    match frames {
        Some(frames) if frames.saturating_mul(channels as u64) > MAX_PACKET_SAMPLES => {
            Err(MasterError::Corrupt(format!(
                "the header announces packets of {frames} frames of {channels} channels, more \
                 than any audio codec uses"
            )))
        }
        _ => Ok(()),
    }
}

/// Opens `path`, decodes its first block, then seeks to [`TAIL_CHECK_SECONDS`] before the
/// declared end and decodes the rest, so a truncated upload is refused while reading only the
/// two ends of the file. See [`crate::probe`].
pub fn probe(path: &Path) -> Result<AudioInfo, MasterError> {
    let mut decoder = Decoder::open(path)?;
    let mut block = Vec::new();
    decoder.read_block(&mut block)?;
    decoder.check_reaches_declared_end()?;
    Ok(decoder.info().clone())
}

impl Decoder {
    /// Proves the stream lasts as long as its container declares: seeks to a little before
    /// the declared end and decodes to the end. A stream without a declared length passes
    /// (there is nothing to compare with). Leaves the decoder at the end of the stream.
    pub fn check_reaches_declared_end(&mut self) -> Result<(), MasterError> {
        let Some(declared) = self.info.duration_sec else {
            return Ok(());
        };
        let truncated = |reached: f64| {
            MasterError::Corrupt(format!(
                "the file is truncated: its header declares {declared:.1} s of audio but it \
                 ends at {reached:.1} s"
            ))
        };
        let rate = f64::from(self.info.sample_rate);
        let start = (declared - TAIL_CHECK_SECONDS).max(0.0);
        if start > self.stats.frames as f64 / rate {
            let time = Time::try_from_secs_f64(start)
                .ok_or_else(|| MasterError::Corrupt("the declared duration is invalid".into()))?;
            let to = SeekTo::Time {
                time,
                track_id: Some(self.track_id),
            };
            if self.format.seek(SeekMode::Accurate, to).is_err() {
                return Err(truncated(self.stats.frames as f64 / rate));
            }
            self.decoder.reset();
            self.packet.iter_mut().for_each(Vec::clear);
            self.packet_pos = 0;
            self.stats.frames = (start * rate) as u64;
        }
        let mut block = Vec::new();
        while self.read_block(&mut block)? > 0 {}
        let reached = self.stats.frames as f64 / rate;
        if self.stats.truncated && reached < declared - TRUNCATION_TOLERANCE_SECONDS {
            return Err(truncated(reached));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
