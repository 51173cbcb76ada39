// Writes and reads 16-bit PCM WAV files, so the tests make their own audio and check what comes back.

/**
 * A stereo test "mix": bass, mid and high tones plus a little noise, with a slow level swell
 * so it has some dynamics. Peaks stay near `peakDb` dBFS.
 */
export function makeTestWav({ seconds = 6, sampleRate = 44100, peakDb = -12, seed = 1 } = {}) {
  const n = Math.round(seconds * sampleRate);
  const channels = 2;
  const data = Buffer.alloc(n * channels * 2);
  let s = seed >>> 0;
  const rand = () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
  const peak = 10 ** (peakDb / 20);
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    const swell = 0.55 + 0.45 * Math.sin(2 * Math.PI * 0.25 * t);
    const kick = Math.exp(-((t % 0.5) * 18)) * Math.sin(2 * Math.PI * 55 * t);
    const tone = 0.5 * Math.sin(2 * Math.PI * 110 * t) + 0.3 * Math.sin(2 * Math.PI * 440 * t) + 0.12 * Math.sin(2 * Math.PI * 2500 * t);
    const base = (0.45 * kick + 0.45 * tone) * swell;
    const l = peak * (base + 0.08 * rand());
    const r = peak * (base * 0.9 + 0.08 * rand());
    data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(l * 32767))), i * 4);
    data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(r * 32767))), i * 4 + 2);
  }
  return wavFromPcm16(data, sampleRate, channels);
}

/** Wraps interleaved 16-bit PCM in a RIFF/WAVE header. */
export function wavFromPcm16(pcm, sampleRate, channels) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

/**
 * Parses a WAV file's chunks (PCM or WAVE_FORMAT_EXTENSIBLE). Returns its format and duration;
 * throws with a reason when it is not a well-formed WAV.
 */
export function parseWav(buf) {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let off = 12, fmt = null, dataLen = null, dataOff = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body), channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4),
        byteRate: buf.readUInt32LE(body + 8), blockAlign: buf.readUInt16LE(body + 12), bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      dataOff = body;
      dataLen = Math.min(size, buf.length - body);
      if (size !== dataLen) throw new Error(`data chunk says ${size} bytes but file holds ${buf.length - body}`);
      break;
    }
    off = body + size + (size % 2);
  }
  if (!fmt) throw new Error('no fmt chunk');
  if (dataLen === null) throw new Error('no data chunk');
  if (![1, 3, 0xfffe].includes(fmt.format)) throw new Error(`unexpected format tag ${fmt.format}`);
  if (fmt.blockAlign !== fmt.channels * (fmt.bitsPerSample / 8)) throw new Error('inconsistent block align');
  const frames = dataLen / fmt.blockAlign;
  return { ...fmt, dataOffset: dataOff, dataBytes: dataLen, frames, durationSec: frames / fmt.sampleRate };
}

/** Peak absolute sample value (0..1) of a 16- or 24-bit PCM WAV parsed by parseWav. */
export function wavPeak(buf, info) {
  const bytes = info.bitsPerSample / 8;
  let peak = 0;
  for (let i = info.dataOffset; i + bytes <= info.dataOffset + info.dataBytes; i += bytes) {
    const v = bytes === 2 ? buf.readInt16LE(i) / 32768 : bytes === 3 ? buf.readIntLE(i, 3) / 8388608 : 0;
    if (Math.abs(v) > peak) peak = Math.abs(v);
  }
  return peak;
}
