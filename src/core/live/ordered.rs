//! Live `ORDER BY … [LIMIT n] [OFFSET m]`: an ordered window over a materialized row set.
//!
//! The server refuses ORDER BY and LIMIT in live SQL (PROTOCOL.md §4.8), so they are
//! stripped from the subscribed SQL ([`super::sql::split_live_order`]) and applied here.
//! The subscription holds the FULL filtered set (the [`Materializer`](super::Materializer)
//! is unchanged, so resync and self-verification still compare the whole set); this window
//! follows it through its [`RowsDelta`]s and reports what the subscriber sees: the rows at
//! ranks `[offset, offset + limit)` in sort order. Rows that leave the window (deleted, or
//! pushed out) are `removed`, rows that enter it (new, or pulled in from outside it) are
//! `inserted`, rows in it whose content changed are `updated`; `order` carries the
//! window's keys in order whenever that sequence changed. Refill is local and exact: the
//! rows just outside the window are held, never fetched again.
//!
//! # Order
//! Columns compare by their schema type: integer, `BIGINT` and `DECIMAL` columns and the
//! temporal types (µs / days numbers) exactly as decimal numbers (never through f64:
//! `"9007199254740993"` > `"9007199254740992"`, `"10.5"` > `"9.75"`), `FLOAT`/`DOUBLE` by
//! IEEE total order, booleans `false < true`, text by Unicode code point (byte order of
//! UTF-8, like DataFusion's string comparison; not a locale collation). NULLs go per
//! `NULLS FIRST/LAST`, by default as in PostgreSQL and DataFusion: last for ASC, first for
//! DESC. Ties are broken by the row key, so the order is total and stable: a row that did
//! not change never moves.
//!
//! # Cost
//! A `BTreeMap<(SortKey, RowKey)>` plus a key → sort-key map: a change costs O(log n) to
//! place, and a batch O(offset + limit) to diff the window (a walk of its first ranks), not
//! a re-sort. Without LIMIT the window is the whole set and a batch that moves rows costs
//! O(n) (the new `order`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use crate::core::json::Value;

use super::materializer::{FastHash, KeyedRow, RowKey, RowsDelta};
use super::row::Row;
use crate::core::cells::decode_cell_ref;
use crate::core::schema::{DataType, SchemaField};

/// One `ORDER BY` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    /// The column name as the rows carry it.
    pub column: String,
    pub desc: bool,
    pub nulls_first: bool,
}

/// The `ORDER BY` / `LIMIT` / `OFFSET` of a live query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOrder {
    pub keys: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// A decimal number kept exactly, `0.digits × 10^point`: `digits` are the significant
/// digits (ASCII, no leading or trailing zeros; empty for zero), so numbers compare by sign,
/// then `point`, then the digit strings. `neg` is kept on zero only in [`Float`] (IEEE's
/// `-0 < 0`); [`Decimal::exact`] drops it (`-0 == 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    neg: bool,
    point: i64,
    digits: Box<[u8]>,
}

impl Decimal {
    /// The value `digits × 10^exp` (`digits` without leading zeros), sign of zero kept.
    fn new(neg: bool, mut digits: Vec<u8>, mut exp: i64) -> Decimal {
        while digits.last() == Some(&b'0') {
            digits.pop();
            exp = exp.saturating_add(1);
        }
        let point = if digits.is_empty() {
            0
        } else {
            exp.saturating_add(digits.len() as i64)
        };
        Decimal {
            neg,
            point,
            digits: digits.into(),
        }
    }

    /// As [`Decimal::new`], `-0 == 0`.
    fn exact(neg: bool, digits: Vec<u8>, exp: i64) -> Decimal {
        let mut d = Decimal::new(neg, digits, exp);
        d.neg &= !d.digits.is_empty();
        d
    }

    /// `(negative, digits, exp)` of decimal text in Rust's float grammar (`+1`, `.5`, `5.`,
    /// `1e-7`; with `exponent: false`, none allowed): the value `digits × 10^exp`.
    fn parse(s: &str, exponent: bool) -> Option<(bool, Vec<u8>, i64)> {
        let b = s.as_bytes();
        let (neg, mut i) = match b.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let (mut digits, mut exp, mut seen, mut dot) = (Vec::new(), 0i64, false, false);
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => {
                    seen = true;
                    if dot {
                        exp = exp.saturating_sub(1);
                    }
                    if !(digits.is_empty() && c == b'0') {
                        digits.push(c);
                    }
                }
                b'.' if !dot => dot = true,
                _ => break,
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if exponent && matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let e_neg = b.get(i) == Some(&b'-');
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let at = i;
            let mut e = 0i64;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                e = e.saturating_mul(10).saturating_add(i64::from(d - b'0'));
                i += 1;
            }
            if i == at {
                return None;
            }
            exp = exp.saturating_add(if e_neg { -e } else { e });
        }
        (i == b.len()).then_some((neg, digits, exp))
    }

    fn magnitude_cmp(&self, other: &Decimal) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self
                .point
                .cmp(&other.point)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A FLOAT/DOUBLE value in IEEE total order (`f64::total_cmp`) without parsing a float
/// (dec2flt is ~11 KB of the .wasm): finite values as their exact decimal, `-0 < 0`. The
/// server writes doubles as shortest round-trip text, one text per double, so the decimal
/// order is the double order; decimals that round to one double (more digits than the
/// server writes) are told apart, never swapped. NaN and infinities only come from strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Float {
    NegNan,
    NegInf,
    Finite(Decimal),
    Inf,
    Nan,
}

impl Float {
    /// Text as `f64::from_str` reads it (plus the exact value).
    fn parse(s: &str) -> Option<Float> {
        if let Some((neg, digits, exp)) = Decimal::parse(s, true) {
            return Some(Float::Finite(Decimal::new(neg, digits, exp)));
        }
        let (neg, word) = match s.strip_prefix('-') {
            Some(word) => (true, word),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        Some(match (neg, is("nan"), is("inf") || is("infinity")) {
            (false, true, _) => Float::Nan,
            (true, true, _) => Float::NegNan,
            (false, _, true) => Float::Inf,
            (true, _, true) => Float::NegInf,
            _ => return None,
        })
    }
}

/// A non-NULL sort value. Cells of one column normally share a variant; a malformed cell
/// still has a place (variants order as declared).
#[derive(Debug, Clone)]
enum Cell {
    Bool(bool),
    Exact(Decimal),
    Float(Float),
    Text(Box<str>),
}

impl Cell {
    fn rank(&self) -> u8 {
        match self {
            Cell::Bool(_) => 0,
            Cell::Exact(_) => 1,
            Cell::Float(_) => 2,
            Cell::Text(_) => 3,
        }
    }
}

impl Ord for Cell {
    fn cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Exact(a), Cell::Exact(b)) => a.cmp(b),
            (Cell::Float(a), Cell::Float(b)) => a.cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Cell) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Cell) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cell {}

/// One column of a sort key, carrying its direction (every key of one window has the same
/// flags, so comparing through them is a total order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    desc: bool,
    nulls_first: bool,
    cell: Option<Cell>,
}

impl Ord for Part {
    fn cmp(&self, other: &Part) -> Ordering {
        match (&self.cell, &other.cell) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) if self.nulls_first => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) if self.nulls_first => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) if self.desc => b.cmp(a),
            (Some(a), Some(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Part) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A row's place: its sort values, then its key (the tie-break).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    parts: Box<[Part]>,
    key: RowKey,
}

/// How a column's values become [`Cell`]s.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Exact,
    Float,
    Bool,
    Text,
}

fn kind_of(data_type: Option<&DataType>) -> Kind {
    match data_type {
        Some(
            DataType::SmallInt
            | DataType::Int
            | DataType::BigInt
            | DataType::Decimal { .. }
            | DataType::Timestamp
            | DataType::DateTime
            | DataType::Date
            | DataType::Time,
        ) => Kind::Exact,
        Some(DataType::Float | DataType::Double) => Kind::Float,
        Some(DataType::Boolean) => Kind::Bool,
        _ => Kind::Text,
    }
}

fn cell_of(kind: Kind, value: &Value) -> Option<Cell> {
    Some(match (kind, value) {
        (_, Value::Null) => return None,
        (_, Value::Bool(b)) => Cell::Bool(*b),
        (_, Value::Number(n)) => {
            let (neg, digits, exp) = n.decimal();
            let exact = !matches!(kind, Kind::Float)
                && (matches!(kind, Kind::Exact) || n.is_i64() || n.is_u64());
            if exact {
                Cell::Exact(Decimal::exact(neg, digits, exp))
            } else {
                Cell::Float(Float::Finite(Decimal::new(neg, digits, exp)))
            }
        }
        (Kind::Exact, Value::String(s)) => match Decimal::parse(s.trim(), false) {
            Some((neg, digits, exp)) => Cell::Exact(Decimal::exact(neg, digits, exp)),
            None => Cell::Text(s.as_str().into()),
        },
        (Kind::Float, Value::String(s)) => match Float::parse(s.trim()) {
            Some(f) => Cell::Float(f),
            None => Cell::Text(s.as_str().into()),
        },
        (_, Value::String(s)) => Cell::Text(s.as_str().into()),
        (_, other) => Cell::Text(other.to_string().into()),
    })
}

/// The ordered window of one live subscription (see the module docs).
#[derive(Debug)]
pub struct OrderedWindow {
    order: LiveOrder,
    /// Per order key: its column type, from the subscription's schema.
    types: Vec<Option<DataType>>,
    tree: BTreeMap<Place, Rc<Row>>,
    places: HashMap<RowKey, Place, FastHash>,
    /// The window as last reported, in order.
    shown: Vec<RowKey>,
    work: u64,
}

impl OrderedWindow {
    pub fn new(order: LiveOrder) -> OrderedWindow {
        OrderedWindow {
            types: vec![None; order.keys.len()],
            order,
            tree: BTreeMap::new(),
            places: HashMap::default(),
            shown: Vec::new(),
            work: 0,
        }
    }

    pub fn order(&self) -> &LiveOrder {
        &self.order
    }

    /// Column types from the `subscription_ack` schema (sets compare as text without it).
    /// Re-sorts the held rows only when a type changed (a schema change: rare).
    pub fn set_schema(&mut self, schema: &[SchemaField]) {
        let types: Vec<Option<DataType>> = self
            .order
            .keys
            .iter()
            .map(|k| {
                schema
                    .iter()
                    .find(|f| f.name == k.column)
                    .map(|f| f.data_type.clone())
            })
            .collect();
        if types != self.types {
            self.types = types;
            let rows: Vec<(RowKey, Rc<Row>)> = std::mem::take(&mut self.tree)
                .into_iter()
                .map(|(p, r)| (p.key, r))
                .collect();
            self.places.clear();
            for (key, row) in rows {
                self.place(key, row);
            }
        }
    }

    /// Rows held (the full set, not the window).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Tree operations and window entries visited; tests use it to show a change costs
    /// O(log n + offset + limit), not O(n).
    pub fn work_counter(&self) -> u64 {
        self.work
    }

    /// The window's rows, in order.
    pub fn window(&self) -> impl Iterator<Item = (&RowKey, &Rc<Row>)> {
        let take = self.order.limit.unwrap_or(usize::MAX);
        self.tree
            .iter()
            .skip(self.order.offset)
            .take(take)
            .map(|(p, r)| (&p.key, r))
    }

    fn place_of(&self, key: &RowKey, row: &Row) -> Place {
        let parts = self
            .order
            .keys
            .iter()
            .zip(&self.types)
            .map(|(k, ty)| {
                let raw = row.get(&k.column).unwrap_or(&Value::Null);
                let cell = match ty {
                    Some(t) => match decode_cell_ref(t, raw, None) {
                        Ok(v) => cell_of(kind_of(Some(t)), &v),
                        Err(_) => cell_of(kind_of(Some(t)), raw),
                    },
                    None => cell_of(Kind::Text, raw),
                };
                Part {
                    desc: k.desc,
                    nulls_first: k.nulls_first,
                    cell,
                }
            })
            .collect();
        Place {
            parts,
            key: key.clone(),
        }
    }

    fn place(&mut self, key: RowKey, row: Rc<Row>) {
        let place = self.place_of(&key, &row);
        self.work += 1 + self.tree.len().max(1).ilog2() as u64;
        match self.places.get(&key) {
            Some(old) if *old == place => {
                if let Some(held) = self.tree.get_mut(old) {
                    *held = row; // same place: content only
                }
                return;
            }
            Some(old) => {
                self.tree.remove(old);
            }
            None => {}
        }
        self.tree.insert(place.clone(), row);
        self.places.insert(key, place);
    }

    fn unplace(&mut self, key: &RowKey) {
        if let Some(old) = self.places.remove(key) {
            self.work += 1 + self.tree.len().max(1).ilog2() as u64;
            self.tree.remove(&old);
        }
    }

    /// Applies a delta of the full set and returns the window's delta: `removed` (left the
    /// window), `updated` (in it before and after, content changed), `inserted` (entered
    /// it, in window order) and `order` (the window's keys, when their sequence changed).
    /// The flags (`initial`, `reset`, …) are kept; `reset` clears the window first.
    pub fn apply(&mut self, delta: RowsDelta) -> RowsDelta {
        let RowsDelta {
            initial,
            resync,
            loading,
            reset,
            removed,
            updated,
            inserted,
            order: _,
        } = delta;
        if reset {
            self.tree.clear();
            self.places.clear();
            self.shown.clear();
        }
        for key in &removed {
            self.unplace(key);
        }
        let mut placed: Vec<RowKey> = Vec::with_capacity(updated.len() + inserted.len());
        for KeyedRow { key, row } in updated.into_iter().chain(inserted) {
            placed.push(key.clone());
            self.place(key, row);
        }
        // A set of references, the type of `before`/`after`: one hash-set copy in the .wasm
        // (issue 15).
        let changed: HashSet<&RowKey, FastHash> = placed.iter().collect();
        let before: HashSet<&RowKey, FastHash> = self.shown.iter().collect();
        let mut out = RowsDelta {
            initial,
            resync,
            loading,
            reset,
            ..RowsDelta::default()
        };
        let mut now: Vec<RowKey> = Vec::with_capacity(self.shown.len());
        let mut work = 0u64;
        for (key, row) in self.window() {
            work += 1;
            now.push(key.clone());
            let entry = KeyedRow {
                key: key.clone(),
                row: row.clone(),
            };
            if !before.contains(key) {
                out.inserted.push(entry);
            } else if changed.contains(key) {
                out.updated.push(entry);
            }
        }
        let after: HashSet<&RowKey, FastHash> = now.iter().collect();
        for key in &self.shown {
            work += 1;
            if !after.contains(key) {
                out.removed.push(key.clone());
            }
        }
        drop(after);
        drop(before);
        self.work += work + self.order.offset as u64;
        if now != self.shown || reset {
            out.order = Some(now.clone());
        }
        self.shown = now;
        out
    }
}

#[cfg(test)]
#[path = "ordered_tests.rs"]
mod tests;
