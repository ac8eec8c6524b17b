//! Strict RFC 8259 parsing: [`parse`] builds a [`Value`]; the pull [`Reader`] streams a
//! document (hot paths: live frames, rows) without an intermediate tree. One value, with
//! whitespace around; no trailing commas, comments or NaN; a lone surrogate escape is an
//! error (like serde_json); nesting deeper than [`MAX_DEPTH`] is an error, never a stack
//! overflow.

use std::borrow::Cow;
use std::fmt;

use super::{Map, Number, Value};

/// Deepest nesting of arrays/objects accepted.
pub const MAX_DEPTH: u32 = 128;

/// Why a document is not JSON: a static message and the byte offset it was noticed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    message: &'static str,
    offset: usize,
}

impl JsonError {
    pub fn new(message: &'static str, offset: usize) -> JsonError {
        JsonError { message, offset }
    }

    pub fn message(&self) -> &'static str {
        self.message
    }

    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

type Result<T> = std::result::Result<T, JsonError>;

/// Parses one JSON document.
pub fn parse(text: &str) -> Result<Value> {
    parse_slice(text.as_bytes())
}

/// Parses one JSON document from bytes (strings are checked to be UTF-8).
pub fn parse_slice(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader::new(bytes);
    let v = r.value()?;
    r.end()?;
    Ok(v)
}

/// The kind of the next value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// Bytes that end an unescaped run inside a string: `"`, `\` and C0 controls.
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

fn utf8(bytes: &[u8], at: usize) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| JsonError::new("invalid UTF-8", at + e.valid_up_to()))
}

/// A pull parser over one document.
///
/// Objects: `begin_object()`, then `while let Some(key) = next_key()? { value / skip / ... }`
/// (`next_key` consumes the `,`, the key and its `:`, or the closing `}`). Arrays:
/// `begin_array()`, then `while next_element()? { ... }`. After the top value, `end()`.
pub struct Reader<'a> {
    src: &'a [u8],
    /// `src` as text when it is all UTF-8 (checked once, in one fast pass): strings are then
    /// sliced from it without a check each. Invalid input falls back to per-string checks,
    /// which report the offset.
    text: Option<&'a str>,
    pos: usize,
    depth: u32,
    /// The next `next_key`/`next_element` is the container's first.
    first: bool,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a [u8]) -> Reader<'a> {
        Reader {
            src,
            text: std::str::from_utf8(src).ok(),
            pos: 0,
            depth: 0,
            first: false,
        }
    }

    /// Byte offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn err<T>(&self, message: &'static str) -> Result<T> {
        Err(JsonError::new(message, self.pos))
    }

    /// `src[start..end]` as text (both ends next to ASCII bytes).
    #[inline(always)]
    fn text(&self, start: usize, end: usize) -> Result<&'a str> {
        match self.text.and_then(|t| t.get(start..end)) {
            Some(s) => Ok(s),
            None => utf8(&self.src[start..end], start),
        }
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.src.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte (not consumed).
    #[inline(always)]
    fn peek_byte(&mut self) -> Result<u8> {
        self.ws();
        match self.src.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.err("unexpected end of input"),
        }
    }

    /// The kind of the next value.
    pub fn peek(&mut self) -> Result<Kind> {
        Ok(match self.peek_byte()? {
            b'n' => Kind::Null,
            b't' | b'f' => Kind::Bool,
            b'-' | b'0'..=b'9' => Kind::Number,
            b'"' => Kind::String,
            b'[' => Kind::Array,
            b'{' => Kind::Object,
            _ => return self.err("expected a value"),
        })
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        self.ws();
        if self.pos < self.src.len() {
            return self.err("trailing characters");
        }
        Ok(())
    }

    fn open(&mut self, byte: u8, message: &'static str) -> Result<()> {
        if self.peek_byte()? != byte {
            return self.err(message);
        }
        if self.depth >= MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.depth += 1;
        self.pos += 1;
        self.first = true;
        Ok(())
    }

    /// Consumes `{`.
    pub fn begin_object(&mut self) -> Result<()> {
        self.open(b'{', "expected an object")
    }

    /// Consumes `[`.
    pub fn begin_array(&mut self) -> Result<()> {
        self.open(b'[', "expected an array")
    }

    /// Before the next member: `true` when there is one (the `,` consumed), `false` when
    /// the container closed (its bracket consumed).
    fn next_member(&mut self, close: u8, message: &'static str) -> Result<bool> {
        let b = self.peek_byte()?;
        if b == close {
            self.pos += 1;
            self.depth -= 1;
            self.first = false;
            return Ok(false);
        }
        if self.first {
            self.first = false;
            return Ok(true);
        }
        if b != b',' {
            return self.err(message);
        }
        self.pos += 1;
        if self.peek_byte()? == close {
            return self.err("trailing comma");
        }
        Ok(true)
    }

    /// The next key of the current object (its `:` consumed), or `None` at its end.
    pub fn next_key(&mut self) -> Result<Option<Cow<'a, str>>> {
        if !self.next_member(b'}', "expected `,` or `}`")? {
            return Ok(None);
        }
        if self.peek_byte()? != b'"' {
            return self.err("expected a string key");
        }
        let key = self.string()?;
        if self.peek_byte()? != b':' {
            return self.err("expected `:`");
        }
        self.pos += 1;
        Ok(Some(key))
    }

    /// Whether the current array has another element (then read it), `false` at its end.
    pub fn next_element(&mut self) -> Result<bool> {
        self.next_member(b']', "expected `,` or `]`")
    }

    /// Consumes `null` if that is next (`true`), else leaves the input alone.
    pub fn null_or(&mut self) -> Result<bool> {
        if self.peek_byte()? == b'n' {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.peek_byte()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => self.err("expected a boolean"),
        }
    }

    /// A string (borrowed from the input when it has no escapes).
    pub fn str(&mut self) -> Result<Cow<'a, str>> {
        if self.peek_byte()? != b'"' {
            return self.err("expected a string");
        }
        self.string()
    }

    /// At `"`.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let src = self.src;
        let start = self.pos + 1;
        let mut i = start;
        while i < src.len() && !STOP[src[i] as usize] {
            i += 1;
        }
        match src.get(i) {
            Some(b'"') => {
                let s = self.text(start, i)?;
                self.pos = i + 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(_) => {
                self.pos = i;
                return self.err("control character in a string");
            }
            None => {
                self.pos = i;
                return self.err("unterminated string");
            }
        }
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(self.text(start, i)?);
        loop {
            // At a byte of STOP.
            match src.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos = i;
                    i = self.escape(i + 1, &mut out)?;
                }
                Some(_) => {
                    self.pos = i;
                    return self.err("control character in a string");
                }
                None => {
                    self.pos = i;
                    return self.err("unterminated string");
                }
            }
            let run = i;
            while i < src.len() && !STOP[src[i] as usize] {
                i += 1;
            }
            out.push_str(self.text(run, i)?);
        }
    }

    fn hex4(&self, at: usize) -> Result<u32> {
        let Some(digits) = self.src.get(at..at + 4) else {
            return Err(JsonError::new("unterminated string", self.src.len()));
        };
        let mut v = 0;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(JsonError::new("invalid \\u escape", at)),
            };
            v = v * 16 + u32::from(n);
        }
        Ok(v)
    }

    /// The escape after a `\` at `at - 1`; returns the offset after it.
    fn escape(&self, at: usize, out: &mut String) -> Result<usize> {
        let c = match self.src.get(at) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4(at + 1)?;
                let (code, next) = match hi {
                    0xD800..=0xDBFF => {
                        if self.src.get(at + 5..at + 7) != Some(b"\\u") {
                            return Err(JsonError::new("lone leading surrogate", at - 1));
                        }
                        let lo = self.hex4(at + 7)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(JsonError::new("lone leading surrogate", at - 1));
                        }
                        (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), at + 11)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(JsonError::new("lone trailing surrogate", at - 1))
                    }
                    _ => (hi, at + 5),
                };
                match char::from_u32(code) {
                    Some(c) => out.push(c),
                    None => return Err(JsonError::new("invalid \\u escape", at - 1)),
                }
                return Ok(next);
            }
            Some(_) => return Err(JsonError::new("invalid escape", at - 1)),
            None => return Err(JsonError::new("unterminated string", at)),
        };
        out.push(c);
        Ok(at + 1)
    }

    /// Scans a number (its grammar checked once).
    pub fn number(&mut self) -> Result<Number> {
        self.peek_byte()?;
        let start = self.pos;
        match super::scan_number(self.src, start) {
            Ok((end, integer)) => {
                self.pos = end;
                Ok(Number::from_valid(&self.src[start..end], integer))
            }
            Err(at) if at == start => self.err("expected a number"),
            Err(at) => Err(JsonError::new("invalid number", at)),
        }
    }

    /// Reads the next value into a tree.
    pub fn value(&mut self) -> Result<Value> {
        Ok(match self.peek()? {
            Kind::Null => {
                self.literal(b"null")?;
                Value::Null
            }
            Kind::Bool => Value::Bool(self.bool()?),
            Kind::Number => Value::Number(self.number()?),
            Kind::String => Value::String(self.string()?.into_owned()),
            Kind::Array => {
                self.begin_array()?;
                let mut items = Vec::new();
                while self.next_element()? {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            Kind::Object => {
                self.begin_object()?;
                let mut entries = Vec::new();
                while let Some(key) = self.next_key()? {
                    let v = self.value()?;
                    entries.push((key.into_owned(), v));
                }
                Value::Object(Map::from_entries(entries))
            }
        })
    }

    /// Skips the next value (checked like [`Reader::value`], nothing built).
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            Kind::Null => self.literal(b"null"),
            Kind::Bool => self.bool().map(drop),
            Kind::Number => self.number().map(drop),
            Kind::String => self.string().map(drop),
            Kind::Array => {
                self.begin_array()?;
                while self.next_element()? {
                    self.skip()?;
                }
                Ok(())
            }
            Kind::Object => {
                self.begin_object()?;
                while self.next_key()?.is_some() {
                    self.skip()?;
                }
                Ok(())
            }
        }
    }

    /// Skips the next value and returns its exact text.
    pub fn raw(&mut self) -> Result<&'a str> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        // Checked UTF-8 inside strings; everything else is ASCII.
        utf8(&self.src[start..self.pos], start)
    }
}
