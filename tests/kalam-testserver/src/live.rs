//! Live queries (§4.6-§4.8): live SQL analysis, the registry of subscriptions, the
//! snapshot/buffer state machine, change payloads and the small WHERE evaluator.

use crate::db::{
    Actor, ChangeEvent, ChangeKind, Db, FullRow, SchemaField, StmtOutput, TableDef, TableKind,
};
use crate::sqltext::quote_ident;
use crate::types::{Role, SqlError};
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Map, Value};
use sqlparser::ast::{BinaryOperator, Expr, SelectItem, SetExpr, Statement, UnaryOperator};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Outbound messages of one WebSocket connection, in order.
#[derive(Debug)]
pub enum Out {
    Msg(Value),
    Close(u16, String),
}

/// The outbound side of one connection. Like the real server (§4.6.7, §12.1), change
/// notifications go through a bounded queue and are dropped SILENTLY when it is full;
/// replies (acks, batches, errors) always get through.
#[derive(Clone)]
pub struct Outbox {
    tx: UnboundedSender<Out>,
    /// Frames queued and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    /// The notification queue size (0 = unbounded), shared by every connection.
    cap: Arc<AtomicUsize>,
    /// Notifications dropped on this connection (for tests and logs).
    pub dropped: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn new(tx: UnboundedSender<Out>, cap: Arc<AtomicUsize>) -> Outbox {
        Outbox {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            cap,
            dropped: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A reply or control frame: always queued.
    pub fn send(&self, out: Out) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(out).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A change notification: dropped when the queue already holds `cap` frames.
    pub fn notify(&self, msg: Value) {
        let cap = self.cap.load(Ordering::Relaxed);
        if cap > 0 && self.queued.load(Ordering::SeqCst) >= cap {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.send(Out::Msg(msg));
    }

    /// The writer took a frame off the queue.
    pub fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A WebSocket-level error with the synthetic/real subscription id of §4.5.
pub fn ws_error(sub: &str, code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "subscription_id": sub, "code": code, "message": message.into()})
}

// ------------------------------------------------------------------- filter evaluator

/// The live WHERE evaluator: only the subset the real server supports (§4.8).
#[derive(Clone, Debug)]
pub struct Filter {
    expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    Num(f64),
    Str(String),
    Bool(bool),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let sql = format!(
            "SELECT 1 WHERE {}",
            crate::sqltext::normalize_functions(text)
        );
        let mut s = Parser::parse_sql(&GenericDialect {}, &sql).map_err(|e| e.to_string())?;
        match s.pop() {
            Some(Statement::Query(q)) => match *q.body {
                SetExpr::Select(sel) => sel
                    .selection
                    .map(|expr| Filter { expr })
                    .ok_or_else(|| "no WHERE".into()),
                _ => Err("not a SELECT".into()),
            },
            _ => Err("not a query".into()),
        }
    }

    /// Whether the row matches. Unsupported constructs never match (the real server drops
    /// every event of such a subscription).
    pub fn matches(&self, t: &TableDef, row: &FullRow, user: &str) -> bool {
        matches!(eval(&self.expr, t, row, user), Some(V::Bool(true)))
    }
}

fn cell(t: &TableDef, row: &FullRow, name: &str) -> Option<V> {
    let v = match name {
        "_seq" => SqlValue::Integer(row.seq),
        "_deleted" => return Some(V::Bool(row.deleted)),
        _ => row.values.get(t.col(name)?)?.clone(),
    };
    let is_bool = t
        .col(name)
        .is_some_and(|i| t.columns[i].ktype == crate::types::KType::Boolean);
    Some(match v {
        SqlValue::Null => V::Null,
        SqlValue::Integer(i) if is_bool => V::Bool(i != 0),
        SqlValue::Integer(i) => V::Num(i as f64),
        SqlValue::Real(f) => V::Num(f),
        SqlValue::Text(s) => V::Str(s),
        SqlValue::Blob(_) => return None,
    })
}

fn like(s: &str, pat: &str, esc: Option<char>, ci: bool) -> bool {
    let (s, pat): (Vec<char>, Vec<char>) = if ci {
        (
            s.to_lowercase().chars().collect(),
            pat.to_lowercase().chars().collect(),
        )
    } else {
        (s.chars().collect(), pat.chars().collect())
    };
    fn m(s: &[char], p: &[char], esc: Option<char>) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(&c) if Some(c) == esc => match p.get(1) {
                Some(&lit) => s.first() == Some(&lit) && m(&s[1..], &p[2..], esc),
                None => false,
            },
            Some('%') => (0..=s.len()).any(|i| m(&s[i..], &p[1..], esc)),
            Some('_') => !s.is_empty() && m(&s[1..], &p[1..], esc),
            Some(&c) => s.first() == Some(&c) && m(&s[1..], &p[1..], esc),
        }
    }
    m(&s, &pat, esc)
}

fn eval(e: &Expr, t: &TableDef, row: &FullRow, user: &str) -> Option<V> {
    Some(match e {
        Expr::Nested(x) => eval(x, t, row, user)?,
        Expr::Identifier(i) => cell(t, row, &i.value)?,
        Expr::CompoundIdentifier(p) => cell(t, row, &p.last()?.value)?,
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => V::Num(n.parse().ok()?),
            sqlparser::ast::Value::SingleQuotedString(s)
            | sqlparser::ast::Value::DoubleQuotedString(s) => V::Str(s.clone()),
            sqlparser::ast::Value::Boolean(b) => V::Bool(*b),
            sqlparser::ast::Value::Null => V::Null,
            _ => return None,
        },
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("KDB_CURRENT_USER") => {
            V::Str(user.to_string())
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => match eval(expr, t, row, user)? {
            V::Bool(b) => V::Bool(!b),
            _ => V::Null,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match eval(expr, t, row, user)? {
            V::Num(n) => V::Num(-n),
            _ => return None,
        },
        Expr::Like {
            negated,
            expr,
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            negated,
            expr,
            pattern,
            escape_char,
            ..
        } => {
            let ci = matches!(e, Expr::ILike { .. });
            let esc = escape_char
                .as_ref()
                .and_then(|c| c.to_string().trim_matches('\'').chars().next());
            match (eval(expr, t, row, user)?, eval(pattern, t, row, user)?) {
                (V::Str(s), V::Str(p)) => V::Bool(like(&s, &p, esc, ci) != *negated),
                _ => V::Null,
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let l = eval(left, t, row, user)?;
            let r = eval(right, t, row, user)?;
            match op {
                BinaryOperator::And => match (l, r) {
                    (V::Bool(false), _) | (_, V::Bool(false)) => V::Bool(false),
                    (V::Bool(true), V::Bool(true)) => V::Bool(true),
                    _ => V::Null,
                },
                BinaryOperator::Or => match (l, r) {
                    (V::Bool(true), _) | (_, V::Bool(true)) => V::Bool(true),
                    (V::Bool(false), V::Bool(false)) => V::Bool(false),
                    _ => V::Null,
                },
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::Gt
                | BinaryOperator::LtEq
                | BinaryOperator::GtEq => {
                    let ord = match (&l, &r) {
                        (V::Num(a), V::Num(b)) => a.partial_cmp(b),
                        (V::Str(a), V::Str(b)) => Some(a.cmp(b)),
                        (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
                        (V::Str(a), V::Num(b)) => {
                            a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
                        }
                        (V::Num(a), V::Str(b)) => {
                            b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b))
                        }
                        _ => None,
                    };
                    let Some(o) = ord else { return Some(V::Null) };
                    use std::cmp::Ordering::*;
                    V::Bool(match op {
                        BinaryOperator::Eq => o == Equal,
                        BinaryOperator::NotEq => o != Equal,
                        BinaryOperator::Lt => o == Less,
                        BinaryOperator::Gt => o == Greater,
                        BinaryOperator::LtEq => o != Greater,
                        _ => o != Less,
                    })
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

// ------------------------------------------------------------------- live SQL analysis

/// An analysed live query.
pub struct LiveQuery {
    pub table: Arc<TableDef>,
    /// None for `*`.
    pub projection: Option<Vec<String>>,
    pub where_text: Option<String>,
    pub filter: Option<Filter>,
    pub schema: Vec<SchemaField>,
}

pub fn analyse(db: &Db, sql: &str, actor: &Actor) -> Result<LiveQuery, (String, String)> {
    let invalid = |m: &str| ("INVALID_SQL".to_string(), format!("Invalid SQL: {m}"));
    let unsupported = |what: &str| {
        invalid(&format!("Invalid SQL: Subscription query does not support {what}. Only SELECT ... FROM ... [WHERE ...] is supported."))
    };
    let sql = crate::sqltext::normalize_functions(sql);
    let mut stmts =
        Parser::parse_sql(&GenericDialect {}, &sql).map_err(|e| invalid(&e.to_string()))?;
    if stmts.len() != 1 {
        return Err(invalid("Subscription query must be exactly one statement"));
    }
    let Statement::Query(q) = stmts.remove(0) else {
        return Err(invalid("Only SELECT queries can be subscribed to"));
    };
    if q.with.is_some() {
        return Err(unsupported("WITH"));
    }
    if q.order_by.is_some() {
        return Err(unsupported("ORDER BY"));
    }
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return Err(unsupported("LIMIT/OFFSET"));
    }
    let SetExpr::Select(sel) = *q.body else {
        return Err(invalid("Only SELECT queries can be subscribed to"));
    };
    if sel.distinct.is_some() {
        return Err(unsupported("DISTINCT"));
    }
    if sel.having.is_some() {
        return Err(unsupported("HAVING"));
    }
    if !matches!(sel.group_by, sqlparser::ast::GroupByExpr::Expressions(ref v, _) if v.is_empty()) {
        return Err(unsupported("GROUP BY"));
    }
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
        return Err(unsupported("JOIN or multiple FROM items"));
    }
    let sqlparser::ast::TableFactor::Table {
        name, args: None, ..
    } = &sel.from[0].relation
    else {
        return Err(unsupported("subqueries or table functions in FROM"));
    };
    let parts = crate::db::object_parts(name);
    if parts.len() != 2 {
        return Err((
            "INVALID_SQL".into(),
            "Invalid SQL: Query must use namespace.table format".into(),
        ));
    }
    let table = db.resolve(&parts, "").ok_or_else(|| {
        (
            "NOT_FOUND".to_string(),
            format!("Not found: Table not found: {}:{}", parts[0], parts[1]),
        )
    })?;
    if table.kind == TableKind::Shared && !crate::db::shared_readable(&table, actor.role) {
        return Err((
            "UNAUTHORIZED".into(),
            format!(
                "Permission denied: Role '{}' cannot subscribe to table '{}'",
                actor.role.title(),
                table.id()
            ),
        ));
    }
    if parts[0].eq_ignore_ascii_case("system") && actor.role < Role::Dba {
        return Err((
            "UNAUTHORIZED".into(),
            "Permission denied: system tables require dba or system role".into(),
        ));
    }
    let mut projection = Vec::new();
    let mut star = false;
    for item in &sel.projection {
        match item {
            SelectItem::Wildcard(_) => star = true,
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let n = match e {
                    Expr::Identifier(i) => i.value.clone(),
                    Expr::CompoundIdentifier(p) => {
                        p.last().map(|i| i.value.clone()).unwrap_or_default()
                    }
                    other => other.to_string(),
                };
                if n == "_seq" || n == "_deleted" {
                    return Err(invalid(&format!(
                        "Cannot select system column '{n}' explicitly"
                    )));
                }
                projection.push(n);
            }
            _ => return Err(unsupported("qualified wildcards")),
        }
    }
    let schema = if star {
        table.full_schema()
    } else {
        let mut v = Vec::new();
        for n in &projection {
            let i = table.col(n).ok_or_else(|| {
                invalid(&format!("Column '{n}' not found in table {}", table.id()))
            })?;
            let c = &table.columns[i];
            v.push(c.field(c.name.clone()));
        }
        v
    };
    let where_text = sel.selection.as_ref().map(|e| e.to_string());
    let filter = sel.selection.map(|expr| Filter { expr });
    Ok(LiveQuery {
        projection: if star {
            None
        } else {
            Some(schema.iter().map(|f| f.name.clone()).collect())
        },
        table,
        where_text,
        filter,
        schema,
    })
}

/// A snapshot row with its `_seq`.
pub type SnapRow = (i64, Map<String, Value>);

/// Reads snapshot rows `_seq in (after, boundary]` ordered by `_seq`.
pub fn snapshot(
    db: &mut Db,
    lq: &LiveQuery,
    actor: &Actor,
    after: Option<i64>,
    boundary: i64,
    limit: usize,
    newest: bool,
) -> Result<Vec<SnapRow>, SqlError> {
    let cols = match &lq.projection {
        None => "*".to_string(),
        Some(p) => {
            let mut c: Vec<String> = p.iter().map(|n| quote_ident(n)).collect();
            c.push("_seq".into());
            c.join(", ")
        }
    };
    let mut cond = format!("_seq <= {boundary}");
    if let Some(a) = after {
        cond.push_str(&format!(" AND _seq > {a}"));
    }
    if let Some(w) = &lq.where_text {
        cond.push_str(&format!(" AND ({w})"));
    }
    let sql = format!(
        "SELECT {cols} FROM {}.{} WHERE {cond} ORDER BY _seq {} LIMIT {limit}",
        quote_ident(&lq.table.namespace),
        quote_ident(&lq.table.name),
        if newest { "DESC" } else { "ASC" }
    );
    let q = match Parser::parse_sql(&GenericDialect {}, &sql)
        .map_err(|e| SqlError::invalid_sql(e.to_string()))?
        .pop()
    {
        Some(Statement::Query(q)) => *q,
        _ => return Err(SqlError::exec("bad snapshot query")),
    };
    let StmtOutput::Rows { schema, rows } = db.select(q, &[], "", actor, false)? else {
        return Err(SqlError::exec("snapshot returned no rows"));
    };
    let seq_i = schema.iter().position(|f| f.name == "_seq").unwrap_or(0);
    let mut out: Vec<SnapRow> = rows
        .into_iter()
        .map(|r| {
            let seq = r[seq_i].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut m = Map::new();
            for (f, v) in schema.iter().zip(r) {
                if lq.table.kind == TableKind::Stream
                    && f.name == "_deleted"
                    && lq.projection.is_none()
                {
                    m.insert(f.name.clone(), v);
                    continue;
                }
                m.insert(f.name.clone(), v);
            }
            (seq, m)
        })
        .collect();
    if newest {
        out.reverse();
    }
    Ok(out)
}

// ------------------------------------------------------------------- registry

pub enum SubState {
    Loading {
        boundary: i64,
        buffer: VecDeque<(i64, Value)>,
        batch_num: u32,
        batch_size: usize,
        from: Option<i64>,
    },
    Ready,
}

pub struct Sub {
    pub conn: u64,
    pub id: String,
    pub actor: Actor,
    pub lq: LiveQuery,
    pub state: SubState,
    pub out: Outbox,
}

#[derive(Default)]
pub struct Registry {
    pub subs: HashMap<(u64, String), Sub>,
}

impl Registry {
    pub fn user_count(&self, user: &str) -> usize {
        self.subs.values().filter(|s| s.actor.user == user).count()
    }
    pub fn conn_count(&self, conn: u64) -> usize {
        self.subs.keys().filter(|(c, _)| *c == conn).count()
    }
    pub fn remove_conn(&mut self, conn: u64) {
        self.subs.retain(|(c, _), _| *c != conn);
    }

    /// Routes committed changes to subscriptions (called in commit order).
    pub fn publish(&mut self, events: &[ChangeEvent]) {
        for ev in events {
            for sub in self.subs.values_mut() {
                if sub.lq.table.id() != ev.table.id() {
                    continue;
                }
                if ev.table.kind != TableKind::Shared && sub.actor.user != ev.new.owner {
                    continue;
                }
                if let Some(f) = &sub.lq.filter {
                    if !f.matches(&ev.table, &ev.new, &sub.actor.user) {
                        continue;
                    }
                }
                let msg = change_message(&sub.id, &sub.lq, ev);
                match &mut sub.state {
                    SubState::Ready => sub.out.notify(msg),
                    SubState::Loading {
                        boundary, buffer, ..
                    } => {
                        if ev.new.seq <= *boundary {
                            continue;
                        }
                        if buffer.len() >= 1024 {
                            buffer.pop_front();
                        }
                        buffer.push_back((ev.new.seq, msg));
                    }
                }
            }
        }
    }
}

fn project(lq: &LiveQuery, obj: &Map<String, Value>, stream: bool) -> Map<String, Value> {
    match &lq.projection {
        None => {
            let mut m = obj.clone();
            if stream {
                m.remove("_deleted");
            }
            m
        }
        Some(p) => {
            let mut m = Map::new();
            for n in p {
                if let Some(v) = obj.get(n) {
                    m.insert(n.clone(), v.clone());
                }
            }
            if let Some(s) = obj.get("_seq") {
                m.insert("_seq".into(), s.clone());
            }
            m
        }
    }
}

/// Builds a `change` message exactly as §4.7 describes.
pub fn change_message(sub_id: &str, lq: &LiveQuery, ev: &ChangeEvent) -> Value {
    let t = &ev.table;
    let stream = t.kind == TableKind::Stream;
    let new = ev.new.to_object(t);
    match ev.kind {
        ChangeKind::Insert => {
            json!({"type": "change", "subscription_id": sub_id, "change_type": "insert", "rows": [project(lq, &new, stream)]})
        }
        ChangeKind::Update => {
            let old = ev.old.as_ref().map(|o| o.to_object(t)).unwrap_or_default();
            let pks: Vec<String> = t
                .pk_cols()
                .iter()
                .map(|&i| t.columns[i].name.clone())
                .collect();
            let projected: Vec<String> = match &lq.projection {
                None => t.columns.iter().map(|c| c.name.clone()).collect(),
                Some(p) => p.clone(),
            };
            let mut r = Map::new();
            let mut o = Map::new();
            r.insert("_seq".into(), new["_seq"].clone());
            o.insert(
                "_seq".into(),
                old.get("_seq").cloned().unwrap_or(Value::Null),
            );
            for k in &pks {
                r.insert(k.clone(), new.get(k).cloned().unwrap_or(Value::Null));
                o.insert(k.clone(), old.get(k).cloned().unwrap_or(Value::Null));
            }
            for k in projected.iter().filter(|k| !k.starts_with('_')) {
                let nv = new.get(k).cloned().unwrap_or(Value::Null);
                let ov = old.get(k).cloned().unwrap_or(Value::Null);
                if !nv.is_null() {
                    r.insert(k.clone(), nv.clone());
                }
                if nv != ov {
                    o.insert(k.clone(), ov);
                }
            }
            json!({"type": "change", "subscription_id": sub_id, "change_type": "update", "rows": [r], "old_values": [o]})
        }
        ChangeKind::Delete => {
            let tomb = if stream {
                match lq.projection {
                    None => {
                        json!({"row_id": format!("{}:{}", ev.new.owner, ev.old.as_ref().map_or(ev.new.seq, |o| o.seq))})
                    }
                    Some(_) => json!({}),
                }
            } else {
                Value::Object(project(lq, &new, false))
            };
            json!({"type": "change", "subscription_id": sub_id, "change_type": "delete", "old_values": [tomb]})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches() {
        assert!(like("hello", "he%", None, false));
        assert!(like("HELLO", "he_lo", None, true));
        assert!(!like("hello", "x%", None, false));
        assert!(like("50%", "50!%", Some('!'), false));
    }
}
