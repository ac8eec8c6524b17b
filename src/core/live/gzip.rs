//! Gzip (RFC 1952) member decoding for binary WebSocket frames (PROTOCOL.md §4.3).
//!
//! The server sends one gzip member per binary frame: a 10-byte header (possibly followed by
//! FEXTRA / FNAME / FCOMMENT / FHCRC sections), a raw DEFLATE stream, then CRC-32 and ISIZE
//! (little-endian). We validate the header, bound the inflated size *before* allocating
//! (ISIZE is read from the trailer and checked against the limit and against the 1032:1
//! most a DEFLATE stream of the received length can produce), inflate into one exact
//! buffer with miniz_oxide, then check CRC-32 and ISIZE. Any defect is a `PROTOCOL` error.

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use crate::core::error::KalamError;

/// The two magic bytes that open every gzip member.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// The most a DEFLATE stream can expand (zlib's figure: 258-byte matches coded in 2 bits).
const MAX_DEFLATE_RATIO: usize = 1032;

/// True when `bytes` starts with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[..2] == GZIP_MAGIC
}

fn bad(what: &str) -> KalamError {
    KalamError::protocol(format!("bad gzip frame: {what}"))
}

/// Inflates a single gzip member; the output may be at most `max_len` bytes.
pub fn gunzip(bytes: &[u8], max_len: usize) -> Result<Vec<u8>, KalamError> {
    if bytes.len() < 18 {
        return Err(bad("too short"));
    }
    if !is_gzip(bytes) {
        return Err(bad("missing magic bytes 1F 8B"));
    }
    if bytes[2] != 8 {
        return Err(bad("compression method is not deflate"));
    }
    let flags = bytes[3];
    if flags & FRESERVED != 0 {
        return Err(bad("reserved header flags set"));
    }
    let trailer_at = bytes.len() - 8;
    let mut pos = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = bytes
            .get(pos..pos + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| bad("truncated FEXTRA"))?;
        pos += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = bytes
                .get(pos..trailer_at)
                .ok_or_else(|| bad("truncated header"))?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| bad("unterminated header string"))?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = bytes
            .get(pos..pos + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| bad("truncated FHCRC"))?;
        if crc32(&bytes[..pos]) as u16 != stored {
            return Err(bad("header CRC mismatch"));
        }
        pos += 2;
    }
    if pos > trailer_at {
        return Err(bad("truncated body"));
    }
    let body = &bytes[pos..trailer_at];
    let trailer = &bytes[trailer_at..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) as usize;
    if isize > max_len {
        return Err(KalamError::protocol(format!(
            "gzip frame inflates to {isize} bytes, more than the {max_len}-byte limit"
        )));
    }
    // DEFLATE cannot expand more than 1032:1, so a larger ISIZE is a lie; without this
    // check a 20-byte frame could make us allocate up to `max_len` before inflating.
    if isize > body.len().saturating_mul(MAX_DEFLATE_RATIO) {
        return Err(bad(&format!(
            "ISIZE {isize} is more than {} bytes of deflate data can produce",
            body.len()
        )));
    }

    // One spare byte: a stream longer than ISIZE then shows up as `written > isize`.
    let mut out = vec![0u8; isize + 1];
    let mut inflater = Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, consumed, written) = decompress(&mut inflater, body, &mut out, 0, flags);
    match status {
        TINFLStatus::Done => {}
        // More output than ISIZE announced: the trailer lies or the body is corrupt.
        TINFLStatus::HasMoreOutput => return Err(bad("inflated data longer than ISIZE")),
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
            return Err(bad("truncated deflate stream"))
        }
        _ => return Err(bad("corrupt deflate stream")),
    }
    if written != isize {
        return Err(bad("ISIZE mismatch"));
    }
    out.truncate(isize);
    // Bytes between the end of the deflate stream and the trailer are tolerated: CRC-32
    // and ISIZE below already prove the inflated content.
    let _ = consumed;
    if crc32(&out) != crc {
        return Err(bad("CRC-32 mismatch"));
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) with a 16-entry nibble table:
/// small in the binary and fast enough for frame-sized inputs.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 16] = {
        let mut table = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 4 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xf) as usize] ^ (crc >> 4);
        crc = TABLE[((crc ^ (b as u32 >> 4)) & 0xf) as usize] ^ (crc >> 4);
    }
    !crc
}

/// Test helper: wraps `data` in a gzip member (deflate via miniz_oxide) the way the server
/// does (no file name).
#[cfg(test)]
pub fn gzip_for_tests(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 1));
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trips_and_honours_optional_header_fields() {
        let data = br#"{"type":"change","subscription_id":"s","change_type":"insert","rows":[]}"#;
        let plain = gzip_for_tests(data);
        assert_eq!(gunzip(&plain, 1 << 20).unwrap(), data);

        // FEXTRA + FNAME + FCOMMENT + FHCRC.
        let mut fancy = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        fancy.extend([3, 0, b'a', b'b', b'c']);
        fancy.extend(b"frame.json\0");
        fancy.extend(b"a comment\0");
        let hcrc = crc32(&fancy) as u16;
        fancy.extend(hcrc.to_le_bytes());
        fancy.extend_from_slice(&plain[10..]);
        assert_eq!(gunzip(&fancy, 1 << 20).unwrap(), data);
    }

    #[test]
    fn round_trips_many_sizes_and_levels() {
        let mut state = 7u64;
        for len in (0..3000).step_by(37).chain([65_536, 200_000]) {
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    // Mix of compressible text and noise.
                    if i % 5 == 0 {
                        (state >> 56) as u8
                    } else {
                        b"{\"id\":\"17\",}"[i % 12]
                    }
                })
                .collect();
            for level in [1, 6, 9] {
                let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
                gz.extend(miniz_oxide::deflate::compress_to_vec(&data, level));
                gz.extend(crc32(&data).to_le_bytes());
                gz.extend((data.len() as u32).to_le_bytes());
                assert_eq!(
                    gunzip(&gz, 1 << 20).unwrap(),
                    data,
                    "len {len} level {level}"
                );
            }
        }
    }

    #[test]
    fn rejects_corruption_and_oversize_without_panicking() {
        let data = vec![b'x'; 10_000];
        let good = gzip_for_tests(&data);
        assert!(gunzip(&good, 9_999).unwrap_err().message.contains("limit"));

        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert!(gunzip(&bad_crc, 1 << 20).is_err());

        let mut lying_size = good.clone();
        lying_size[n - 4] = 0x10; // ISIZE smaller than the real output
        lying_size[n - 3] = 0;
        assert!(gunzip(&lying_size, 1 << 20).is_err());

        let mut bad_method = good.clone();
        bad_method[2] = 7;
        assert!(gunzip(&bad_method, 1 << 20).is_err());

        // Every truncation and every single-byte flip must fail cleanly or decode.
        for cut in 0..good.len() {
            let _ = gunzip(&good[..cut], 1 << 20);
        }
        for i in 0..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0x55;
            let _ = gunzip(&flipped, 1 << 20);
        }
        assert!(gunzip(b"\x1f\x8b", 100).is_err());
        assert!(gunzip(b"", 100).is_err());
    }
}
