//! `SeqId`: KalamDB's 64-bit row-version id (PROTOCOL.md §5).
//!
//! A Snowflake-style signed 64-bit integer: bits 63..22 are milliseconds since the custom
//! epoch 2024-01-01T00:00:00Z, bits 21..12 the worker id, bits 11..0 a per-millisecond
//! sequence. Values exceed 2^53, so they are never routed through `f64`:
//! - parsed exactly from a JSON integer or a decimal string (`_seq` cells are strings,
//!   protocol fields such as `last_seq_id` are integers);
//! - serialized as a JSON **integer** (what the server requires for `from` and
//!   `last_seq_id`; a string there closes the socket with 1011);
//! - displayed as a decimal string (what JS should see, or a `BigInt`).

use std::fmt;
use std::str::FromStr;

use crate::core::error::KalamError;
use crate::core::json::{Kind, Reader, ToJson, Value};

/// A KalamDB sequence id. Total order = numeric order of the `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqId(i64);

impl SeqId {
    /// The Snowflake epoch, 2024-01-01T00:00:00Z, in milliseconds since the Unix epoch.
    pub const EPOCH_MS: i64 = 1_704_067_200_000;
    /// Width of the per-millisecond sequence (the low bits).
    pub const SEQUENCE_BITS: u32 = 12;
    /// Width of the worker id (above the sequence).
    pub const WORKER_BITS: u32 = 10;
    /// Where the worker id starts.
    pub const WORKER_SHIFT: u32 = Self::SEQUENCE_BITS;
    /// Where the millisecond timestamp starts (it fills the rest of the 64 bits).
    pub const TIMESTAMP_SHIFT: u32 = Self::SEQUENCE_BITS + Self::WORKER_BITS;

    pub const fn new(value: i64) -> SeqId {
        SeqId(value)
    }

    pub const fn as_i64(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch at which this id was minted:
    /// `(seq >> 22) + 1704067200000`.
    pub const fn timestamp_ms(self) -> i64 {
        (self.0 >> Self::TIMESTAMP_SHIFT) + Self::EPOCH_MS
    }

    /// The worker (node) id, bits 21..12.
    pub const fn worker_id(self) -> u16 {
        ((self.0 >> Self::WORKER_SHIFT) & ((1 << Self::WORKER_BITS) - 1)) as u16
    }

    /// The per-millisecond sequence, bits 11..0.
    pub const fn sequence(self) -> u16 {
        (self.0 & ((1 << Self::SEQUENCE_BITS) - 1)) as u16
    }

    /// Parses a decimal string exactly (optional leading `-`, ASCII digits only, no
    /// whitespace, no `+`, no exponent). Errors are `PROTOCOL` errors.
    pub fn parse(text: &str) -> Result<SeqId, KalamError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KalamError::protocol(format!("invalid SeqId \"{text}\"")));
        }
        text.parse::<i64>()
            .map(SeqId)
            .map_err(|_| KalamError::protocol(format!("SeqId out of range: {text}")))
    }

    /// Reads a SeqId from a JSON integer or a decimal string (never from a float).
    pub fn from_json(value: &Value) -> Result<SeqId, KalamError> {
        match value {
            Value::Number(n) => {
                if let Some(v) = n.as_i64() {
                    Ok(SeqId(v))
                } else if n.is_u64() {
                    Err(KalamError::protocol(format!("SeqId out of range: {n}")))
                } else {
                    Err(KalamError::protocol(format!(
                        "SeqId must be an integer, got {n}"
                    )))
                }
            }
            Value::String(s) => SeqId::parse(s),
            other => Err(KalamError::protocol(format!(
                "SeqId must be an integer or a decimal string, got {other}"
            ))),
        }
    }

    /// Reads a SeqId from the next value of `reader`, with the rules of
    /// [`SeqId::from_json`] (an integer or a decimal string, never a float).
    pub fn read(reader: &mut Reader<'_>) -> Result<SeqId, KalamError> {
        let kind = reader.peek().map_err(json_error)?;
        match kind {
            Kind::Number | Kind::String => {}
            _ => {
                return Err(KalamError::protocol(
                    "SeqId must be an integer or a decimal string",
                ))
            }
        }
        SeqId::from_json(&reader.value().map_err(json_error)?)
    }

    /// The JSON integer form used in protocol fields.
    pub fn to_value(self) -> Value {
        Value::from(self.0)
    }
}

fn json_error(e: crate::core::json::JsonError) -> KalamError {
    KalamError::protocol(e.to_string())
}

/// A JSON integer (the protocol-field form).
impl ToJson for SeqId {
    fn write_json(&self, out: &mut String) {
        self.0.write_json(out);
    }
}

impl From<i64> for SeqId {
    fn from(value: i64) -> SeqId {
        SeqId(value)
    }
}

impl From<SeqId> for i64 {
    fn from(value: SeqId) -> i64 {
        value.0
    }
}

impl FromStr for SeqId {
    type Err = KalamError;
    fn from_str(s: &str) -> Result<SeqId, KalamError> {
        SeqId::parse(s)
    }
}

impl fmt::Display for SeqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::{json, parse};

    fn read(text: &str) -> Result<SeqId, KalamError> {
        let mut r = Reader::new(text.as_bytes());
        let seq = SeqId::read(&mut r)?;
        r.end().map_err(json_error)?;
        Ok(seq)
    }

    #[test]
    fn parses_exactly_from_numbers_and_strings() {
        // Above 2^53: an f64 round-trip would change the last digits.
        let big = 383_266_655_613_849_601_i64;
        assert_eq!(SeqId::from_json(&json!(big)).unwrap().as_i64(), big);
        assert_eq!(SeqId::parse("383266655613849601").unwrap().as_i64(), big);
        let from_text = read("383266655613849601").unwrap();
        let from_string = read("\"383266655613849601\"").unwrap();
        assert_eq!(
            SeqId::from_json(&parse("383266655613849601").unwrap()).unwrap(),
            from_text
        );
        assert_eq!(from_text, from_string);
        assert_eq!(from_text.as_i64(), big);
        assert_eq!(from_text.to_string(), "383266655613849601");
        assert_eq!(SeqId::parse("-5").unwrap().as_i64(), -5);
        assert_eq!(
            SeqId::parse("9223372036854775807").unwrap().as_i64(),
            i64::MAX
        );
    }

    #[test]
    fn rejects_floats_garbage_and_overflow() {
        for bad in [
            "",
            "-",
            "+1",
            " 1",
            "1.0",
            "1e3",
            "abc",
            "9223372036854775808",
        ] {
            let err = SeqId::parse(bad).unwrap_err();
            assert_eq!(err.code, "PROTOCOL", "{bad:?}");
        }
        for bad in [
            "1.5",
            "1e3",
            "18446744073709551615",
            "null",
            "true",
            "[1]",
            "\"1.0\"",
        ] {
            let err = read(bad).unwrap_err();
            assert_eq!(err.code, "PROTOCOL", "{bad}");
            let value = parse(bad).unwrap();
            assert_eq!(SeqId::from_json(&value).unwrap_err().code, "PROTOCOL");
        }
        assert!(SeqId::from_json(&json!(1.5)).is_err());
        assert!(SeqId::from_json(&json!(u64::MAX)).is_err());
        assert!(SeqId::from_json(&json!(true)).is_err());
    }

    #[test]
    fn serializes_as_a_json_integer() {
        let seq = SeqId::new(383_266_668_372_922_368);
        assert_eq!(seq.to_json(), "383266668372922368");
        assert_eq!(seq.to_value().to_string(), "383266668372922368");
        assert_eq!(SeqId::new(-2).to_json(), "-2");
    }

    #[test]
    fn orders_numerically() {
        let mut ids: Vec<SeqId> = ["383266659942371328", "9", "383266655601266688", "-1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let text: Vec<String> = ids.iter().map(SeqId::to_string).collect();
        assert_eq!(
            text,
            ["-1", "9", "383266655601266688", "383266659942371328"]
        );
    }

    #[test]
    fn decodes_the_snowflake_fields() {
        // Recorded row: created_at 1795445091443210 µs, _seq 383266655601266688.
        let seq = SeqId::parse("383266655601266688").unwrap();
        assert_eq!(
            seq.timestamp_ms(),
            (383_266_655_601_266_688_i64 >> 22) + 1_704_067_200_000
        );
        let created_ms = 1_795_445_091_443_210_i64 / 1000;
        assert!((seq.timestamp_ms() - created_ms).abs() < 1000);
        let composed = SeqId::new((5 << 22) | (7 << 12) | 9);
        assert_eq!(composed.timestamp_ms(), SeqId::EPOCH_MS + 5);
        assert_eq!(composed.worker_id(), 7);
        assert_eq!(composed.sequence(), 9);
    }
}
