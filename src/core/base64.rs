//! A tiny base64 codec (RFC 4648): standard alphabet with padding for topic payloads and
//! the URL-safe alphabet without padding for JWT segments. No dependency on purpose: every
//! byte of the wasm module ships to browsers.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a base64 text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A byte outside the alphabet (at this byte offset).
    InvalidByte(usize),
    /// The length cannot be the length of a base64 text (one leftover character).
    InvalidLength,
    /// `=` in the middle of the text, or too many of them.
    InvalidPadding,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::InvalidByte(at) => write!(f, "invalid base64 character at {at}"),
            DecodeError::InvalidLength => f.write_str("invalid base64 length"),
            DecodeError::InvalidPadding => f.write_str("invalid base64 padding"),
        }
    }
}

fn encode_with(input: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn decode_with(input: &str, url_safe: bool) -> Result<Vec<u8>, DecodeError> {
    let bytes = input.as_bytes();
    // Padding is optional; when present it must be at the end and complete a quantum.
    let trimmed_len = bytes.iter().rposition(|&c| c != b'=').map_or(0, |p| p + 1);
    let pad = bytes.len() - trimmed_len;
    if pad > 2 || (pad > 0 && bytes.len() % 4 != 0) {
        return Err(DecodeError::InvalidPadding);
    }
    let data = &bytes[..trimmed_len];
    if data.len() % 4 == 1 {
        return Err(DecodeError::InvalidLength);
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (i, &c) in data.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' if !url_safe => 62,
            b'/' if !url_safe => 63,
            b'-' if url_safe => 62,
            b'_' if url_safe => 63,
            b'=' => return Err(DecodeError::InvalidPadding),
            _ => return Err(DecodeError::InvalidByte(i)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Standard alphabet, with `=` padding.
pub fn encode(input: &[u8]) -> String {
    encode_with(input, STANDARD, true)
}

/// URL-safe alphabet, without padding (JWT segments).
pub fn encode_url(input: &[u8]) -> String {
    encode_with(input, URL_SAFE, false)
}

/// Decodes the standard alphabet; padding optional.
pub fn decode(input: &str) -> Result<Vec<u8>, DecodeError> {
    decode_with(input, false)
}

/// Decodes the URL-safe alphabet; padding optional.
pub fn decode_url(input: &str) -> Result<Vec<u8>, DecodeError> {
    decode_with(input, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, b64) in cases {
            assert_eq!(encode(plain.as_bytes()), b64);
            assert_eq!(decode(b64).unwrap(), plain.as_bytes());
            assert_eq!(decode(b64.trim_end_matches('=')).unwrap(), plain.as_bytes());
            assert_eq!(encode_url(plain.as_bytes()), b64.trim_end_matches('='));
        }
    }

    #[test]
    fn alphabets_and_errors() {
        let bytes = [0xfb, 0xff, 0xfe];
        assert_eq!(encode(&bytes), "+//+");
        assert_eq!(encode_url(&bytes), "-__-");
        assert_eq!(decode_url("-__-").unwrap(), bytes);
        assert_eq!(decode("-__-"), Err(DecodeError::InvalidByte(0)));
        assert_eq!(decode("Zg=a"), Err(DecodeError::InvalidPadding));
        assert_eq!(decode("Zg==="), Err(DecodeError::InvalidPadding));
        assert_eq!(decode("Zm9vY"), Err(DecodeError::InvalidLength));
        assert_eq!(decode("Zg="), Err(DecodeError::InvalidPadding));
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
        assert_eq!(decode_url(&encode_url(&all)).unwrap(), all);
    }
}
