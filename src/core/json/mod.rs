//! Our own small, exact JSON (issue 15): serde_json + serde derives + float formatting were
//! ~60 KB of each .wasm. The API mirrors serde_json's names so call sites mostly change only
//! their `use` line.
//!
//! - [`Value`], [`Map`] (insertion-ordered, like `preserve_order`), [`Number`] (exact: an
//!   `i64`, or the validated JSON number text written back verbatim; never an `f64`).
//! - [`parse`] / [`parse_slice`] (strict RFC 8259, depth limit [`MAX_DEPTH`]) and the pull
//!   [`Reader`] for hot paths that stream without building a tree.
//! - [`ToJson`] (compact writing, escaping byte-for-byte like serde_json), [`ObjectWriter`]
//!   for hand-written impls, and the `json!` macro.

use std::fmt;

mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use parse::{parse, parse_slice, JsonError, Kind, Reader, MAX_DEPTH};
pub use write::{quote, write_str, ArrayWriter, ObjectWriter, ToJson};

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

// ---------------------------------------------------------------------------------------
// Number

/// An exact JSON number: integers that fit `i64` are held as one (no allocation); anything
/// else (fractions, exponents, integers outside `i64`, `-0`) as its validated JSON text,
/// written back verbatim. Only [`Number::as_f64`] parses a float.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(N);

#[derive(Clone, PartialEq, Eq, Hash)]
enum N {
    Int(i64),
    Text(Box<str>),
}

/// Scans the JSON number that starts at `b[start]`: `Ok((end, integer))`, or `Err(offset)`
/// of the byte that breaks the grammar (`start` itself when no number begins there). The one
/// number grammar, for [`number_shape`] and the parser's `Reader::number`.
pub(crate) fn scan_number(b: &[u8], start: usize) -> Result<(usize, bool), usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return Err(start),
    }
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        let at = i + 1;
        i = digits(at);
        if i == at {
            return Err(i);
        }
        integer = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut at = i + 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        i = digits(at);
        if i == at {
            return Err(i);
        }
        integer = false;
    }
    Ok((i, integer))
}

/// Shape of a JSON number's text (`None`: not a JSON number; `Some(true)`: an integer).
pub(crate) fn number_shape(b: &[u8]) -> Option<bool> {
    match scan_number(b, 0) {
        Ok((end, integer)) if end == b.len() => Some(integer),
        _ => None,
    }
}

/// `i64` of integer-grammar text (`-0` and out-of-range: `None`).
fn int_of(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut acc: u64 = 0;
    for &d in digits {
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if acc == 0 {
            return None; // -0 keeps its sign as text
        }
        0i64.checked_sub_unsigned(acc)
    } else {
        i64::try_from(acc).ok()
    }
}

/// `u64` of non-negative integer-grammar text.
fn uint_of(text: &[u8]) -> Option<u64> {
    if text.first() == Some(&b'-') {
        return None;
    }
    let mut acc: u64 = 0;
    for &d in text {
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(acc)
}

impl Number {
    /// A number from JSON number text (validated; `None` when it is not one).
    pub fn from_text(text: &str) -> Option<Number> {
        let integer = number_shape(text.as_bytes())?;
        Some(Number::from_valid(text.as_bytes(), integer))
    }

    /// `text` is valid JSON number grammar; `integer`: no fraction, no exponent.
    pub(crate) fn from_valid(text: &[u8], integer: bool) -> Number {
        if integer {
            if let Some(i) = int_of(text) {
                return Number(N::Int(i));
            }
        }
        // ASCII by construction.
        Number(N::Text(String::from_utf8_lossy(text).into()))
    }

    /// A finite float (`None` for NaN and infinities). Formats it: tests and rare code only.
    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        // `{:?}` is valid JSON number text for finite floats (`1.0`, `1e16`, `-0.0`).
        Some(Number(N::Text(format!("{f:?}").into())))
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            N::Int(i) => Some(*i),
            N::Text(_) => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            N::Int(i) => u64::try_from(*i).ok(),
            N::Text(t) if number_shape(t.as_bytes()) == Some(true) => uint_of(t.as_bytes()),
            N::Text(_) => None,
        }
    }

    /// The nearest `f64` (`None` when it overflows to an infinity). The only float parsing.
    pub fn as_f64(&self) -> Option<f64> {
        match &self.0 {
            N::Int(i) => Some(*i as f64),
            N::Text(t) => t.parse::<f64>().ok().filter(|f| f.is_finite()),
        }
    }

    pub fn is_i64(&self) -> bool {
        matches!(self.0, N::Int(_))
    }

    pub fn is_u64(&self) -> bool {
        self.as_u64().is_some()
    }

    /// Integer grammar: no fraction, no exponent (whatever its size).
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            N::Int(_) => true,
            N::Text(t) => !t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')),
        }
    }

    /// serde_json's meaning: neither an `i64` nor a `u64` (a fraction, an exponent, `-0`,
    /// or an integer beyond 64 bits).
    pub fn is_f64(&self) -> bool {
        !self.is_i64() && !self.is_u64()
    }

    /// `(negative, digits, exponent)`: the value is `digits × 10^exponent`, `digits` the
    /// significant decimal digits without leading zeros (empty for zero).
    pub(crate) fn decimal(&self) -> (bool, Vec<u8>, i64) {
        let text = match &self.0 {
            N::Int(i) => {
                let mut s = String::new();
                write::write_u64(&mut s, i.unsigned_abs());
                let digits = if *i == 0 { Vec::new() } else { s.into_bytes() };
                return (*i < 0, digits, 0);
            }
            N::Text(t) => t.as_bytes(),
        };
        let neg = text.first() == Some(&b'-');
        let body = if neg { &text[1..] } else { text };
        let (mantissa, exp) = match body.iter().position(|b| matches!(b, b'e' | b'E')) {
            Some(at) => (&body[..at], &body[at + 1..]),
            None => (body, &b""[..]),
        };
        let (exp_neg, exp_digits) = match exp.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, exp),
        };
        // Saturates: beyond ±10^18 the value is 0 or out of every range anyway.
        let mut e: i64 = 0;
        for &d in exp_digits {
            e = e.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        }
        if exp_neg {
            e = -e;
        }
        let mut digits = Vec::with_capacity(mantissa.len());
        for &d in mantissa {
            if d == b'.' {
                continue;
            }
            if !(digits.is_empty() && d == b'0') {
                digits.push(d);
            }
        }
        let frac = mantissa
            .iter()
            .position(|&b| b == b'.')
            .map_or(0, |dot| mantissa.len() - dot - 1);
        (neg, digits, e.saturating_sub(frac as i64))
    }

    /// Below zero (`-0` is not).
    pub fn is_negative(&self) -> bool {
        match &self.0 {
            N::Int(i) => *i < 0,
            N::Text(t) => t.starts_with('-') && !self.decimal().1.is_empty(),
        }
    }

    /// The value times `10^scale`, truncated toward zero, saturating at the `i128` range:
    /// exact integer arithmetic where a float would do `(x * 10^scale) as i128` (JWT times,
    /// offsets and counts given as JS numbers), without parsing a float.
    pub fn trunc_scaled(&self, scale: u32) -> i128 {
        let (neg, digits, exp) = self.decimal();
        let shift = exp.saturating_add(i64::from(scale));
        let kept = if shift >= 0 {
            digits.len()
        } else {
            digits
                .len()
                .saturating_sub(usize::try_from(-shift).unwrap_or(usize::MAX))
        };
        let limit = if neg { i128::MIN } else { i128::MAX };
        let mut acc: i128 = 0;
        for &d in &digits[..kept] {
            match acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(i128::from(d - b'0')))
            {
                Some(a) => acc = a,
                None => return limit,
            }
        }
        if acc != 0 {
            for _ in 0..shift.clamp(0, 40) {
                match acc.checked_mul(10) {
                    Some(a) => acc = a,
                    None => return limit,
                }
            }
        }
        if neg {
            -acc
        } else {
            acc
        }
    }

    /// Whether the nearest `f64` is finite, decided on the digits (no float parse): values
    /// from `2^1024 - 2^970` up round to infinity.
    pub fn is_finite_f64(&self) -> bool {
        // 2^1024 - 2^970, trailing zeros dropped.
        const OVERFLOW: &[u8] = concat!(
            "17976931348623158079372897140530341507993413271003782693617377898044496829276475",
            "09466490179775872070963302864166928879109465555478519404026306574886715058206819",
            "08902000708383676273854845817711531764475730270069855571366959622842914819860834",
            "936475292719074168444365510704342711559699508093042880177904174497792",
        )
        .as_bytes();
        let (_, mut digits, exp) = self.decimal();
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return true;
        }
        // The value is 0.digits × 10^magnitude.
        let magnitude = exp.saturating_add(digits.len() as i64);
        match magnitude.cmp(&309) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => digits.as_slice() < OVERFLOW,
        }
    }

    /// The JSON text of an integer number without allocating for `i64`s.
    fn write(&self, out: &mut String) {
        match &self.0 {
            N::Int(i) => write::write_i64(out, *i),
            N::Text(t) => out.push_str(t),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(N::Int(i))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number(N::Int(i)),
            Err(_) => {
                let mut s = String::new();
                write::write_u64(&mut s, u);
                Number(N::Text(s.into()))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Map

/// An insertion-ordered JSON object (what serde_json's `preserve_order` gave: JS objects
/// keep insertion order too). Lookups are linear: objects here are rows and envelopes.
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

/// Above this many keys duplicates are found by sorting instead of pairwise.
const LINEAR_DEDUP: usize = 32;

impl Map {
    pub fn new() -> Map {
        Map {
            entries: Vec::new(),
        }
    }

    pub fn with_capacity(n: usize) -> Map {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// From entries that may repeat keys: the last value wins at the first key's position
    /// (serde_json + `preserve_order`). Never quadratic on a huge object.
    pub(crate) fn from_entries(mut entries: Vec<(String, Value)>) -> Map {
        if entries.len() <= LINEAR_DEDUP {
            let mut i = 1;
            while i < entries.len() {
                if let Some(j) = entries[..i].iter().position(|(k, _)| *k == entries[i].0) {
                    let (_, v) = entries.remove(i);
                    entries[j].1 = v;
                } else {
                    i += 1;
                }
            }
            return Map { entries };
        }
        let order = crate::core::sort::sorted_indices(entries.len(), &|a, b| {
            entries[a].0.cmp(&entries[b].0)
        });
        let mut drop = vec![false; entries.len()];
        let mut any = false;
        let mut g = 0;
        while g < order.len() {
            let mut end = g + 1;
            while end < order.len() && entries[order[end]].0 == entries[order[g]].0 {
                end += 1;
            }
            if end - g > 1 {
                // Stable sort: order[g] is the first occurrence, order[end - 1] the last.
                let first = order[g];
                let last = order[end - 1];
                let v = std::mem::take(&mut entries[last].1);
                entries[first].1 = v;
                for &o in &order[g + 1..end] {
                    drop[o] = true;
                }
                any = true;
            }
            g = end;
        }
        if any {
            let mut i = 0;
            entries.retain(|_| {
                i += 1;
                !drop[i - 1]
            });
        }
        Map { entries }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Inserts or replaces in place (the key keeps its position); returns the old value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes a key, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&String, &mut Value)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` is true (order kept).
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries in order, by value.
    pub fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same keys with equal values, in any order (like a map).
impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        if self.len() != other.len() {
            return false;
        }
        if self.entries == other.entries {
            return true;
        }
        self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'m> IntoIterator for &'m Map {
    type Item = (&'m String, &'m Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'m, (String, Value)>,
        fn(&'m (String, Value)) -> (&'m String, &'m Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        Map::from_entries(iter.into_iter().collect())
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    /// `Null` when absent (never panics).
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

// ---------------------------------------------------------------------------------------
// Value

static NULL: Value = Value::Null;

/// What [`Value::get`] accepts: a key (objects) or a position (arrays).
pub trait Index {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value>;
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value>;
}

impl Index for str {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_object()?.get(self)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_object_mut()?.get_mut(self)
    }
}

impl Index for String {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.as_str().index_into(v)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        self.as_str().index_into_mut(v)
    }
}

impl Index for usize {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_array()?.get(*self)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_array_mut()?.get_mut(*self)
    }
}

impl<T: Index + ?Sized> Index for &T {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        (**self).index_into(v)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        (**self).index_into_mut(v)
    }
}

impl<I: Index> std::ops::Index<I> for Value {
    type Output = Value;
    /// `Null` when absent or not a container (never panics).
    fn index(&self, index: I) -> &Value {
        index.index_into(self).unwrap_or(&NULL)
    }
}

/// `value["k"] = v`: `Null` becomes an object, an absent key is inserted. Like serde_json
/// it panics on a non-object: only for values the code itself built as objects.
impl std::ops::IndexMut<&str> for Value {
    fn index_mut(&mut self, key: &str) -> &mut Value {
        if self.is_null() {
            *self = Value::Object(Map::new());
        }
        let Value::Object(map) = self else {
            panic!("json: string index into a non-object");
        };
        let i = match map.position(key) {
            Some(i) => i,
            None => {
                map.entries.push((key.to_string(), Value::Null));
                map.entries.len() - 1
            }
        };
        &mut map.entries[i].1
    }
}

impl Value {
    pub fn get<I: Index>(&self, index: I) -> Option<&Value> {
        index.index_into(self)
    }

    pub fn get_mut<I: Index>(&mut self, index: I) -> Option<&mut Value> {
        index.index_into_mut(self)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number()?.as_u64()
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.as_number()?.as_f64()
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_boolean(&self) -> bool {
        matches!(self, Value::Bool(_))
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    pub fn is_i64(&self) -> bool {
        self.as_number().is_some_and(Number::is_i64)
    }

    pub fn is_u64(&self) -> bool {
        self.as_number().is_some_and(Number::is_u64)
    }

    pub fn is_f64(&self) -> bool {
        self.as_number().is_some_and(Number::is_f64)
    }

    /// Moves the value out, leaving `Null`.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }
}

/// Compact JSON text (so `value.to_string()` is the JSON, like serde_json).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl fmt::Display for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<std::borrow::Cow<'_, str>> for Value {
    fn from(s: std::borrow::Cow<'_, str>) -> Value {
        Value::String(s.into_owned())
    }
}

macro_rules! from_signed {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Number(Number::from(i as i64))
            }
        }
    )*};
}
from_signed!(i8 i16 i32 i64 isize u8 u16 u32);

macro_rules! from_unsigned {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(u: $t) -> Value {
                Value::Number(Number::from(u as u64))
            }
        }
    )*};
}
from_unsigned!(u64 usize);

/// Non-finite floats become `Null` (as in serde_json). Formats the float: tests/rare code.
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Object(m)
    }
}

impl From<&Value> for Value {
    fn from(v: &Value) -> Value {
        v.clone()
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Clone + Into<Value>> From<&[T]> for Value {
    fn from(items: &[T]) -> Value {
        Value::Array(items.iter().cloned().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Value {
        Value::Array(iter.into_iter().collect())
    }
}

// `value == "text"`, `value == 3`, `value == true` (as in serde_json).
impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<Value> for &str {
    fn eq(&self, other: &Value) -> bool {
        other.as_str() == Some(*self)
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

macro_rules! eq_int {
    ($($t:ty)*) => {$(
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                match self {
                    Value::Number(n) => *n == Number::from(*other),
                    _ => false,
                }
            }
        }
    )*};
}
eq_int!(i64 u64);

macro_rules! eq_small_int {
    ($($t:ty)*) => {$(
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                self.as_i64() == Some(*other as i64)
            }
        }
    )*};
}
eq_small_int!(i8 i16 i32 isize u8 u16 u32);

impl PartialEq<usize> for Value {
    fn eq(&self, other: &usize) -> bool {
        self.as_u64() == Some(*other as u64)
    }
}

// ---------------------------------------------------------------------------------------
// json!

/// serde_json-like literal syntax: `json!(null)`, `json!([a, b])`,
/// `json!({"k": v, (key_expr): {"x": [1, 2]}})`; leaves are `Value::from(expr)`.
macro_rules! json {
    (null) => { $crate::core::json::Value::Null };
    ([]) => { $crate::core::json::Value::Array(::std::vec::Vec::new()) };
    ([ $($tt:tt)+ ]) => {
        $crate::core::json::Value::Array($crate::core::json::json!(@arr [] $($tt)+))
    };
    ({}) => { $crate::core::json::Value::Object($crate::core::json::Map::new()) };
    ({ $($tt:tt)+ }) => {
        $crate::core::json::Value::Object({
            let mut map = $crate::core::json::Map::new();
            $crate::core::json::json!(@obj map $($tt)+);
            map
        })
    };

    // Elements are collected as expressions, then one `vec![...]`.
    (@arr [$($done:expr,)*]) => { ::std::vec![$($done,)*] };
    (@arr [$($done:expr,)*] null $(, $($rest:tt)*)?) => {
        $crate::core::json::json!(@arr [$($done,)* $crate::core::json::Value::Null,] $($($rest)*)?)
    };
    (@arr [$($done:expr,)*] [$($a:tt)*] $(, $($rest:tt)*)?) => {
        $crate::core::json::json!(@arr [$($done,)* $crate::core::json::json!([$($a)*]),] $($($rest)*)?)
    };
    (@arr [$($done:expr,)*] {$($a:tt)*} $(, $($rest:tt)*)?) => {
        $crate::core::json::json!(@arr [$($done,)* $crate::core::json::json!({$($a)*}),] $($($rest)*)?)
    };
    (@arr [$($done:expr,)*] $e:expr $(, $($rest:tt)*)?) => {
        $crate::core::json::json!(@arr [$($done,)* $crate::core::json::Value::from($e),] $($($rest)*)?)
    };

    (@obj $m:ident) => {};
    (@obj $m:ident $k:literal : $($rest:tt)+) => {
        $crate::core::json::json!(@val $m ($k) $($rest)+);
    };
    (@obj $m:ident ($k:expr) : $($rest:tt)+) => {
        $crate::core::json::json!(@val $m ($k) $($rest)+);
    };
    (@val $m:ident ($k:expr) null $(, $($rest:tt)*)?) => {
        $m.insert(::std::string::String::from($k), $crate::core::json::Value::Null);
        $crate::core::json::json!(@obj $m $($($rest)*)?);
    };
    (@val $m:ident ($k:expr) [$($a:tt)*] $(, $($rest:tt)*)?) => {
        $m.insert(::std::string::String::from($k), $crate::core::json::json!([$($a)*]));
        $crate::core::json::json!(@obj $m $($($rest)*)?);
    };
    (@val $m:ident ($k:expr) {$($a:tt)*} $(, $($rest:tt)*)?) => {
        $m.insert(::std::string::String::from($k), $crate::core::json::json!({$($a)*}));
        $crate::core::json::json!(@obj $m $($($rest)*)?);
    };
    (@val $m:ident ($k:expr) $e:expr $(, $($rest:tt)*)?) => {
        $m.insert(::std::string::String::from($k), $crate::core::json::Value::from($e));
        $crate::core::json::json!(@obj $m $($($rest)*)?);
    };

    ($e:expr) => { $crate::core::json::Value::from($e) };
}
pub(crate) use json;
