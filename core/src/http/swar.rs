//! Byte tests eight at a time in a `u64` (SWAR), for the searches of the head scan: no
//! `unsafe` and no SIMD intrinsics, yet several times fewer branches than a loop a byte.
//!
//! Each mask has the top bit of a byte set where that byte passes the test. The borrow of a
//! subtraction can set it on bytes *after* a true hit, never before one, so the lowest set bit
//! ([`lowest`]) is exact; that holds for an `|` of such masks too.

/// A one in every byte.
const LO: u64 = 0x0101_0101_0101_0101;
/// The top bit of every byte.
pub(super) const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes (`bytes.len()` must be 8) as a little-endian word.
#[inline]
pub(super) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Bytes of `x` below `n` (for `n` up to 0x80).
#[inline]
pub(super) fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * u64::from(n)) & !x & HI
}

/// Bytes of `x` equal to `b`.
#[inline]
pub(super) fn equal(x: u64, b: u8) -> u64 {
    let d = x ^ (LO * u64::from(b));
    d.wrapping_sub(LO) & !d & HI
}

/// The index of the first flagged byte.
#[inline]
pub(super) fn lowest(mask: u64) -> Option<usize> {
    (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_find_the_first_byte_that_passes() {
        let pattern: Vec<u8> = (0..=255u8).collect();
        for start in 0..=248usize {
            let bytes = &pattern[start..start + 8];
            let x = word(bytes);
            for n in [0x20u8, 0x21, 0x30, 0x80] {
                assert_eq!(lowest(below(x, n)), bytes.iter().position(|&b| b < n));
            }
            for b in [0u8, b'\n', b':', 0x7f, 0xff] {
                assert_eq!(lowest(equal(x, b)), bytes.iter().position(|&y| y == b));
            }
        }
        // Several hits and borrows: still the first.
        let x = word(b"a\x00\x00:b::\x01");
        assert_eq!(lowest(below(x, 0x20)), Some(1));
        assert_eq!(lowest(equal(x, b':')), Some(3));
        assert_eq!(lowest(equal(x, b'z')), None);
    }
}
