//! MP3 output through LAME (mp3lame-encoder), constant bit rate.
//!
//! Mono input is encoded as a mono MP3, stereo as joint stereo; more channels are refused.
//! LAME chooses the output sample rate when the input rate is not an MP3 rate (e.g. 96 kHz
//! becomes 48 kHz). A LAME "Info" tag is written into the first frame after flushing, so
//! decoders (symphonia included) trim the encoder delay and padding: the decoded length
//! matches the input.
//!
//! LAME's bit-rate presets scale the input down (its `abr_switch_map`: ×0.95 up to 160 kb/s,
//! ×0.97 at 192, ×0.98 at 224, ×1.0 from 256). The wrapper crate does not expose
//! `lame_set_scale`, so [`lame_preset_scale`] undoes it: samples are multiplied by its
//! inverse before LAME sees them, and the encoded level equals the input level (tested to
//! 0.05 dB for every allowed bit rate).
//!
//! LAME runs at algorithm quality 7 ("fast, OK quality": psychoacoustics for pre-echo and
//! M/S, no noise shaping), about 30 % faster than its default 5; at the 128–320 kb/s this
//! service offers, the level, true-peak and waveform tests hold unchanged.

use super::{BlockEncoder, check_block};
use crate::error::MasterError;
use mp3lame_encoder::{Bitrate, Builder, DualPcm, FlushGap, Mode, MonoPcm, Quality};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Streams an MP3 file.
pub struct Mp3Encoder {
    encoder: mp3lame_encoder::Encoder,
    file: BufWriter<File>,
    out: Vec<u8>,
    /// Input scaled by the inverse of LAME's preset scale.
    scaled: Vec<Vec<f32>>,
    gain: f32,
    channels: usize,
}

fn bitrate(kbps: u32) -> Result<Bitrate, MasterError> {
    Ok(match kbps {
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        other => {
            return Err(MasterError::InvalidParameter(format!(
                "MP3 bit rate must be 128, 192, 256 or 320 kb/s, got {other}"
            )));
        }
    })
}

/// The input scale LAME's preset applies at `kbps` (see the module documentation).
pub fn lame_preset_scale(kbps: u32) -> f32 {
    match kbps {
        0..=160 => 0.95,
        161..=192 => 0.97,
        193..=224 => 0.98,
        _ => 1.0,
    }
}

fn lame_err(e: impl std::fmt::Debug) -> MasterError {
    MasterError::Encode(format!("MP3 (LAME): {e:?}"))
}

impl Mp3Encoder {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        bitrate_kbps: u32,
    ) -> Result<Mp3Encoder, MasterError> {
        let mode = match channels {
            1 => Mode::Mono,
            2 => Mode::JointStereo,
            n => {
                return Err(MasterError::Encode(format!(
                    "MP3 stores mono or stereo only, the audio has {n} channels \
                     (choose WAV or FLAC for multichannel)"
                )));
            }
        };
        let mut builder =
            Builder::new().ok_or_else(|| MasterError::Encode("LAME failed to start".into()))?;
        builder.set_num_channels(channels as u8).map_err(lame_err)?;
        builder.set_sample_rate(sample_rate).map_err(lame_err)?;
        builder
            .set_brate(bitrate(bitrate_kbps)?)
            .map_err(lame_err)?;
        builder.set_mode(mode).map_err(lame_err)?;
        builder.set_quality(Quality::Ok).map_err(lame_err)?;
        builder.set_to_write_vbr_tag(true).map_err(lame_err)?;
        let encoder = builder.build().map_err(lame_err)?;
        Ok(Mp3Encoder {
            encoder,
            file: BufWriter::new(File::create(path)?),
            out: Vec::new(),
            scaled: vec![Vec::new(); channels],
            gain: 1.0 / lame_preset_scale(bitrate_kbps),
            channels,
        })
    }
}

impl BlockEncoder for Mp3Encoder {
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        let frames = check_block(block, self.channels)?;
        if frames == 0 {
            return Ok(());
        }
        for (dst, src) in self.scaled.iter_mut().zip(block) {
            dst.clear();
            dst.extend(src.iter().map(|x| x * self.gain));
        }
        self.out.clear();
        self.out
            .reserve(mp3lame_encoder::max_required_buffer_size(frames));
        if self.channels == 1 {
            self.encoder
                .encode_to_vec(MonoPcm(&self.scaled[0][..]), &mut self.out)
                .map_err(lame_err)?;
        } else {
            let input = DualPcm {
                left: &self.scaled[0][..],
                right: &self.scaled[1][..],
            };
            self.encoder
                .encode_to_vec(input, &mut self.out)
                .map_err(lame_err)?;
        }
        self.file.write_all(&self.out)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), MasterError> {
        self.out.clear();
        self.out.reserve(7200);
        self.encoder
            .flush_to_vec::<FlushGap>(&mut self.out)
            .map_err(lame_err)?;
        self.file.write_all(&self.out)?;
        let mut tag = Vec::with_capacity(self.encoder.lame_tag_size());
        if self.encoder.lame_tag_encode_to_vec(&mut tag).is_some() && !tag.is_empty() {
            let offset = self.encoder.id3v2_tag_size() as u64;
            self.file.seek(SeekFrom::Start(offset))?;
            self.file.write_all(&tag)?;
        }
        // Flush; durability (fsync before the caller's rename) is the caller's choice.
        self.file.flush()?;
        Ok(())
    }
}
