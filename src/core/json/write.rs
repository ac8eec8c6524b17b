//! Compact JSON writing. Strings are escaped exactly like serde_json (the TypeScript side and
//! recorded fixtures compare bytes): `"` `\` `\n` `\r` `\t` `\b` `\f`, other C0 controls as
//! `\u00XX` (lowercase hex); nothing else, non-ASCII and `/` verbatim. Integers are written
//! by hand: no `core::fmt` float (or integer) machinery.

use super::{Map, Number, Value};

/// A type with a JSON form.
pub trait ToJson {
    fn write_json(&self, out: &mut String);

    fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
}

/// What each byte becomes inside a string: 0 verbatim, `u` as `\u00XX`, else `\<byte>`.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `s` as a JSON string literal.
/// `s` as a JSON string literal, the way messages quote names and values: escaped like
/// `{:?}`, without the Unicode tables `str`'s `Debug` needs.
pub fn quote(s: &str) -> String {
    let mut out = String::new();
    write_str(&mut out, s);
    out
}

pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        // `i` is at an ASCII byte, so both slices are on char boundaries.
        out.push_str(&s[run..i]);
        run = i + 1;
        out.push('\\');
        if e == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("u00");
            out.push(char::from(HEX[(b >> 4) as usize]));
            out.push(char::from(HEX[(b & 15) as usize]));
        } else {
            out.push(char::from(e));
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

pub(crate) fn write_u64(out: &mut String, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

pub(crate) fn write_i64(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    write_u64(out, i.unsigned_abs());
}

impl ToJson for Value {
    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => b.write_json(out),
            Value::Number(n) => n.write(out),
            Value::String(s) => write_str(out, s),
            Value::Array(items) => items.write_json(out),
            Value::Object(map) => map.write_json(out),
        }
    }
}

impl ToJson for Map {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        for (k, v) in self.iter() {
            w.field(k, v);
        }
        w.finish();
    }
}

impl ToJson for Number {
    fn write_json(&self, out: &mut String) {
        self.write(out);
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! int_to_json {
    ($($t:ty => $w:ident as $as:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                $w(out, *self as $as);
            }
        }
    )*};
}
int_to_json!(
    i8 => write_i64 as i64, i16 => write_i64 as i64, i32 => write_i64 as i64,
    i64 => write_i64 as i64, isize => write_i64 as i64,
    u8 => write_u64 as u64, u16 => write_u64 as u64, u32 => write_u64 as u64,
    u64 => write_u64 as u64, usize => write_u64 as u64
);

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        let mut w = ArrayWriter::new(out);
        for item in self {
            w.item(item);
        }
        w.finish();
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<T: ToJson + ?Sized> ToJson for Box<T> {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

/// Writes `{"name":value,...}` for hand-written [`ToJson`] impls; `finish()` closes it.
pub struct ObjectWriter<'o> {
    out: &'o mut String,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    pub fn new(out: &'o mut String) -> ObjectWriter<'o> {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    /// Continues an object whose `{` and first fields the caller already wrote.
    pub fn continue_object(out: &'o mut String) -> ObjectWriter<'o> {
        ObjectWriter { out, first: false }
    }

    /// Writes `"name":` and returns the buffer for the value.
    pub fn key(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(':');
        self.out
    }

    pub fn field<T: ToJson + ?Sized>(&mut self, name: &str, value: &T) -> &mut Self {
        value.write_json(self.key(name));
        self
    }

    /// Omitted when `None` (`skip_serializing_if = "Option::is_none"`).
    pub fn opt_field<T: ToJson>(&mut self, name: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.field(name, v);
        }
        self
    }

    /// Omitted when empty (`skip_serializing_if = "Vec::is_empty"`).
    pub fn nonempty_field<T: ToJson>(&mut self, name: &str, value: &[T]) -> &mut Self {
        if !value.is_empty() {
            self.field(name, value);
        }
        self
    }

    /// A value that is already JSON text.
    pub fn raw_field(&mut self, name: &str, json: &str) -> &mut Self {
        self.key(name).push_str(json);
        self
    }

    pub fn finish(self) {
        self.out.push('}');
    }
}

/// Writes `[item,...]`; `finish()` closes it.
pub struct ArrayWriter<'o> {
    out: &'o mut String,
    first: bool,
}

impl<'o> ArrayWriter<'o> {
    pub fn new(out: &'o mut String) -> ArrayWriter<'o> {
        out.push('[');
        ArrayWriter { out, first: true }
    }

    /// The buffer for the next item (its `,` written).
    pub fn slot(&mut self) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out
    }

    pub fn item<T: ToJson + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.write_json(self.slot());
        self
    }

    pub fn finish(self) {
        self.out.push(']');
    }
}
