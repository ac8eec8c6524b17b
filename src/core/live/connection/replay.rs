//! The resume filter of events-mode subscriptions: after a resubscribe `from` the
//! checkpoint, the server replays rows the subscriber already saw; rows with
//! `_seq <= from` are dropped here (rows without a `_seq` always pass).

use super::frames::{ChangeEvent, ChangeType, Row};
use super::materializer::row_seq;
use crate::core::seq_id::SeqId;

fn fresh(from: SeqId) -> impl Fn(&Row) -> bool {
    move |r: &Row| row_seq(r).is_none_or(|s| s > from)
}

/// Drops the replayed rows of a snapshot batch.
pub(super) fn drop_replayed_rows(rows: &mut Vec<Row>, from: SeqId) {
    rows.retain(fresh(from));
}

/// Drops the replayed rows of a change; returns `false` when nothing new is left (the
/// whole change is a replay and is not delivered). An update's rows stay together: it is
/// kept whole when any of its rows is new.
pub(super) fn drop_replayed_change(change: &mut ChangeEvent, from: SeqId) -> bool {
    let fresh = fresh(from);
    match change.change_type {
        ChangeType::Insert => change.rows.retain(fresh),
        ChangeType::Update => {
            if !change.rows.iter().any(fresh) {
                change.rows.clear();
            }
        }
        ChangeType::Delete => change.old_values.retain(fresh),
    }
    match change.change_type {
        ChangeType::Insert | ChangeType::Update => !change.rows.is_empty(),
        ChangeType::Delete => !change.old_values.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn row(seq: Option<i64>, id: i64) -> Row {
        let mut r = Row::new();
        r.insert("id", json!(id));
        if let Some(seq) = seq {
            r.insert("_seq", json!(seq));
        }
        r
    }

    fn change(change_type: ChangeType, rows: Vec<Row>, old_values: Vec<Row>) -> ChangeEvent {
        ChangeEvent {
            subscription_id: "sub-1".into(),
            change_type,
            rows,
            old_values,
        }
    }

    #[test]
    fn batch_rows_at_or_below_from_are_dropped_rows_without_seq_kept() {
        let mut rows = vec![
            row(Some(4), 1),
            row(Some(5), 2),
            row(Some(6), 3),
            row(None, 4),
        ];
        drop_replayed_rows(&mut rows, SeqId::new(5));
        let ids: Vec<_> = rows.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, vec![json!(3), json!(4)]);
    }

    #[test]
    fn insert_keeps_only_new_rows() {
        let mut c = change(
            ChangeType::Insert,
            vec![row(Some(5), 1), row(Some(7), 2)],
            vec![],
        );
        assert!(drop_replayed_change(&mut c, SeqId::new(5)));
        assert_eq!(c.rows, vec![row(Some(7), 2)]);
    }

    #[test]
    fn fully_replayed_insert_is_dropped() {
        let mut c = change(ChangeType::Insert, vec![row(Some(3), 1)], vec![]);
        assert!(!drop_replayed_change(&mut c, SeqId::new(5)));
    }

    #[test]
    fn update_stays_whole_when_any_row_is_new() {
        let rows = vec![row(Some(4), 1), row(Some(9), 1)];
        let mut c = change(ChangeType::Update, rows.clone(), vec![]);
        assert!(drop_replayed_change(&mut c, SeqId::new(5)));
        assert_eq!(c.rows, rows);
        let mut old = change(ChangeType::Update, vec![row(Some(2), 1)], vec![]);
        assert!(!drop_replayed_change(&mut old, SeqId::new(5)));
    }

    #[test]
    fn delete_filters_old_values() {
        let old = vec![row(Some(5), 1), row(Some(6), 2)];
        let mut c = change(ChangeType::Delete, vec![], old);
        assert!(drop_replayed_change(&mut c, SeqId::new(5)));
        assert_eq!(c.old_values, vec![row(Some(6), 2)]);
        let mut gone = change(ChangeType::Delete, vec![], vec![row(Some(1), 1)]);
        assert!(!drop_replayed_change(&mut gone, SeqId::new(5)));
    }
}
