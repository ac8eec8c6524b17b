//! The live-rows materializer: turns a subscription's snapshot batches and change events
//! into the current row set, keyed and ordered, and reports what changed per batch.
//!
//! # Keys
//! Rows are keyed by the key columns, chosen in this order: the caller's `key_columns`;
//! else the primary-key columns of the `subscription_ack` schema (`pk` flag); else `id`.
//! A [`RowKey`] is the JSON text of the key value (`"\"17\""` for the string `"17"`, `17`
//! for the number), or a JSON array of the values for composite keys: opaque, exact
//! (`"7"` ≠ `7`), and usable as a JS `Map` key. An insert or update whose row lacks a key
//! column cannot be placed and is reported as an `INVALID_ARGUMENT` error (project the
//! primary key or pass `key_columns`). An update that changes a key column moves the row
//! to its new key (the old key is removed, never left as a ghost row). STREAM-table hard
//! deletes carry only `row_id` (`"<user_id>:<seq>"`, PROTOCOL.md §6.2.5) and are matched
//! on the row's `_seq` (an index by `_seq` is built on the first such delete); with a
//! projection they carry nothing (`{}`) and cannot be matched.
//!
//! # Order and `limit`
//! Rows are kept in **insertion order of their keys**: snapshot rows in the order the
//! server sent them (ascending `_seq`), then live inserts appended at the end. Updates
//! change a row **in place** (it keeps its position). A deleted key that comes back is
//! appended at the end like a new key. An update for a key that is not held (a row that
//! moved into the filter, or one evicted by `limit`) is treated as an insert of the merged
//! row at the end.
//!
//! With `limit = N` the order is that of each row's latest `_seq` (oldest first), in every
//! path: the snapshot (ascending `_seq`), live changes (a new version, insert or update,
//! moves its row to the end: reported in `removed` and `inserted`) and a resync
//! (changed rows move to the end in snapshot order). Whenever more than N rows are held
//! the front rows are evicted, so the N most recently written rows are kept, the same set
//! a fresh snapshot would hold. A delete leaves N-1 until the next write or resync.
//!
//! # Changes
//! - insert / snapshot row: upsert (replace in place if the key is held, else append);
//! - update: merge `rows[0]` into the held row, then set to NULL every column present in
//!   `old_values[0]` but absent from `rows[0]` (PROTOCOL.md §4.7: NULL-valued columns are
//!   omitted from update rows);
//! - delete: remove the key (tombstone in `old_values`).
//!
//! Version guard: every row version has a `_seq`. An insert/update/snapshot row whose
//! `_seq` is not newer than the held row's is a replay and is ignored; a tombstone older
//! than the held row is ignored. Replays are therefore upserted, never duplicated.
//!
//! # Cost
//! A hash index over a slab-backed doubly linked list: lookup, upsert, merge, delete and
//! eviction are O(1) (amortized) per change, independent of the number of rows held. No
//! per-change scans or clones of the row set; the per-batch [`RowsDelta`] costs O(k) for
//! k touched keys (appended rows are found by a scan back from the tail, not hashed).
//!
//! # Deltas
//! [`Materializer::take_delta`] returns what changed since the previous call, coalesced
//! per key. Apply it to a mirror as: remove `removed` keys, replace `updated` rows in
//! place, then append `inserted` rows in the given order; the mirror then equals
//! [`Materializer::iter`], order included.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::core::json::{quote, ToJson, Value};
use crate::core::text;

use super::frames::{ChangeEvent, ChangeType, Row};
use crate::core::error::KalamError;
use crate::core::seq_id::SeqId;

/// The identity of a materialized row (see the module docs for the encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey(Rc<str>);

impl RowKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0.to_string()
    }

    /// The key of `row` for `key_columns`, or `None` when a key column is missing or null.
    pub fn of(row: &Row, key_columns: &[String]) -> Option<RowKey> {
        match key_columns {
            [single] => match row.get(single) {
                None | Some(Value::Null) => None,
                Some(v) => Some(RowKey(json_text(v).into())),
            },
            many => {
                let mut text = String::from("[");
                for (i, col) in many.iter().enumerate() {
                    match row.get(col) {
                        None | Some(Value::Null) => return None,
                        Some(v) => {
                            if i > 0 {
                                text.push(',');
                            }
                            text.push_str(&json_text(v));
                        }
                    }
                }
                text.push(']');
                Some(RowKey(text.into()))
            }
        }
    }
}

/// Compact JSON text of a value (a plain string without a copy through the escaper; this
/// runs once per row).
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') => {
            let mut text = String::with_capacity(s.len() + 2);
            text.push('"');
            text.push_str(s);
            text.push('"');
            text
        }
        other => other.to_json(),
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A row with its key. The row is shared with the materializer (a delta costs no copy of
/// its rows; the next change to a row still held by a delta copies it first).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedRow {
    pub key: RowKey,
    pub row: Rc<Row>,
}

/// What changed in one emitted batch. Apply in this order: `removed`, `updated` (in place),
/// `inserted` (append, in order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowsDelta {
    /// True on the first delta of a subscription (the complete initial snapshot, possibly
    /// empty). Set by the subscription layer.
    pub initial: bool,
    /// True on the delta that swaps in a resynchronised snapshot after a reconnect.
    pub resync: bool,
    /// Part of a first snapshot that is still loading (`initial` is set too): apply it to
    /// the mirror, but tell the app nothing until the delta without `loading`.
    pub loading: bool,
    /// The first delta of a snapshot load: clear the mirror before applying it (an
    /// interrupted load is reloaded from scratch).
    pub reset: bool,
    pub removed: Vec<RowKey>,
    /// Full merged rows whose content changed, position unchanged.
    pub updated: Vec<KeyedRow>,
    /// New rows, to be appended in this order.
    pub inserted: Vec<KeyedRow>,
    /// Live `ORDER BY` only ([`super::ordered`]): the window's keys in order after this
    /// delta, when that sequence changed; reorder the mirror to it after applying.
    pub order: Option<Vec<RowKey>>,
}

impl RowsDelta {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.updated.is_empty() && self.inserted.is_empty()
    }
}

/// See [`Materializer::seq_figures`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqFigures {
    pub count: u64,
    pub sum: i64,
    pub max: Option<SeqId>,
    pub min: Option<SeqId>,
}

/// The `_seq` of a row (string or integer), if present and valid.
pub fn row_seq(row: &Row) -> Option<SeqId> {
    row.get("_seq").and_then(|v| SeqId::from_json(v).ok())
}

const NIL: usize = usize::MAX;

/// FxHash (the rustc hasher) with a final mix (see `finish`): several times faster than
/// SipHash for short keys, which matters at one or two lookups per row. Keys come from the
/// user's own server, so the HashDoS resistance of SipHash buys nothing here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply only carries entropy upwards: the low bits of the state depend on the
        // low bytes of the last word alone, which for keys such as `"123"` are nearly constant
        // (`"` and the first digit), and hashbrown picks buckets by the low bits (on wasm32,
        // from the low 32 bits only). Fold the high bits down (murmur3's fmix64 step).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FastHash = BuildHasherDefault<FxHasher>;

struct Node {
    key: RowKey,
    row: Rc<Row>,
    seq: Option<SeqId>,
    /// Monotonic insertion stamp: list order == stamp order.
    stamp: u64,
    prev: usize,
    next: usize,
}

/// Per-key state at the start of the current delta window.
struct Touch {
    /// The key's stamp when first touched in this window (keys appended in the window are
    /// never recorded, so this is set for every recorded key).
    before: Option<u64>,
    modified: bool,
}

/// A keyed, ordered live row set (details in the module documentation).
///
/// - **Key**: `key_columns` (caller's, else schema pk, else `id`); see [`RowKey`].
/// - **Order**: insertion order of keys; snapshot rows in server order (ascending `_seq`),
///   live inserts appended; updates in place; a re-inserted key goes to the end.
/// - **Limit**: with `limit = N`, the oldest (front) rows are evicted beyond N.
/// - **Updates** merge into the held row; a column in `old_values` but absent from `rows`
///   becomes NULL. **Deletes** (tombstones) remove. Versions not newer than the held `_seq`
///   are ignored (replays never duplicate).
/// - **Cost**: O(1) amortized per change regardless of the number of rows.
/// - **Deltas**: [`Materializer::take_delta`] — apply `removed`, then `updated` in place,
///   then append `inserted`, and a mirror equals [`Materializer::iter`].
pub struct Materializer {
    key_columns: Vec<String>,
    /// Projected columns from the schema, used to fill NULLs when an update creates a row.
    columns: Vec<String>,
    limit: Option<usize>,
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    len: usize,
    index: HashMap<RowKey, usize, FastHash>,
    next_stamp: u64,
    /// `next_stamp` when the current delta window opened: nodes stamped since are new in
    /// it (reported by a scan back from the tail, never entered in `touched`).
    window_start: u64,
    /// Keys held before the window that were removed or modified in it.
    touched: HashMap<RowKey, Touch, FastHash>,
    touched_order: Vec<RowKey>,
    tracking: bool,
    work: u64,
    /// `_seq` -> slot, built on the first STREAM-table delete (`row_id`) and kept up to
    /// date from then on; `None` costs nothing for tables that never need it.
    by_seq: Option<HashMap<SeqId, usize, FastHash>>,
    /// `lastRows`: a resync admits a row at or below this `_seq` only if its key is held.
    resync_floor: Option<SeqId>,
}

impl fmt::Debug for Materializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Materializer")
            .field("key_columns", &self.key_columns)
            .field("limit", &self.limit)
            .field("len", &self.len)
            .finish()
    }
}

impl Materializer {
    /// `key_columns` empty means `["id"]`. `limit` of `Some(0)` keeps nothing.
    pub fn new(key_columns: Vec<String>, limit: Option<usize>) -> Materializer {
        let key_columns = if key_columns.is_empty() {
            vec!["id".to_string()]
        } else {
            key_columns
        };
        Materializer {
            key_columns,
            columns: Vec::new(),
            limit,
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            index: HashMap::default(),
            next_stamp: 0,
            window_start: 0,
            touched: HashMap::default(),
            touched_order: Vec::new(),
            tracking: true,
            work: 0,
            by_seq: None,
            resync_floor: None,
        }
    }

    pub fn key_columns(&self) -> &[String] {
        &self.key_columns
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The schema's column names (used to fill NULLs in rows created by an update).
    pub fn set_columns(&mut self, columns: Vec<String>) {
        self.columns = columns;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, key: &RowKey) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, key: &RowKey) -> Option<&Row> {
        self.index
            .get(key)
            .and_then(|&i| self.nodes[i].as_ref())
            .map(|n| &*n.row)
    }

    /// The current rows in order (see the module docs).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            nodes: &self.nodes,
            cursor: self.head,
            remaining: self.len,
        }
    }

    /// The current rows in order, cloned.
    pub fn rows(&self) -> Vec<Row> {
        self.iter().map(|(_, row)| row.clone()).collect()
    }

    /// Internal operation counter (node visits and delta entries); tests use it to show
    /// that per-change work does not depend on the number of rows held.
    pub fn work_counter(&self) -> u64 {
        self.work
    }

    /// Self-verification figures over the held rows with `_seq >= floor` (PROTOCOL.md
    /// §12.2): count, `SUM(_seq % modulus)`, `MAX(_seq)` and `MIN(_seq)`. `None` when a row
    /// has no `_seq` (nothing to compare with). O(rows), run only when a check is answered.
    pub fn seq_figures(&self, modulus: i64, floor: Option<SeqId>) -> Option<SeqFigures> {
        let mut f = SeqFigures::default();
        for node in self.nodes.iter().flatten() {
            let seq = node.seq?;
            if floor.is_some_and(|fl| seq < fl) {
                continue;
            }
            f.count += 1;
            f.sum += seq.as_i64().rem_euclid(modulus);
            f.max = f.max.max(Some(seq));
            f.min = Some(f.min.map_or(seq, |m| m.min(seq)));
        }
        Some(f)
    }

    /// The key of `row`, or an `INVALID_ARGUMENT` error naming the missing key columns.
    pub fn key_of(&self, row: &Row) -> Result<RowKey, KalamError> {
        RowKey::of(row, &self.key_columns).ok_or_else(|| {
            KalamError::invalid_argument(format!(
                "a live row lacks the key column(s) {}; project the primary key or pass keyColumns",
                self.key_columns
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Applies snapshot rows (upsert each). Rows without a key are skipped; the first such
    /// problem is returned after all other rows were applied.
    pub fn apply_snapshot_rows(&mut self, rows: Vec<Row>) -> Result<(), KalamError> {
        self.index.reserve(rows.len());
        let mut first_err = None;
        for row in rows {
            if let Err(e) = self.upsert(row) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Applies a change event (see the module docs). Rows that cannot be keyed are skipped
    /// and reported after the rest was applied.
    pub fn apply_change(&mut self, change: ChangeEvent) -> Result<(), KalamError> {
        let mut first_err = None;
        match change.change_type {
            ChangeType::Insert => {
                for row in change.rows {
                    if let Err(e) = self.upsert(row) {
                        first_err.get_or_insert(e);
                    }
                }
            }
            ChangeType::Update => {
                let mut olds = change.old_values.into_iter();
                for row in change.rows {
                    let old = olds.next().unwrap_or_default();
                    if let Err(e) = self.update(row, &old) {
                        first_err.get_or_insert(e);
                    }
                }
            }
            ChangeType::Delete => {
                for tombstone in &change.old_values {
                    self.delete(tombstone);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Insert-or-replace a full row (snapshot row or insert event).
    pub fn upsert(&mut self, row: Row) -> Result<(), KalamError> {
        self.work += 1;
        let key = self.key_of(&row)?;
        let seq = row_seq(&row);
        // One hash per row: a new key takes its slot in the index through the vacant entry.
        let slot = self.next_slot();
        match self.index.entry(key) {
            Entry::Occupied(held) => {
                let i = *held.get();
                let key = held.key().clone();
                let node = self.nodes[i].as_mut().expect("indexed node exists");
                if is_replay(node.seq, seq) {
                    return Ok(());
                }
                let old_seq = std::mem::replace(&mut node.seq, seq);
                node.row = Rc::new(row);
                let stamp = node.stamp;
                self.seq_changed(old_seq, seq, i);
                self.touch_modified(&key, Some(stamp));
                self.move_to_tail_if_limited(i);
            }
            Entry::Vacant(vacant) => {
                if self.limit == Some(0) {
                    return Ok(());
                }
                let key = vacant.key().clone();
                vacant.insert(slot);
                self.link(key, Rc::new(row), seq);
            }
        }
        Ok(())
    }

    /// Merges an update delta (`new` = `rows[i]`, `old` = `old_values[i]`).
    pub fn update(&mut self, new: Row, old: &Row) -> Result<(), KalamError> {
        self.work += 1;
        let key = match RowKey::of(&new, &self.key_columns) {
            Some(key) => key,
            None => self.key_of(old)?,
        };
        let seq = row_seq(&new);
        // A key column changed: `old_values` carries its old value. The row moves to the new
        // key; left under the old one it would linger as a ghost row.
        if let Some(old_key) = self.old_key(&new, old).filter(|k| *k != key) {
            if let Some(&i) = self.index.get(&old_key) {
                let held_seq = self.nodes[i].as_ref().expect("indexed node exists").seq;
                if is_replay(held_seq, seq) {
                    return Ok(());
                }
                let mut row = self
                    .remove(&old_key)
                    .map(Rc::unwrap_or_clone)
                    .unwrap_or_default();
                merge_update(&mut row, new, old);
                self.remove(&key); // a row already under the new key is replaced
                self.append(key, Rc::new(row), seq.or(held_seq));
                return Ok(());
            }
        }
        if let Some(&i) = self.index.get(&key) {
            let node = self.nodes[i].as_mut().expect("indexed node exists");
            if is_replay(node.seq, seq) {
                return Ok(());
            }
            merge_update(Rc::make_mut(&mut node.row), new, old);
            let old_seq = node.seq;
            if seq.is_some() {
                node.seq = seq;
            }
            let (stamp, new_seq) = (node.stamp, node.seq);
            self.seq_changed(old_seq, new_seq, i);
            self.touch_modified(&key, Some(stamp));
            self.move_to_tail_if_limited(i);
        } else {
            // Not held (moved into the filter, or evicted by `limit`): insert the merged
            // row, NULL for columns we know of but were not sent.
            let mut row = new;
            let known = old.keys().map(|c| &**c);
            for col in known.chain(self.columns.iter().map(String::as_str)) {
                if !row.contains_key(col) {
                    let fill = if col == "_deleted" {
                        Value::Bool(false)
                    } else {
                        Value::Null
                    };
                    row.insert(col, fill);
                }
            }
            self.append(key, Rc::new(row), seq);
        }
        Ok(())
    }

    /// Removes the row a tombstone names. Returns whether a row was removed.
    pub fn delete(&mut self, tombstone: &Row) -> bool {
        self.work += 1;
        let Some(key) = RowKey::of(tombstone, &self.key_columns)
            .or_else(|| self.key_of_stream_row_id(tombstone))
        else {
            return false;
        };
        let Some(&i) = self.index.get(&key) else {
            return false;
        };
        let held = self.nodes[i].as_ref().and_then(|n| n.seq);
        if let (Some(held), Some(dead)) = (held, row_seq(tombstone)) {
            if dead < held {
                return false; // a stale tombstone of an older version
            }
        }
        self.remove(&key);
        true
    }

    /// Removes `key` if held. Returns the removed row.
    pub fn remove(&mut self, key: &RowKey) -> Option<Rc<Row>> {
        let i = self.index.remove(key)?;
        let node = self.nodes[i].take().expect("indexed node exists");
        self.seq_changed(node.seq, None, i);
        self.unlink(node.prev, node.next);
        self.free.push(i);
        self.len -= 1;
        self.touch(&node.key, Some(node.stamp));
        Some(node.row)
    }

    /// Drops every row and any pending delta, as if new.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.free.clear();
        self.index.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
        self.touched.clear();
        self.touched_order.clear();
        self.window_start = self.next_stamp;
        self.by_seq = None;
    }

    /// For `lastRows` subscriptions, once the first snapshot is in: `lastRows` shapes only
    /// that snapshot, so a later resync (whose snapshot is every matching row) must neither
    /// drop held rows nor bring in the older rows the first snapshot left out. From now on
    /// [`Materializer::resync_from`] admits a new key only if its `_seq` is newer than every
    /// row held now (written after the subscription started, as a live change would have
    /// brought it). O(n) once.
    pub fn set_resync_floor(&mut self) {
        self.resync_floor = self.iter_nodes().filter_map(|n| n.seq).max();
    }

    fn iter_nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        let mut cursor = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(cursor)?.as_ref()?;
            cursor = node.next;
            Some(node)
        })
    }

    /// Replaces the content with the authoritative snapshot in `staging`, as ONE tracked
    /// change: keys not in `staging` are removed (rows deleted while disconnected), held
    /// keys whose `_seq` differs are replaced in place by the staging row, new keys are
    /// appended in staging order. Unchanged rows (same `_seq`) are not reported. O(n + m).
    pub fn resync_from(&mut self, staging: Materializer) {
        let mut gone = Vec::new();
        let mut cursor = self.head;
        while cursor != NIL {
            self.work += 1;
            let node = self.nodes[cursor].as_ref().expect("linked node exists");
            if !staging.index.contains_key(&node.key) {
                gone.push(node.key.clone());
            }
            cursor = node.next;
        }
        for key in &gone {
            self.remove(key);
        }
        let Materializer {
            mut nodes, head, ..
        } = staging;
        let mut cursor = head;
        while cursor != NIL {
            self.work += 1;
            let node = nodes[cursor].take().expect("linked node exists");
            cursor = node.next;
            match self.index.get(&node.key) {
                Some(&i) => {
                    let held = self.nodes[i].as_mut().expect("indexed node exists");
                    if held.seq != node.seq || (node.seq.is_none() && held.row != node.row) {
                        held.row = node.row;
                        let old_seq = std::mem::replace(&mut held.seq, node.seq);
                        let stamp = held.stamp;
                        self.seq_changed(old_seq, node.seq, i);
                        self.touch_modified(&node.key, Some(stamp));
                        self.move_to_tail_if_limited(i);
                    }
                }
                // Older than what the first (`lastRows`) snapshot held: it was left out.
                None if self
                    .resync_floor
                    .is_some_and(|f| node.seq.is_some_and(|s| s <= f)) => {}
                None => self.append(node.key, node.row, node.seq),
            }
        }
    }

    /// Turns change tracking on or off (on by default). While off, nothing is recorded for
    /// [`Materializer::take_delta`]: used while a resync snapshot is staged (it is merged in
    /// by [`Materializer::resync_from`]). Switching clears any pending delta.
    pub fn set_tracking(&mut self, on: bool) {
        self.tracking = on;
        self.touched.clear();
        self.touched_order.clear();
        self.window_start = self.next_stamp;
    }

    /// Whether anything changed since the last [`Materializer::take_delta`].
    pub fn has_pending_delta(&self) -> bool {
        !self.touched_order.is_empty() || self.has_new_nodes()
    }

    /// Whether a node stamped in the current window is held (the list is in stamp order,
    /// so it is enough to look at the tail).
    fn has_new_nodes(&self) -> bool {
        self.tracking
            && self.tail != NIL
            && self.nodes[self.tail]
                .as_ref()
                .is_some_and(|n| n.stamp >= self.window_start)
    }

    /// What changed since the previous call, coalesced per key (see the module docs).
    /// Keys held before the window come from `touched`; rows appended in the window from a
    /// scan back from the tail (O(new rows), no hashing per appended row).
    pub fn take_delta(&mut self) -> RowsDelta {
        let mut delta = RowsDelta::default();
        if !self.tracking {
            self.window_start = self.next_stamp;
            return delta;
        }
        let touched = std::mem::take(&mut self.touched);
        for key in std::mem::take(&mut self.touched_order) {
            self.work += 1;
            let Some(touch) = touched.get(&key) else {
                continue;
            };
            let now = self
                .index
                .get(&key)
                .and_then(|&i| self.nodes[i].as_ref())
                .map(|n| (n.stamp, &n.row));
            match (touch.before, now) {
                (Some(before), Some((stamp, row))) if before == stamp => {
                    if touch.modified {
                        delta.updated.push(KeyedRow {
                            key,
                            row: row.clone(),
                        });
                    }
                }
                // Gone, or removed and appended again (the scan below reports the append).
                (Some(_), _) => delta.removed.push(key),
                (None, _) => {}
            }
        }
        let mut cursor = self.tail;
        while cursor != NIL {
            let node = self.nodes[cursor].as_ref().expect("linked node exists");
            if node.stamp < self.window_start {
                break;
            }
            self.work += 1;
            delta.inserted.push(KeyedRow {
                key: node.key.clone(),
                row: node.row.clone(),
            });
            cursor = node.prev;
        }
        delta.inserted.reverse();
        self.window_start = self.next_stamp;
        delta
    }

    fn append(&mut self, key: RowKey, row: Rc<Row>, seq: Option<SeqId>) {
        if self.limit == Some(0) {
            return;
        }
        self.index.insert(key.clone(), self.next_slot());
        self.link(key, row, seq);
    }

    /// The slot [`Materializer::link`] fills next: the last free one, else a new one.
    fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.nodes.len())
    }

    /// Links a new node at the tail, in [`Materializer::next_slot`] (where the index already
    /// points `key`), then evicts beyond `limit`.
    fn link(&mut self, key: RowKey, row: Rc<Row>, seq: Option<SeqId>) {
        let slot = self.next_slot();
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.seq_changed(None, seq, slot);
        let node = Node {
            key,
            row,
            seq,
            stamp,
            prev: self.tail,
            next: NIL,
        };
        match self.free.pop() {
            Some(i) => self.nodes[i] = Some(node),
            None => self.nodes.push(Some(node)),
        }
        if self.tail != NIL {
            self.nodes[self.tail].as_mut().expect("tail exists").next = slot;
        } else {
            self.head = slot;
        }
        self.tail = slot;
        self.len += 1;
        if let Some(limit) = self.limit {
            while self.len > limit {
                self.work += 1;
                let oldest = self.nodes[self.head]
                    .as_ref()
                    .expect("head exists")
                    .key
                    .clone();
                self.remove(&oldest);
            }
        }
    }

    fn unlink(&mut self, prev: usize, next: usize) {
        if prev != NIL {
            self.nodes[prev].as_mut().expect("prev exists").next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next].as_mut().expect("next exists").prev = prev;
        } else {
            self.tail = prev;
        }
    }

    /// Records the first-seen state of `key` in the current delta window.
    /// Records a change to `key`, whose node had stamp `before`. Nodes new in the window
    /// need no record: the tail scan of `take_delta` reports them as they are.
    fn touch(&mut self, key: &RowKey, before: Option<u64>) {
        if before.is_none_or(|b| b >= self.window_start) {
            return;
        }
        if self.tracking && !self.touched.contains_key(key) {
            self.touched.insert(
                key.clone(),
                Touch {
                    before,
                    modified: false,
                },
            );
            self.touched_order.push(key.clone());
        }
    }

    fn touch_modified(&mut self, key: &RowKey, before: Option<u64>) {
        self.touch(key, before);
        if let Some(t) = self.touched.get_mut(key) {
            t.modified = true;
        }
    }

    /// With a `limit`, a new version moves its row to the end (order = latest `_seq`, the
    /// order a snapshot has, so eviction keeps the rows a fresh snapshot would keep).
    fn move_to_tail_if_limited(&mut self, i: usize) {
        if self.limit.is_none() || self.tail == i {
            return;
        }
        let node = self.nodes[i].as_ref().expect("indexed node exists");
        let (prev, next) = (node.prev, node.next);
        self.unlink(prev, next);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let tail = self.tail;
        let node = self.nodes[i].as_mut().expect("indexed node exists");
        node.prev = tail;
        node.next = NIL;
        node.stamp = stamp;
        if tail != NIL {
            self.nodes[tail].as_mut().expect("tail exists").next = i;
        } else {
            self.head = i;
        }
        self.tail = i;
        // `touch_modified` recorded the old stamp: `take_delta` reports the move like a
        // delete and re-insert (`removed`, then `inserted` at the end).
    }

    /// The key the row had before an update: each key column's old value where
    /// `old_values` has it (it lists changed columns and the primary key), else the new.
    fn old_key(&self, new: &Row, old: &Row) -> Option<RowKey> {
        if !self.key_columns.iter().any(|c| old.contains_key(c)) {
            return None;
        }
        let mut merged = Row::default();
        for col in &self.key_columns {
            let v = old.get(col).or_else(|| new.get(col))?;
            merged.insert(col.clone(), v.clone());
        }
        RowKey::of(&merged, &self.key_columns)
    }

    /// The key of the row a STREAM-table tombstone `{"row_id": "<user_id>:<seq>"}` names.
    fn key_of_stream_row_id(&mut self, tombstone: &Row) -> Option<RowKey> {
        let row_id = tombstone.get("row_id")?.as_str()?;
        let seq: SeqId = text::rsplit_once(row_id, b':')?.1.parse().ok()?;
        if self.by_seq.is_none() {
            let mut index = HashMap::with_capacity_and_hasher(self.len, FastHash::default());
            let mut cursor = self.head;
            while cursor != NIL {
                self.work += 1;
                let node = self.nodes[cursor].as_ref().expect("linked node exists");
                if let Some(s) = node.seq {
                    index.insert(s, cursor);
                }
                cursor = node.next;
            }
            self.by_seq = Some(index);
        }
        let slot = *self.by_seq.as_ref()?.get(&seq)?;
        self.nodes.get(slot)?.as_ref().map(|n| n.key.clone())
    }

    /// Keeps the `_seq` index (when built) in step with a node's version.
    fn seq_changed(&mut self, old: Option<SeqId>, new: Option<SeqId>, slot: usize) {
        let Some(index) = self.by_seq.as_mut() else {
            return;
        };
        if old == new {
            return;
        }
        if let Some(old) = old {
            if index.get(&old) == Some(&slot) {
                index.remove(&old);
            }
        }
        if let Some(new) = new {
            index.insert(new, slot);
        }
    }
}

/// Merges an update delta into the held row: `new` columns win; a column in `old` but
/// absent from `new` became NULL (PROTOCOL.md §4.7 omits NULL-valued columns).
fn merge_update(held: &mut Row, new: Row, old: &Row) {
    for col in old.keys() {
        if !new.contains_key(col) {
            held.insert(col.clone(), Value::Null);
        }
    }
    for (col, value) in new {
        held.insert(col, value);
    }
}

/// True when an incoming version is not newer than the held one (both known).
fn is_replay(held: Option<SeqId>, incoming: Option<SeqId>) -> bool {
    matches!((held, incoming), (Some(h), Some(n)) if n <= h)
}

/// Iterator over `(key, row)` in materialized order.
pub struct Iter<'a> {
    nodes: &'a [Option<Node>],
    cursor: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a RowKey, &'a Row);
    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor == NIL {
            return None;
        }
        let node = self.nodes[self.cursor].as_ref()?;
        self.cursor = node.next;
        self.remaining = self.remaining.saturating_sub(1);
        Some((&node.key, &*node.row))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    #[test]
    fn fx_hash_spreads_numeric_keys_over_buckets_on_32_bit_targets() {
        use std::hash::BuildHasher;
        let build = FastHash::default();
        let n = 20_000;
        let mut buckets = std::collections::HashSet::new();
        let mut tags = std::collections::HashSet::new();
        for i in 0..n {
            let hash = build.hash_one(RowKey(format!("\"{i}\"").into())) as u32;
            buckets.insert(hash & 0x7fff); // hashbrown's bucket: the low bits
            tags.insert(hash >> 25); // its 7-bit tag: the top of the (32-bit) usize
        }
        // Uniform hashing fills about 14 300 of 32 768 buckets with 20 000 keys.
        assert!(buckets.len() > 13_000, "{} buckets used", buckets.len());
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn fx_hashed_index_finds_every_key() {
        use std::hash::BuildHasher;
        let build = FastHash::default();
        let h = |s: &str| build.hash_one(s);
        assert_ne!(h("\"1\""), h("\"2\""));
        assert_ne!(h("12345678"), h("123456789"));
        assert_eq!(h("[\"a\",7]"), h("[\"a\",7]"));
        let mut m = Materializer::new(vec!["id".into()], None);
        let rows: Vec<Row> = (0..10_000)
            .map(|i| row(json!({"id": i.to_string(), "_seq": (i + 1).to_string()})))
            .collect();
        m.apply_snapshot_rows(rows).unwrap();
        assert_eq!(m.len(), 10_000);
        for i in (0..10_000).step_by(997) {
            let key = RowKey::of(&row(json!({"id": i.to_string()})), &["id".to_string()]).unwrap();
            assert!(m.contains(&key));
        }
    }

    use super::*;
    use crate::core::json::json;

    fn row(v: Value) -> Row {
        match v {
            Value::Object(map) => map.into(),
            other => panic!("not an object: {other}"),
        }
    }

    fn ids(m: &Materializer) -> Vec<String> {
        m.iter()
            .map(|(_, r)| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn key(id: &str) -> RowKey {
        RowKey(Value::String(id.into()).to_string().into())
    }

    fn change(kind: ChangeType, rows: Vec<Value>, old: Vec<Value>) -> ChangeEvent {
        ChangeEvent {
            subscription_id: "s".into(),
            change_type: kind,
            rows: rows.into_iter().map(row).collect(),
            old_values: old.into_iter().map(row).collect(),
        }
    }

    #[test]
    fn keys_are_exact_json_text() {
        let k = ["id".to_string()];
        assert_eq!(
            RowKey::of(&row(json!({"id":"7"})), &k).unwrap().as_str(),
            "\"7\""
        );
        assert_eq!(RowKey::of(&row(json!({"id":7})), &k).unwrap().as_str(), "7");
        assert!(RowKey::of(&row(json!({"id":null})), &k).is_none());
        assert!(RowKey::of(&row(json!({"x":1})), &k).is_none());
        let two = ["a".to_string(), "b".to_string()];
        assert_eq!(
            RowKey::of(&row(json!({"a":"x","b":2})), &two)
                .unwrap()
                .as_str(),
            "[\"x\",2]"
        );
        for id in [
            json!("a\"b"),
            json!("t\tab\\"),
            json!("é ✓"),
            json!(1.5),
            json!([1]),
        ] {
            let key = RowKey::of(&row(json!({ "id": id.clone() })), &k).unwrap();
            assert_eq!(key.as_str(), id.to_string());
        }
    }

    #[test]
    fn upserts_merges_updates_and_applies_tombstones() {
        let mut m = Materializer::new(vec![], None);
        m.apply_snapshot_rows(vec![
            row(json!({"id":"1","body":"a","n":1,"_seq":"10"})),
            row(json!({"id":"2","body":"b","n":2,"_seq":"11"})),
        ])
        .unwrap();
        let d = m.take_delta();
        assert_eq!(d.inserted.len(), 2);
        // Replayed snapshot row: not duplicated, not reported.
        m.upsert(row(json!({"id":"1","body":"a","n":1,"_seq":"10"})))
            .unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.take_delta().is_empty());

        // Update: body changed, n became NULL (absent from rows, present in old_values).
        m.apply_change(change(
            ChangeType::Update,
            vec![json!({"id":"1","body":"a2","_seq":"20"})],
            vec![json!({"id":"1","body":"a","n":1,"_seq":"10"})],
        ))
        .unwrap();
        let got = m.get(&key("1")).unwrap();
        assert_eq!(got["body"], "a2");
        assert_eq!(got["n"], Value::Null);
        assert_eq!(got["_seq"], "20");
        let d = m.take_delta();
        assert_eq!(d.updated.len(), 1);
        assert!(d.inserted.is_empty() && d.removed.is_empty());
        assert_eq!(d.updated[0].row["n"], Value::Null);

        // A stale update (older _seq) is ignored.
        m.apply_change(change(
            ChangeType::Update,
            vec![json!({"id":"1","body":"old","_seq":"15"})],
            vec![json!({"id":"1","_seq":"10"})],
        ))
        .unwrap();
        assert_eq!(m.get(&key("1")).unwrap()["body"], "a2");

        // Tombstone with a newer _seq removes the row.
        m.apply_change(change(
            ChangeType::Delete,
            vec![],
            vec![json!({"id":"2","body":"b","_deleted":true,"_seq":"30"})],
        ))
        .unwrap();
        assert_eq!(ids(&m), ["1"]);
        assert_eq!(m.take_delta().removed, vec![key("2")]);
        // STREAM-style delete without key columns: ignored.
        assert!(!m.delete(&row(json!({"row_id":"u:5"}))));
    }

    #[test]
    fn update_for_an_unknown_key_inserts_with_nulls_for_known_columns() {
        let mut m = Materializer::new(vec![], None);
        m.set_columns(vec![
            "id".into(),
            "body".into(),
            "n".into(),
            "_deleted".into(),
        ]);
        m.update(
            row(json!({"id":"9","body":"moved in","_seq":"5"})),
            &row(json!({"id":"9","_seq":"4"})),
        )
        .unwrap();
        let r = m.get(&key("9")).unwrap();
        assert_eq!(r["n"], Value::Null);
        assert_eq!(r["_deleted"], Value::Bool(false));
        assert_eq!(r["body"], "moved in");
    }

    #[test]
    fn order_is_key_insertion_order_and_limit_evicts_the_oldest() {
        let mut m = Materializer::new(vec![], Some(3));
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            m.upsert(row(json!({"id":*id,"_seq":(i + 1).to_string()})))
                .unwrap();
        }
        m.take_delta();
        // With a limit the order is the latest `_seq`: an update moves its row to the end
        // (the order a fresh snapshot has), reported as removed + inserted.
        m.update(row(json!({"id":"a","v":1,"_seq":"10"})), &Row::new())
            .unwrap();
        assert_eq!(ids(&m), ["b", "c", "a"]);
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("a")]);
        assert!(d.updated.is_empty());
        assert_eq!(d.inserted[0].key, key("a"));
        // New key appended, oldest (b) evicted: the rows with the newest versions stay.
        m.upsert(row(json!({"id":"d","_seq":"11"}))).unwrap();
        assert_eq!(ids(&m), ["c", "a", "d"]);
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("b")]);
        assert_eq!(d.inserted.len(), 1);
        // Without a limit an update keeps its place.
        let mut unlimited = Materializer::new(vec![], None);
        for id in ["a", "b"] {
            unlimited.upsert(row(json!({"id":id,"_seq":"1"}))).unwrap();
        }
        unlimited
            .update(row(json!({"id":"a","_seq":"2"})), &Row::new())
            .unwrap();
        assert_eq!(ids(&unlimited), ["a", "b"]);
        // Deleted then re-inserted key moves to the end: removed + inserted.
        m.delete(&row(json!({"id":"b","_seq":"12"})));
        m.upsert(row(json!({"id":"c","_seq":"12"}))).unwrap();
        m.take_delta();
        m.delete(&row(json!({"id":"c","_seq":"12"})));
        m.upsert(row(json!({"id":"b","_seq":"13"}))).unwrap();
        m.upsert(row(json!({"id":"c","_seq":"13"}))).unwrap();
        assert_eq!(ids(&m), ["d", "b", "c"]);
        m.take_delta();
        m.delete(&row(json!({"id":"d","_seq":"13"})));
        m.upsert(row(json!({"id":"d","_seq":"14"}))).unwrap();
        assert_eq!(ids(&m), ["b", "c", "d"]);
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("d")]);
        assert_eq!(d.inserted[0].key, key("d"));
        // Inserted and evicted within one window: not reported at all.
        m.upsert(row(json!({"id":"e","_seq":"24"}))).unwrap();
        m.upsert(row(json!({"id":"f","_seq":"25"}))).unwrap();
        m.upsert(row(json!({"id":"g","_seq":"26"}))).unwrap();
        m.upsert(row(json!({"id":"h","_seq":"27"}))).unwrap();
        assert_eq!(ids(&m), ["f", "g", "h"]);
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("b"), key("c"), key("d")]);
        let inserted: Vec<&str> = d
            .inserted
            .iter()
            .map(|r| r.row["id"].as_str().unwrap())
            .collect();
        assert_eq!(inserted, ["f", "g", "h"]);
    }

    /// Replaying a delta onto a mirror (removed, updated in place, inserted appended) must
    /// reproduce the materializer exactly, order included.
    #[test]
    fn deltas_rebuild_an_identical_mirror() {
        for limit in [Some(50), None, Some(3)] {
            rebuild_mirror_with_limit(limit);
        }
    }

    fn rebuild_mirror_with_limit(limit: Option<usize>) {
        let mut m = Materializer::new(vec![], limit);
        let mut mirror: Vec<(RowKey, Row)> = Vec::new();
        let mut seq = 0u64;
        let mut rng = 12345u64;
        for round in 0..200 {
            for _ in 0..(round % 7) {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = ((rng >> 33) % 80).to_string();
                seq += 1;
                match (rng >> 20) % 3 {
                    0 => m
                        .upsert(row(json!({"id":id,"v":seq,"_seq":seq.to_string()})))
                        .unwrap(),
                    1 => m
                        .update(
                            row(json!({"id":&id,"w":seq,"_seq":seq.to_string()})),
                            &row(json!({"id":id,"v":0})),
                        )
                        .unwrap(),
                    _ => {
                        m.delete(&row(json!({"id":id,"_seq":seq.to_string()})));
                    }
                }
            }
            let d = m.take_delta();
            mirror.retain(|(k, _)| !d.removed.contains(k));
            for u in &d.updated {
                let slot = mirror
                    .iter_mut()
                    .find(|(k, _)| *k == u.key)
                    .expect("updated key held");
                slot.1 = (*u.row).clone();
            }
            for ins in d.inserted {
                mirror.push((ins.key, (*ins.row).clone()));
            }
            let actual: Vec<(RowKey, Row)> =
                m.iter().map(|(k, r)| (k.clone(), r.clone())).collect();
            assert_eq!(mirror, actual, "round {round}, limit {limit:?}");
        }
    }

    #[test]
    fn resync_reports_only_real_differences() {
        let mut m = Materializer::new(vec![], None);
        m.apply_snapshot_rows(vec![
            row(json!({"id":"1","_seq":"1"})),
            row(json!({"id":"2","_seq":"2"})),
            row(json!({"id":"3","_seq":"3"})),
        ])
        .unwrap();
        m.take_delta();
        let mut staging = Materializer::new(vec![], None);
        staging.set_tracking(false);
        staging
            .apply_snapshot_rows(vec![
                row(json!({"id":"1","_seq":"1"})),
                row(json!({"id":"3","_seq":"9","x":1})),
                row(json!({"id":"4","_seq":"8"})),
            ])
            .unwrap();
        m.resync_from(staging);
        assert_eq!(ids(&m), ["1", "3", "4"]);
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("2")]);
        assert_eq!(d.updated.len(), 1);
        assert_eq!(d.updated[0].key, key("3"));
        assert_eq!(d.inserted.len(), 1);
        assert_eq!(d.inserted[0].key, key("4"));
    }

    #[test]
    fn per_change_work_does_not_depend_on_row_count() {
        fn work_for(n: usize) -> u64 {
            let mut m = Materializer::new(vec![], Some(n));
            m.set_tracking(false);
            m.apply_snapshot_rows(
                (0..n)
                    .map(|i| row(json!({"id":i.to_string(),"v":i,"_seq":(i + 1).to_string()})))
                    .collect(),
            )
            .unwrap();
            m.set_tracking(true);
            let before = m.work_counter();
            let mut seq = n as u64 + 10;
            for i in 0..1000usize {
                seq += 1;
                let s = seq.to_string();
                match i % 4 {
                    0 => m
                        .upsert(row(json!({"id":format!("new{i}"),"_seq":s})))
                        .unwrap(),
                    1 => m
                        .update(
                            row(json!({"id":(i % n).to_string(),"v":0,"_seq":s})),
                            &Row::new(),
                        )
                        .unwrap(),
                    2 => {
                        m.delete(&row(json!({"id":(i % n).to_string(),"_seq":s})));
                    }
                    _ => m
                        .upsert(row(json!({"id":(i % n).to_string(),"v":1,"_seq":s})))
                        .unwrap(),
                }
                let _ = m.take_delta();
            }
            m.work_counter() - before
        }
        let small = work_for(1_000);
        let large = work_for(100_000);
        assert_eq!(
            small, large,
            "work per change must not grow with the row count"
        );
    }

    /// A `change` frame as the server sends it (PROTOCOL.md §4.5), decoded by `frames`.
    fn frame(text: &str) -> ChangeEvent {
        match super::super::frames::decode_text(text).unwrap() {
            super::super::frames::ServerMessage::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn an_update_that_changes_the_key_leaves_no_ghost_row() {
        let mut m = Materializer::new(vec![], None);
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"insert","rows":[{"id":"1","title":"one","n":5,"_seq":"100"},{"id":"2","title":"two","n":6,"_seq":"101"}]}"#)).unwrap();
        m.take_delta();
        // UPDATE t SET id = 9 WHERE id = 1: `rows` has the new key, `old_values` the old.
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"update","rows":[{"id":"9","title":"one","_seq":"102"}],"old_values":[{"id":"1","n":5,"_seq":"100"}]}"#)).unwrap();
        assert_eq!(ids(&m), ["2", "9"]);
        assert_eq!(
            m.get(&key("9")).unwrap()["n"],
            Value::Null,
            "n was in old_values only: NULL"
        );
        let d = m.take_delta();
        assert_eq!(d.removed, vec![key("1")]);
        assert_eq!(d.inserted.len(), 1);
        assert_eq!(d.inserted[0].key, key("9"));
        // A replay of the same update changes nothing.
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"update","rows":[{"id":"9","title":"one","_seq":"102"}],"old_values":[{"id":"1","n":5,"_seq":"100"}]}"#)).unwrap();
        assert_eq!(ids(&m), ["2", "9"]);
        // Composite keys: one part changes.
        let mut c = Materializer::new(vec!["a".into(), "b".into()], Some(10));
        c.upsert(row(json!({"a":"x","b":1,"v":"p","_seq":"5"})))
            .unwrap();
        c.update(
            row(json!({"a":"x","b":2,"v":"p","_seq":"6"})),
            &row(json!({"a":"x","b":1,"_seq":"5"})),
        )
        .unwrap();
        let keys: Vec<&str> = c.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [r#"["x",2]"#]);
    }

    #[test]
    fn stream_table_deletes_match_the_row_id_seq() {
        let mut m = Materializer::new(vec![], None);
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"insert","rows":[{"id":"1","ev":"a","_seq":"7001"}]}"#)).unwrap();
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"insert","rows":[{"id":"2","ev":"b","_seq":"7002"}]}"#)).unwrap();
        m.take_delta();
        // STREAM hard delete: only `row_id` = "<user_id>:<seq>".
        m.apply_change(frame(r#"{"type":"change","subscription_id":"s","change_type":"delete","old_values":[{"row_id":"alice:7001"}]}"#)).unwrap();
        assert_eq!(ids(&m), ["2"]);
        assert_eq!(m.take_delta().removed, vec![key("1")]);
        // The `_seq` index stays in step with later rows, updates and removals.
        m.upsert(row(json!({"id":"3","_seq":"7003"}))).unwrap();
        m.upsert(row(json!({"id":"2","ev":"b2","_seq":"7004"})))
            .unwrap();
        assert!(
            !m.delete(&row(json!({"row_id":"alice:7002"}))),
            "an old version's seq names nothing"
        );
        assert!(m.delete(&row(json!({"row_id":"alice:7004"}))));
        assert!(m.delete(&row(json!({"row_id":"u:with:colons:7003"}))));
        assert!(m.is_empty());
        // Unmatched or malformed row ids and projected `{}` tombstones are ignored.
        m.upsert(row(json!({"id":"4","_seq":"7005"}))).unwrap();
        for t in [
            json!({"row_id":"alice:9"}),
            json!({"row_id":"nocolon"}),
            json!({"row_id":"a:x"}),
            json!({}),
        ] {
            assert!(!m.delete(&row(t)));
        }
        assert_eq!(ids(&m), ["4"]);
    }

    #[test]
    fn limit_keeps_one_order_in_snapshot_live_and_resync() {
        // Snapshot (ascending _seq) of 5 rows with limit 3: the 3 newest.
        let snapshot = |rows: &[(&str, u64)]| {
            let mut m = Materializer::new(vec![], Some(3));
            let mut sorted = rows.to_vec();
            sorted.sort_by_key(|r| r.1);
            for (id, seq) in sorted {
                m.upsert(row(json!({"id":id,"_seq":seq.to_string()})))
                    .unwrap();
            }
            m
        };
        let mut live = snapshot(&[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]);
        assert_eq!(ids(&live), ["c", "d", "e"]);
        live.take_delta();
        // Live: update c (seq 6), insert f (seq 7): the newest three by _seq are e, c, f.
        live.update(row(json!({"id":"c","v":1,"_seq":"6"})), &Row::new())
            .unwrap();
        live.upsert(row(json!({"id":"f","_seq":"7"}))).unwrap();
        assert_eq!(ids(&live), ["e", "c", "f"]);
        // A fresh snapshot of the same table state holds the same rows in the same order.
        let fresh = snapshot(&[("a", 1), ("b", 2), ("c", 6), ("d", 4), ("e", 5), ("f", 7)]);
        assert_eq!(ids(&fresh), ids(&live));
        // Resync: while away d came back (seq 8) and e changed (seq 9).
        live.take_delta();
        let staging = snapshot(&[("a", 1), ("b", 2), ("c", 6), ("d", 8), ("e", 9), ("f", 7)]);
        live.resync_from(staging);
        assert_eq!(ids(&live), ["f", "d", "e"]);
        let d = live.take_delta();
        assert_eq!(d.removed, vec![key("c"), key("e")]);
        let inserted: Vec<&str> = d
            .inserted
            .iter()
            .map(|r| r.row["id"].as_str().unwrap())
            .collect();
        assert_eq!(inserted, ["d", "e"]);
    }
}
