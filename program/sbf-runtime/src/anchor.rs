//! Anchor wire compatibility, evaluated at compile time: discriminators are the first 8
//! bytes of `sha256("global:<ix>")`, `sha256("account:<Type>")`, `sha256("event:<Name>")`,
//! computed by a `const fn` SHA-256 so they cannot drift from the names.

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 of the concatenation `prefix || name` (at most 119 bytes: two blocks).
pub const fn sha256_2(prefix: &[u8], name: &[u8]) -> [u8; 32] {
    let len = prefix.len() + name.len();
    assert!(len <= 119, "discriminator preimage too long");
    let mut block = [0u8; 128];
    let mut i = 0;
    while i < prefix.len() {
        block[i] = prefix[i];
        i += 1;
    }
    let mut j = 0;
    while j < name.len() {
        block[prefix.len() + j] = name[j];
        j += 1;
    }
    block[len] = 0x80;
    let blocks = if len + 9 <= 64 { 1 } else { 2 };
    let bits = (len as u64) * 8;
    let end = blocks * 64;
    let mut b = 0;
    while b < 8 {
        block[end - 1 - b] = (bits >> (8 * b)) as u8;
        b += 1;
    }
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    let mut n = 0;
    while n < blocks {
        let mut w = [0u32; 64];
        let mut t = 0;
        while t < 16 {
            let o = n * 64 + t * 4;
            w[t] = u32::from_be_bytes([block[o], block[o + 1], block[o + 2], block[o + 3]]);
            t += 1;
        }
        while t < 64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
            t += 1;
        }
        let (mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut hh) =
            (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
        let mut r = 0;
        while r < 64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[r]).wrapping_add(w[r]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & bb) ^ (a & c) ^ (bb & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = bb;
            bb = a;
            a = t1.wrapping_add(t2);
            r += 1;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(bb);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
        h[5] = h[5].wrapping_add(f);
        h[6] = h[6].wrapping_add(g);
        h[7] = h[7].wrapping_add(hh);
        n += 1;
    }
    let mut out = [0u8; 32];
    let mut k = 0;
    while k < 8 {
        let bytes = h[k].to_be_bytes();
        out[k * 4] = bytes[0];
        out[k * 4 + 1] = bytes[1];
        out[k * 4 + 2] = bytes[2];
        out[k * 4 + 3] = bytes[3];
        k += 1;
    }
    out
}

const fn first8(hash: [u8; 32]) -> [u8; 8] {
    [hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]]
}

/// `sha256("global:<name>")[..8]`.
pub const fn instruction(name: &str) -> [u8; 8] {
    first8(sha256_2(b"global:", name.as_bytes()))
}

/// `sha256("account:<name>")[..8]`.
pub const fn account(name: &str) -> [u8; 8] {
    first8(sha256_2(b"account:", name.as_bytes()))
}

/// `sha256("event:<name>")[..8]`.
pub const fn event(name: &str) -> [u8; 8] {
    first8(sha256_2(b"event:", name.as_bytes()))
}

/// A discriminator as the little-endian u64 the processor matches on.
pub const fn as_u64(d: [u8; 8]) -> u64 {
    u64::from_le_bytes(d)
}

/// Borsh writer into a fixed stack buffer (events, CPI data). A write that does not fit
/// is not made and marks the writer as overflowed; [`finish`](Self::finish) then fails
/// with `BorshIoError`, so a too-small buffer can never silently cut an event or a CPI's
/// data (the review finding of issue 23).
pub struct BorshWriter<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> BorshWriter<N> {
    #[inline(always)]
    pub const fn new() -> Self {
        Self { buf: [0u8; N], len: 0, overflowed: false }
    }

    #[inline(always)]
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        let end = self.len + data.len();
        if end <= N {
            let target = &mut self.buf[self.len..end];
            if data.len() >= 16 {
                // SAFETY: `target` and `data` are distinct live slices of the same length.
                // At an unaligned offset the inline copy would be one byte per instruction;
                // the syscall costs 10 CU.
                unsafe { crate::syscalls::sol_memcpy_(target.as_mut_ptr(), data.as_ptr(), data.len() as u64) };
            } else {
                target.copy_from_slice(data);
            }
            self.len = end;
        } else {
            self.overflowed = true;
        }
        self
    }

    #[inline(always)]
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }

    #[inline(always)]
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    #[inline(always)]
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    #[inline(always)]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    #[inline(always)]
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// The bytes written, or `BorshIoError` when any write did not fit.
    #[inline(always)]
    pub fn finish(&self) -> Result<&[u8], crate::ProgramError> {
        if self.overflowed {
            Err(crate::ProgramError::BorshIoError)
        } else {
            Ok(&self.buf[..self.len])
        }
    }
}

impl<const N: usize> Default for BorshWriter<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// One Anchor event, as `emit!` logs it: a single `sol_log_data` part holding
/// `sha256("event:<Name>")[..8]` followed by the Borsh-encoded fields. Built in place
/// (`Event::new(DISCRIMINATOR).key(..).u64(..).emit()`), never copied; `N` bounds the
/// event's size, and an event that does not fit is an error, never a cut line.
pub struct Event<const N: usize>(BorshWriter<N>);

impl<const N: usize> Event<N> {
    #[inline(always)]
    pub fn new(discriminator: [u8; 8]) -> Self {
        let mut w = BorshWriter::new();
        w.bytes(&discriminator);
        Self(w)
    }

    #[inline(always)]
    pub fn key(&mut self, key: &[u8; 32]) -> &mut Self {
        self.0.bytes(key);
        self
    }

    #[inline(always)]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.u64(v);
        self
    }

    #[inline(always)]
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.i64(v);
        self
    }

    #[inline(always)]
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.u8(v);
        self
    }

    #[inline(always)]
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.bool(v);
        self
    }

    /// Logs the event (`BorshIoError` if any field did not fit).
    #[inline(never)]
    pub fn emit(&mut self) -> Result<(), crate::ProgramError> {
        crate::log::log_data(&[self.0.finish()?]);
        Ok(())
    }
}
