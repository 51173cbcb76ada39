//! The FLAC frame coder: fixed predictors (orders 0–4), partitioned Rice residuals and
//! per-frame stereo decorrelation, as the reference encoder's fast levels (`flac -0…-2`)
//! do, written for speed.
//!
//! Why our own and not flacenc's: on the dense 321.8 s stereo test track (one core, CPU
//! time), flacenc 0.5 took 3.8 s with its default configuration and 0.87 s with its fastest
//! one (fixed predictors up to order 2, no LPC); the FLAC budget of the chain (≥ 200× real
//! time overall) leaves about 0.3 s for it, and `flac -0` itself takes 0.45 s (reading its
//! WAV included). libFLAC bindings need `unsafe` calls (forbidden here) and CMake to
//! build. The whole FLAC encoder (dither, this coder, writing) takes 0.30 s there
//! (`examples/encoder_bench.rs`), its file 21 % larger than `flac -5`'s (LPC), 7 % smaller
//! than `flac -0`'s.
//!
//! Per frame and channel: a constant channel is stored as one value; otherwise the
//! order 0–4 fixed predictor whose residual has the smallest sum of magnitudes is chosen,
//! its residual Rice-coded in 2^p partitions (p ≤ [`MAX_PARTITION_ORDER`], each with its
//! own parameter, chosen from the partition's sum of magnitudes), or the channel is stored
//! verbatim when that would be shorter. Stereo frames are stored as left/right, left/side,
//! side/right or mid/side, whichever the same estimate finds shortest.
//!
//! Everything here is plain index-free loops over slices (the compiler vectorises the
//! residual sums) and one 64-bit bit accumulator; no allocation once the buffers have
//! grown to a frame.

/// Largest Rice partition order tried (partitions of 64 samples in a 4096-sample frame).
pub const MAX_PARTITION_ORDER: u32 = 6;
const MAX_PARTITIONS: usize = 1 << MAX_PARTITION_ORDER;
/// Highest fixed predictor order (the format's limit).
const MAX_FIXED_ORDER: usize = 4;

/// A big-endian bit writer into a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    /// Bits held in `acc` (its low `nbits` bits), always < 32 between calls.
    nbits: u32,
}

impl BitWriter {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.acc = 0;
        self.nbits = 0;
    }

    /// Appends the low `n` bits of `value` (n ≤ 32; higher bits of `value` must be zero).
    #[inline(always)]
    pub fn put(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || value >> n == 0));
        self.acc = (self.acc << n) | u64::from(value);
        self.nbits += n;
        if self.nbits >= 32 {
            self.nbits -= 32;
            self.bytes
                .extend_from_slice(&((self.acc >> self.nbits) as u32).to_be_bytes());
        }
    }

    /// Appends the low `n` bits of the two's-complement `value` (n ≤ 32).
    #[inline(always)]
    pub fn put_signed(&mut self, value: i32, n: u32) {
        let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        self.put(value as u32 & mask, n);
    }

    /// Appends `n` zero bits (any n).
    pub fn put_zeros(&mut self, mut n: u32) {
        while n > 32 {
            self.put(0, 32);
            n -= 32;
        }
        self.put(0, n);
    }

    /// Pads with zero bits to a byte boundary.
    pub fn align(&mut self) {
        let pad = (8 - self.nbits % 8) % 8;
        self.put(0, pad);
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.bytes.push((self.acc >> self.nbits) as u8);
        }
    }

    /// The bytes written (call [`Self::align`] first).
    pub fn bytes(&self) -> &[u8] {
        debug_assert_eq!(self.nbits, 0);
        &self.bytes
    }

    fn bytes_mut(&mut self) -> &mut Vec<u8> {
        debug_assert_eq!(self.nbits, 0);
        &mut self.bytes
    }

    /// Rice-codes the zigzagged residuals `u` with parameter `k` (≤ 30). The accumulator
    /// lives in locals for the loop (in the fields, every code stored them to memory:
    /// about 30 % slower).
    #[inline]
    fn rice(&mut self, u: &[u32], k: u32) {
        let low_mask = (1u32 << k) - 1;
        let (mut acc, mut nbits) = (self.acc, self.nbits);
        for &v in u {
            let q = v >> k;
            // The quotient in unary (q zeros, then a one), then the k low bits.
            let code = (1u32 << k) | (v & low_mask);
            if q + k < 32 {
                let n = q + k + 1;
                acc = (acc << n) | u64::from(code);
                nbits += n;
                if nbits >= 32 {
                    nbits -= 32;
                    self.bytes
                        .extend_from_slice(&((acc >> nbits) as u32).to_be_bytes());
                }
            } else {
                // A long code (rare: a value far above its partition's mean).
                (self.acc, self.nbits) = (acc, nbits);
                self.put_zeros(q);
                self.put(code, k + 1);
                (acc, nbits) = (self.acc, self.nbits);
            }
        }
        (self.acc, self.nbits) = (acc, nbits);
    }
}

/// CRC-8 (polynomial x^8 + x^2 + x + 1) of a frame header.
fn crc8(data: &[u8]) -> u8 {
    const TABLE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u8;
            let mut b = 0;
            while b < 8 {
                c = if c & 0x80 != 0 {
                    (c << 1) ^ 0x07
                } else {
                    c << 1
                };
                b += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    data.iter().fold(0u8, |c, &b| TABLE[usize::from(c ^ b)])
}

/// CRC-16 (polynomial x^16 + x^15 + x^2 + 1) of a whole frame, eight bytes a step
/// ("slicing by 8": 8 tables, one lookup per byte but no dependency chain between them).
fn crc16(data: &[u8]) -> u16 {
    const TABLES: [[u16; 256]; 8] = {
        let mut t = [[0u16; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u16) << 8;
            let mut b = 0;
            while b < 8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x8005
                } else {
                    c << 1
                };
                b += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut k = 1;
        while k < 8 {
            let mut i = 0;
            while i < 256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
                i += 1;
            }
            k += 1;
        }
        t
    };
    let mut crc = 0u16;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let hi = (crc >> 8) as u8 ^ c[0];
        let lo = crc as u8 ^ c[1];
        crc = TABLES[7][usize::from(hi)]
            ^ TABLES[6][usize::from(lo)]
            ^ TABLES[5][usize::from(c[2])]
            ^ TABLES[4][usize::from(c[3])]
            ^ TABLES[3][usize::from(c[4])]
            ^ TABLES[2][usize::from(c[5])]
            ^ TABLES[1][usize::from(c[6])]
            ^ TABLES[0][usize::from(c[7])];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ TABLES[0][usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// Sum of the magnitudes of `r`, whose values are below 2^28 in magnitude (residuals of
/// at most 25-bit samples: the order-4 weights sum to 16). Eight 32-bit lanes over runs
/// of 64 values (8 terms a lane: below 2^31), then 64-bit sums; vectorised.
#[inline(always)]
fn sum_abs(r: &[i32]) -> u64 {
    let mut total = 0u64;
    let mut runs = r.chunks_exact(64);
    for run in &mut runs {
        let mut lanes = [0u32; 8];
        for c in run.chunks_exact(8) {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v.unsigned_abs();
            }
        }
        total += lanes.iter().map(|&l| u64::from(l)).sum::<u64>();
    }
    total
        + runs
            .remainder()
            .iter()
            .map(|&v| u64::from(v.unsigned_abs()))
            .sum::<u64>()
}

/// `dst` = the first difference of `src` (one value shorter).
#[inline(always)]
fn difference(src: &[i32], dst: &mut Vec<i32>) {
    dst.resize(src.len().saturating_sub(1), 0);
    for ((d, &p), &q) in dst.iter_mut().zip(src).zip(src.get(1..).unwrap_or(&[])) {
        *d = q - p;
    }
}

/// Sums of residual magnitudes of the fixed predictors of order 0–4, over samples 4.. of
/// `x` (the same range for every order, so they compare). `x.len() > 4`. The order-k
/// residual is the k-th difference of the signal: each order is one pass over the
/// previous one's (in `scratch`). Run by [`crate::simd::dispatch`]: the baseline (SSE2)
/// has no 32-bit lane absolute value, AVX2 does, and has 8 lanes; integer sums, so the
/// same result bit for bit. Measured on the dense 322 s track (standard → flac16, perf,
/// one core of the shared 2-core machine): `sum_abs` + `estimate` 4.0 % of 2.21 s before
/// (0.09 s); dispatched they fold into the dispatched kernels' share (not separable), the
/// file written byte for byte the same.
fn fixed_sums(x: &[i32], scratch: &mut [Vec<i32>; 2]) -> [u64; MAX_FIXED_ORDER + 1] {
    crate::simd::dispatch(FixedSums { x, scratch })
}

/// [`fixed_sums`] as a dispatched kernel.
struct FixedSums<'a> {
    x: &'a [i32],
    scratch: &'a mut [Vec<i32>; 2],
}

impl crate::simd::Kernel for FixedSums<'_> {
    type Output = [u64; MAX_FIXED_ORDER + 1];

    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        let FixedSums { x, scratch } = self;
        let mut sums = [0u64; MAX_FIXED_ORDER + 1];
        sums[0] = sum_abs(&x[MAX_FIXED_ORDER..]);
        let [a, b] = scratch;
        difference(x, a);
        sums[1] = sum_abs(&a[MAX_FIXED_ORDER - 1..]);
        for (k, sum) in sums.iter_mut().enumerate().skip(2) {
            let (src, dst) = if k % 2 == 0 {
                (&*a, &mut *b)
            } else {
                (&*b, &mut *a)
            };
            difference(src, dst);
            *sum = sum_abs(&dst[MAX_FIXED_ORDER - k..]);
        }
        sums
    }
}

/// Bits of `n` Rice codes whose zigzagged values sum to `sum`, with parameter `k`: an
/// upper bound (the unary parts of the codes sum to at most `sum >> k`).
#[inline]
fn rice_bits(n: u64, sum: u64, k: u32) -> u64 {
    n * u64::from(k + 1) + (sum >> k)
}

/// The Rice parameter (≤ `max_k`) that minimises [`rice_bits`], and those bits.
fn best_rice(n: u64, sum: u64, max_k: u32) -> (u32, u64) {
    if n == 0 || sum == 0 {
        return (0, n);
    }
    // Near log2 of the mean.
    let mean = sum / n;
    let guess = if mean == 0 {
        0
    } else {
        63 - mean.leading_zeros()
    };
    let mut best = (0, u64::MAX);
    for k in guess.saturating_sub(1)..=(guess + 1).min(max_k) {
        let bits = rice_bits(n, sum, k);
        if bits < best.1 {
            best = (k, bits);
        }
    }
    best
}

/// What was decided for one channel of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Constant,
    Verbatim,
    Fixed(usize),
}

/// Bits estimated for one channel: the kind and the estimated subframe size.
fn estimate(x: &[i32], bits: u32, scratch: &mut [Vec<i32>; 2]) -> (Kind, u64) {
    let n = x.len();
    if x.iter().all(|&v| v == x[0]) {
        return (Kind::Constant, u64::from(bits));
    }
    let verbatim = n as u64 * u64::from(bits);
    if n <= MAX_FIXED_ORDER {
        return (Kind::Verbatim, verbatim);
    }
    let sums = fixed_sums(x, scratch);
    let mut best = (Kind::Verbatim, verbatim);
    for (order, &s) in sums.iter().enumerate() {
        // Zigzag doubles the magnitudes (to within one per sample).
        let (_, residual) = best_rice((n - 4) as u64, 2 * s, 30);
        let total = residual + order as u64 * u64::from(bits) + 4 + 6;
        if total < best.1 {
            best = (Kind::Fixed(order), total);
        }
    }
    best
}

/// The reusable buffers of [`FrameCoder`].
#[derive(Debug, Default)]
pub struct FrameCoder {
    out: BitWriter,
    /// Mid and side of a stereo frame.
    mid: Vec<i32>,
    side: Vec<i32>,
    /// Zigzagged residual of the subframe being written.
    residual: Vec<u32>,
    /// Differences of the signal, for [`fixed_sums`].
    diffs: [Vec<i32>; 2],
}

impl FrameCoder {
    /// Encodes one frame of the planar `channels` (all of one length, 1 to 65 535 samples)
    /// of `bits`-bit samples (16 or 24) into its bytes, returned until the next call.
    /// `block_size` is the stream's fixed block size, `frame_number` this frame's index.
    pub fn encode(
        &mut self,
        channels: &[Vec<i32>],
        bits: u32,
        sample_rate: u32,
        block_size: usize,
        frame_number: u64,
    ) -> &[u8] {
        let n = channels.first().map_or(0, Vec::len);
        self.out.clear();
        // Choose the channel assignment.
        let (assignment, kinds): (u32, [(Kind, u64); 2]) = if channels.len() == 2 {
            let (l, r) = (&channels[0], &channels[1]);
            self.mid.clear();
            self.side.clear();
            self.mid
                .extend(l.iter().zip(r).map(|(&a, &b)| (a + b) >> 1));
            self.side.extend(l.iter().zip(r).map(|(&a, &b)| a - b));
            let el = estimate(l, bits, &mut self.diffs);
            let er = estimate(r, bits, &mut self.diffs);
            let em = estimate(&self.mid, bits, &mut self.diffs);
            let es = estimate(&self.side, bits + 1, &mut self.diffs);
            let options = [
                (0b0001, [el, er], el.1 + er.1),
                (0b1000, [el, es], el.1 + es.1),
                (0b1001, [es, er], es.1 + er.1),
                (0b1010, [em, es], em.1 + es.1),
            ];
            let best = options
                .iter()
                .min_by_key(|o| o.2)
                .copied()
                .unwrap_or(options[0]);
            (best.0, best.1)
        } else {
            (
                (channels.len() as u32).saturating_sub(1),
                [(Kind::Verbatim, 0); 2],
            )
        };
        self.header(assignment, n, bits, sample_rate, block_size, frame_number);
        match assignment {
            0b0001 if channels.len() == 2 => {
                self.subframe(&channels[0], bits, kinds[0].0);
                self.subframe(&channels[1], bits, kinds[1].0);
            }
            0b1000 => {
                self.subframe(&channels[0], bits, kinds[0].0);
                let side = std::mem::take(&mut self.side);
                self.subframe(&side, bits + 1, kinds[1].0);
                self.side = side;
            }
            0b1001 => {
                let side = std::mem::take(&mut self.side);
                self.subframe(&side, bits + 1, kinds[0].0);
                self.side = side;
                self.subframe(&channels[1], bits, kinds[1].0);
            }
            0b1010 => {
                let (mid, side) = (
                    std::mem::take(&mut self.mid),
                    std::mem::take(&mut self.side),
                );
                self.subframe(&mid, bits, kinds[0].0);
                self.subframe(&side, bits + 1, kinds[1].0);
                (self.mid, self.side) = (mid, side);
            }
            _ => {
                for x in channels {
                    let kind = estimate(x, bits, &mut self.diffs).0;
                    self.subframe(x, bits, kind);
                }
            }
        }
        self.out.align();
        let crc = crc16(self.out.bytes());
        self.out.bytes_mut().extend_from_slice(&crc.to_be_bytes());
        self.out.bytes()
    }

    /// The frame header, through its CRC-8.
    fn header(
        &mut self,
        assignment: u32,
        n: usize,
        bits: u32,
        sample_rate: u32,
        block_size: usize,
        frame_number: u64,
    ) {
        let w = &mut self.out;
        // Sync code, reserved bit, fixed-block-size stream.
        w.put(0xFFF8, 16);
        let size_code = if n == block_size && block_size == 4096 {
            0b1100
        } else if n <= 256 {
            0b0110
        } else {
            0b0111
        };
        let rate_code = match sample_rate {
            88_200 => 0b0001,
            176_400 => 0b0010,
            192_000 => 0b0011,
            8_000 => 0b0100,
            16_000 => 0b0101,
            22_050 => 0b0110,
            24_000 => 0b0111,
            32_000 => 0b1000,
            44_100 => 0b1001,
            48_000 => 0b1010,
            96_000 => 0b1011,
            _ => 0b0000, // from STREAMINFO
        };
        w.put(size_code, 4);
        w.put(rate_code, 4);
        w.put(assignment, 4);
        w.put(if bits == 16 { 0b100 } else { 0b110 }, 3);
        w.put(0, 1);
        // The frame number, "UTF-8" coded (up to 31 bits).
        let v = frame_number as u32;
        if v < 0x80 {
            w.put(v, 8);
        } else {
            let extra = match v {
                0..0x800 => 1,
                0x800..0x1_0000 => 2,
                0x1_0000..0x20_0000 => 3,
                0x20_0000..0x400_0000 => 4,
                _ => 5,
            };
            let lead = (0xFF00u32 >> (extra + 1)) & 0xFF;
            w.put(lead | (v >> (6 * extra)), 8);
            for i in (0..extra).rev() {
                w.put(0x80 | ((v >> (6 * i)) & 0x3F), 8);
            }
        }
        match size_code {
            0b0110 => w.put(n as u32 - 1, 8),
            0b0111 => w.put(n as u32 - 1, 16),
            _ => {}
        }
        w.align();
        let crc = crc8(w.bytes());
        w.put(u32::from(crc), 8);
    }

    /// One subframe of samples `x` of `bits` bits, of the kind `estimate` chose.
    fn subframe(&mut self, x: &[i32], bits: u32, kind: Kind) {
        match kind {
            Kind::Constant => {
                self.out.put(0, 8);
                self.out.put_signed(x[0], bits);
            }
            Kind::Verbatim => self.verbatim(x, bits),
            Kind::Fixed(order) => {
                self.residual(x, order);
                let (partition_order, params, residual_bits) = self.partition(x.len(), order);
                let fixed_bits = 8 + order as u64 * u64::from(bits) + residual_bits;
                if fixed_bits >= x.len() as u64 * u64::from(bits) {
                    self.verbatim(x, bits);
                    return;
                }
                self.out.put(0b0001_0000 | ((order as u32) << 1), 8);
                for &v in &x[..order] {
                    self.out.put_signed(v, bits);
                }
                let rice2 = params.iter().any(|&k| k > 14);
                self.out.put(u32::from(rice2), 2);
                self.out.put(partition_order, 4);
                let parts = 1usize << partition_order;
                let len = x.len() >> partition_order;
                let mut start = 0;
                for (p, &k) in params.iter().enumerate().take(parts) {
                    let end = (p + 1) * len - order;
                    self.out.put(k, if rice2 { 5 } else { 4 });
                    let residual = std::mem::take(&mut self.residual);
                    self.out.rice(&residual[start..end], k);
                    self.residual = residual;
                    start = end;
                }
            }
        }
    }

    fn verbatim(&mut self, x: &[i32], bits: u32) {
        self.out.put(0b0000_0010, 8);
        for &v in x {
            self.out.put_signed(v, bits);
        }
    }

    /// Computes the zigzagged fixed-predictor residual of `x` (samples `order..`) into
    /// `self.residual`.
    fn residual(&mut self, x: &[i32], order: usize) {
        let n = x.len();
        let r = &mut self.residual;
        r.clear();
        r.resize(n - order, 0);
        let zz = |v: i32| ((v << 1) ^ (v >> 31)) as u32;
        let a = &x[order..];
        match order {
            0 => r.iter_mut().zip(a).for_each(|(d, &v)| *d = zz(v)),
            1 => {
                for ((d, &v0), &v1) in r.iter_mut().zip(a).zip(&x[..n - 1]) {
                    *d = zz(v0 - v1);
                }
            }
            2 => {
                for (((d, &v0), &v1), &v2) in r.iter_mut().zip(a).zip(&x[1..n - 1]).zip(&x[..n - 2])
                {
                    *d = zz(v0 - 2 * v1 + v2);
                }
            }
            3 => {
                for ((((d, &v0), &v1), &v2), &v3) in r
                    .iter_mut()
                    .zip(a)
                    .zip(&x[2..n - 1])
                    .zip(&x[1..n - 2])
                    .zip(&x[..n - 3])
                {
                    *d = zz(v0 - 3 * v1 + 3 * v2 - v3);
                }
            }
            _ => {
                for (((((d, &v0), &v1), &v2), &v3), &v4) in r
                    .iter_mut()
                    .zip(a)
                    .zip(&x[3..n - 1])
                    .zip(&x[2..n - 2])
                    .zip(&x[1..n - 3])
                    .zip(&x[..n - 4])
                {
                    *d = zz(v0 - 4 * v1 + 6 * v2 - 4 * v3 + v4);
                }
            }
        }
    }

    /// Chooses the Rice partition order and parameters of `self.residual` (a block of `n`
    /// samples, predictor `order`): returns the order, the parameter of each partition and
    /// the estimated bits of the residual section.
    fn partition(&self, n: usize, order: usize) -> (u32, [u32; MAX_PARTITIONS], u64) {
        // The finest order allowed: n divisible by 2^p, first partition longer than the
        // warm-up.
        let mut max_p = 0;
        while max_p < MAX_PARTITION_ORDER
            && n.is_multiple_of(1 << (max_p + 1))
            && (n >> (max_p + 1)) > order
        {
            max_p += 1;
        }
        let mut level = [0u64; MAX_PARTITIONS];
        let mut count = 1usize << max_p;
        let len = n >> max_p;
        let mut start = 0;
        for (p, sum) in level.iter_mut().enumerate().take(count) {
            let end = (p + 1) * len - order;
            *sum = self.residual[start..end]
                .iter()
                .map(|&v| u64::from(v))
                .sum();
            start = end;
        }
        let mut best = (0, [0u32; MAX_PARTITIONS], u64::MAX);
        for p in (0..=max_p).rev() {
            let part_len = (n >> p) as u64;
            let mut params = [0u32; MAX_PARTITIONS];
            let mut total = 2 + 4;
            let mut rice2 = false;
            for (i, (&s, k)) in level.iter().zip(params.iter_mut()).take(count).enumerate() {
                let m = if i == 0 {
                    part_len - order as u64
                } else {
                    part_len
                };
                let (param, bits) = best_rice(m, s, 30);
                rice2 |= param > 14;
                *k = param;
                total += bits;
            }
            total += count as u64 * if rice2 { 5 } else { 4 };
            if total < best.2 {
                best = (p, params, total);
            }
            // The next coarser order: neighbouring partitions merged.
            count /= 2;
            for i in 0..count {
                level[i] = level[2 * i] + level[2 * i + 1];
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched [`fixed_sums`] equals the k-th differences summed one value at a
    /// time (64-bit, no lanes), on noise at 16 and 24 bits and lengths around the 64-value
    /// runs, so the predictor chosen never depends on the instruction set.
    #[test]
    fn fixed_sums_match_plain_sums() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut scratch = [Vec::new(), Vec::new()];
        for bits in [16u32, 24] {
            for len in [5usize, 63, 64, 69, 200, 4096] {
                let half = 1i64 << (bits - 1);
                let signal: Vec<i32> = (0..len)
                    .map(|_| ((next() >> 11) as i64 % (2 * half) - half) as i32)
                    .collect();
                let got = fixed_sums(&signal, &mut scratch);
                let mut d: Vec<i64> = signal.iter().map(|&v| i64::from(v)).collect();
                for (order, &sum) in got.iter().enumerate() {
                    let want: u64 = d[MAX_FIXED_ORDER - order..]
                        .iter()
                        .map(|v| v.unsigned_abs())
                        .sum();
                    assert_eq!(sum, want, "{bits} bits, {len} samples, order {order}");
                    d = d.windows(2).map(|w| w[1] - w[0]).collect();
                }
            }
        }
    }
}
