//! Durable topics (§7): SQL surface, publishing from table changes, consume/ack with groups,
//! claims and at-least-once redelivery after the visibility timeout.

use crate::db::{Actor, ChangeEvent, ChangeKind, Db, StmtOutput};
use crate::live::Filter;
use crate::sqltext::Toks;
use crate::types::{now_ms, KType, Role, SqlError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Route {
    pub table_id: String,
    pub op: String,
    pub filter: Option<String>,
    pub payload: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Topic {
    pub id: String,
    pub partitions: u32,
    pub routes: Vec<Route>,
}

fn load_topic(db: &Db, id: &str) -> Option<Topic> {
    db.conn
        .query_row("SELECT def FROM __kalam_topics WHERE id = ?1", [id], |r| {
            r.get::<_, String>(0)
        })
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
}

fn save_topic(db: &Db, t: &Topic) -> Result<(), SqlError> {
    db.conn.execute(
        "INSERT OR REPLACE INTO __kalam_topics (id, def) VALUES (?1, ?2)",
        rusqlite::params![t.id, serde_json::to_string(t).unwrap_or_default()],
    )?;
    Ok(())
}

fn all_topics(db: &Db) -> Vec<Topic> {
    let Ok(mut st) = db.conn.prepare_cached("SELECT def FROM __kalam_topics") else {
        return vec![];
    };
    st.query_map([], |r| r.get::<_, String>(0))
        .map(|it| {
            it.filter_map(|r| r.ok())
                .filter_map(|s| serde_json::from_str(&s).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn topic_name(t: &mut Toks, ns: &str) -> Result<String, SqlError> {
    let parts = t
        .dotted()
        .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: topic name expected"))?;
    Ok(match parts.as_slice() {
        [n] => format!("{ns}.{n}"),
        _ => parts.join("."),
    })
}

/// Topic statements; None when the statement is not a topic statement.
pub fn execute_topic_sql(
    db: &mut Db,
    t: &mut Toks,
    sql: &str,
    ns: &str,
    actor: &Actor,
) -> Result<Option<StmtOutput>, SqlError> {
    let admin = |what: &str| -> Result<(), SqlError> {
        if actor.role.is_admin() {
            Ok(())
        } else {
            Err(SqlError::denied(format!(
                "Admin privileges (DBA or System role) required for {what}"
            ))
            .unprefixed())
        }
    };
    if t.kws(&["CREATE", "TOPIC"]) {
        admin("CREATE TOPIC")?;
        let id = topic_name(t, ns)?;
        let partitions = if t.kw("PARTITIONS") {
            t.number()
                .filter(|n| *n >= 1)
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: PARTITIONS expects a number"))?
                as u32
        } else {
            1
        };
        let nsname = id.split('.').next().unwrap_or("");
        if !db.namespaces.contains_key(nsname) {
            return Err(SqlError::safe_exec(format!(
                "Namespace '{nsname}' does not exist"
            )));
        }
        if load_topic(db, &id).is_some() {
            return Err(SqlError::safe_exec(format!("Topic '{id}' already exists")));
        }
        save_topic(
            db,
            &Topic {
                id: id.clone(),
                partitions,
                routes: vec![],
            },
        )?;
        return Ok(Some(StmtOutput::Message(format!(
            "Created topic '{id}' with {partitions} partition(s)"
        ))));
    }
    if t.kws(&["DROP", "TOPIC"]) || t.kws(&["CLEAR", "TOPIC"]) {
        admin("topic management")?;
        let drop = sql.trim_start().to_ascii_uppercase().starts_with("DROP");
        let id = topic_name(t, ns)?;
        if load_topic(db, &id).is_none() {
            return Err(SqlError::safe_exec(format!("Topic '{id}' does not exist")));
        }
        db.conn
            .execute("DELETE FROM __kalam_topic_msgs WHERE topic = ?1", [&id])?;
        db.conn
            .execute("DELETE FROM __kalam_topic_offsets WHERE topic = ?1", [&id])?;
        if drop {
            db.conn
                .execute("DELETE FROM __kalam_topics WHERE id = ?1", [&id])?;
            return Ok(Some(StmtOutput::Message(format!("Dropped topic '{id}'"))));
        }
        return Ok(Some(StmtOutput::Message(format!("Cleared topic '{id}'"))));
    }
    if t.kws(&["ALTER", "TOPIC"]) {
        admin("ALTER TOPIC")?;
        let id = topic_name(t, ns)?;
        if !t.kws(&["ADD", "SOURCE"]) {
            return Err(SqlError::invalid_sql("Invalid SQL: ADD SOURCE expected"));
        }
        let parts = t
            .dotted()
            .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: table expected"))?;
        let def = db.resolve(&parts, "default").ok_or_else(|| {
            SqlError::safe_exec(format!("Table '{}' does not exist", parts.join(".")))
        })?;
        if !t.kw("ON") {
            return Err(SqlError::invalid_sql("Invalid SQL: ON expected"));
        }
        let op = t
            .name()
            .map(|s| s.to_ascii_uppercase())
            .filter(|s| ["INSERT", "UPDATE", "DELETE"].contains(&s.as_str()))
            .ok_or_else(|| {
                SqlError::invalid_sql("Invalid SQL: INSERT, UPDATE or DELETE expected")
            })?;
        let upper = sql.to_ascii_uppercase();
        let filter = upper.find(" WHERE ").map(|i| {
            let rest = &sql[i + 7..];
            let end = rest
                .to_ascii_uppercase()
                .find(" WITH ")
                .unwrap_or(rest.len());
            rest[..end].trim().to_string()
        });
        let payload = upper
            .find("PAYLOAD")
            .and_then(|i| sql[i..].split('\'').nth(1).map(|s| s.to_ascii_lowercase()))
            .unwrap_or_else(|| "full".into());
        let mut topic = load_topic(db, &id)
            .ok_or_else(|| SqlError::safe_exec(format!("Topic '{id}' does not exist")))?;
        if topic
            .routes
            .iter()
            .any(|r| r.table_id == def.id() && r.op == op)
        {
            return Err(SqlError::safe_exec(format!(
                "Source {} ON {op} already exists for topic '{id}'",
                def.id()
            )));
        }
        let title = format!("{}{}", &op[..1], op[1..].to_ascii_lowercase());
        topic.routes.push(Route {
            table_id: def.id(),
            op,
            filter,
            payload,
        });
        save_topic(db, &topic)?;
        return Ok(Some(StmtOutput::Message(format!(
            "Added source {} ON {title} to topic '{id}'",
            def.id()
        ))));
    }
    if t.kws(&["CONSUME", "FROM"]) {
        if actor.role < Role::Service {
            return Err(SqlError::denied(
                "Topic consumption requires service, dba, or system role",
            ));
        }
        let id = topic_name(t, ns)?;
        let mut group = "default".to_string();
        let mut start = Start::Latest;
        let mut limit = 100u64;
        loop {
            if t.kw("GROUP") {
                group = t.name().unwrap_or(group);
            } else if t.kw("FROM") {
                start = if t.kw("LATEST") {
                    Start::Latest
                } else if t.kw("EARLIEST") {
                    Start::Earliest
                } else {
                    Start::Offset(t.number().unwrap_or(0).max(0) as u64)
                };
            } else if t.kw("LIMIT") {
                limit = t.number().unwrap_or(100).max(0) as u64;
            } else {
                break;
            }
        }
        let msgs = consume(db, &id, &group, 0, start, limit)?;
        let f = crate::db::SchemaField::new;
        let schema = vec![
            f("topic_id", KType::Text, vec!["pk", "nn", "uq"]),
            f("partition_id", KType::Int, vec!["pk", "nn", "uq"]),
            f("offset", KType::BigInt, vec!["pk", "nn", "uq"]),
            f("key", KType::Text, vec![]),
            f("payload", KType::Bytes, vec!["nn"]),
            f("timestamp_ms", KType::BigInt, vec!["nn"]),
            f("user_id", KType::Text, vec![]),
            f("op", KType::Text, vec!["nn"]),
        ];
        let rows = msgs
            .messages
            .iter()
            .map(|m| {
                vec![
                    json!(id),
                    json!(m.partition),
                    json!(m.offset.to_string()),
                    json!(m.key),
                    json!(m.payload),
                    json!(m.ts.to_string()),
                    json!(m.user),
                    json!(m.op.to_ascii_lowercase()),
                ]
            })
            .collect();
        return Ok(Some(StmtOutput::Rows { schema, rows }));
    }
    if t.kw("ACK") {
        if actor.role < Role::Service {
            return Err(SqlError::denied(
                "Topic consumption requires service, dba, or system role",
            ));
        }
        let id = topic_name(t, ns)?;
        let mut group = "default".to_string();
        let mut part = 0u32;
        let mut upto = None;
        loop {
            if t.kw("GROUP") {
                group = t.name().unwrap_or(group);
            } else if t.kw("PARTITION") {
                part = t.number().unwrap_or(0).max(0) as u32;
            } else if t.kws(&["UPTO", "OFFSET"]) {
                upto = t.number();
            } else {
                break;
            }
        }
        let upto = upto
            .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: UPTO OFFSET expected"))?
            .max(0) as u64;
        ack(db, &id, &group, part, upto)?;
        return Ok(Some(StmtOutput::Message(format!(
            "Acknowledged offset {upto} for group '{group}'"
        ))));
    }
    Ok(None)
}

/// Publishes table changes to every topic routing them (called with the DB lock held, so
/// offsets follow commit order).
pub fn publish(db: &mut Db, events: &[ChangeEvent]) {
    let topics = all_topics(db);
    if topics.is_empty() {
        return;
    }
    for ev in events {
        let op = match ev.kind {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        };
        for topic in &topics {
            for r in topic
                .routes
                .iter()
                .filter(|r| r.table_id == ev.table.id() && r.op == op)
            {
                if let Some(f) = &r.filter {
                    let Ok(filter) = Filter::parse(f) else {
                        continue;
                    };
                    if !filter.matches(&ev.table, &ev.new, &ev.user) {
                        continue;
                    }
                }
                let commit = db.next_commit_seq();
                let mut obj = ev.new.to_object(&ev.table);
                obj.insert("_commit_seq".into(), json!(commit.to_string()));
                if r.payload != "key" {
                    obj.insert(
                        "_table".into(),
                        json!(format!("{}:{}", ev.table.namespace, ev.table.name)),
                    );
                }
                let bytes = Value::Object(obj).to_string().into_bytes();
                let part = (fnv(&bytes) % topic.partitions.max(1) as u64) as i64;
                let next: i64 = db
                    .conn
                    .query_row(
                        "SELECT COALESCE(MAX(off) + 1, 0) FROM __kalam_topic_msgs WHERE topic = ?1 AND part = ?2",
                        rusqlite::params![topic.id, part],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let title = format!("{}{}", &op[..1], op[1..].to_ascii_lowercase());
                let user = match ev.table.kind {
                    crate::db::TableKind::Shared => ev.user.clone(),
                    _ => ev.new.owner.clone(),
                };
                let _ = db.conn.execute(
                    "INSERT INTO __kalam_topic_msgs (topic, part, off, payload, key, ts, user, op) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![topic.id, part, next, bytes, ev.new.pk_key(&ev.table), now_ms(), user, title],
                );
            }
        }
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100000001b3)
    })
}

#[derive(Clone, Copy, Debug)]
pub enum Start {
    Latest,
    Earliest,
    Offset(u64),
}

pub struct Msg {
    pub partition: u32,
    pub offset: u64,
    pub payload: Vec<u8>,
    pub key: Option<String>,
    pub ts: i64,
    pub user: Option<String>,
    pub op: String,
}

pub struct Consumed {
    pub messages: Vec<Msg>,
    pub next_offset: u64,
    pub has_more: bool,
}

/// In-memory claim state per (topic, group, partition); lost on restart like the real one.
#[derive(Default)]
pub struct Claims {
    pub cursors: HashMap<(String, String, u32), ClaimState>,
    pub visibility: Duration,
}

#[derive(Default)]
pub struct ClaimState {
    cursor: u64,
    pending: Vec<(u64, u64, Option<Instant>)>,
}

pub fn clear_claims(db: &mut Db) {
    db.claims.cursors.clear();
}

pub fn topic_exists(db: &Db, id: &str) -> bool {
    load_topic(db, id).is_some()
}

fn committed(db: &Db, topic: &str, group: &str, part: u32) -> Option<u64> {
    db.conn
        .query_row(
            "SELECT committed FROM __kalam_topic_offsets WHERE topic = ?1 AND grp = ?2 AND part = ?3",
            rusqlite::params![topic, group, part],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .map(|v| v as u64)
}

pub fn consume(
    db: &mut Db,
    topic: &str,
    group: &str,
    part: u32,
    start: Start,
    limit: u64,
) -> Result<Consumed, SqlError> {
    if load_topic(db, topic).is_none() {
        return Err(SqlError::plain(
            404,
            "NOT_FOUND",
            format!("Topic '{topic}' does not exist"),
        ));
    }
    let hw: i64 = db.conn.query_row(
        "SELECT COALESCE(MAX(off) + 1, 0) FROM __kalam_topic_msgs WHERE topic = ?1 AND part = ?2",
        rusqlite::params![topic, part],
        |r| r.get(0),
    )?;
    let hw = hw as u64;
    let commit = committed(db, topic, group, part);
    let (from, to) = {
        let c = &mut db.claims;
        let vis = c.visibility;
        let key = (topic.to_string(), group.to_string(), part);
        let exists = c.cursors.contains_key(&key);
        let st = c.cursors.entry(key).or_default();
        if !exists {
            st.cursor = match (commit, start) {
                (Some(k), _) => k + 1,
                (None, Start::Earliest) => 0,
                (None, Start::Latest) => hw,
                (None, Start::Offset(n)) => n,
            };
        }
        // Claims entirely acknowledged are done; expired ones rewind the cursor.
        if let Some(k) = commit {
            st.pending.retain(|(_, end, _)| *end > k + 1);
        }
        let now = Instant::now();
        let expired = st
            .pending
            .iter()
            .filter(|(_, _, at)| at.is_some_and(|t| now.duration_since(t) >= vis))
            .map(|(s, _, _)| *s)
            .min();
        if let Some(e) = expired {
            let e = commit.map_or(e, |k| e.max(k + 1));
            st.cursor = st.cursor.min(e);
            st.pending.retain(|(s, _, _)| *s < e);
        }
        let from = st.cursor;
        let to = (from + limit).min(hw.max(from));
        if to > from {
            st.pending.push((from, to, Some(now)));
            st.cursor = to;
        }
        (from, to)
    };
    let mut messages = Vec::new();
    if to > from {
        let mut st = db.conn.prepare_cached(
            "SELECT off, payload, key, ts, user, op FROM __kalam_topic_msgs WHERE topic = ?1 AND part = ?2 AND off >= ?3 AND off < ?4 ORDER BY off",
        )?;
        let rows = st.query_map(
            rusqlite::params![topic, part, from as i64, to as i64],
            |r| {
                Ok(Msg {
                    partition: part,
                    offset: r.get::<_, i64>(0)? as u64,
                    payload: r.get(1)?,
                    key: r.get(2)?,
                    ts: r.get(3)?,
                    user: r.get(4)?,
                    op: r.get(5)?,
                })
            },
        )?;
        for m in rows {
            messages.push(m?);
        }
    }
    let next_offset = messages.last().map_or(from, |m| m.offset + 1);
    let has_more = messages.len() as u64 == limit && limit > 0;
    Ok(Consumed {
        messages,
        next_offset,
        has_more,
    })
}

pub fn ack(db: &Db, topic: &str, group: &str, part: u32, upto: u64) -> Result<(), SqlError> {
    if load_topic(db, topic).is_none() {
        return Err(SqlError::plain(
            404,
            "NOT_FOUND",
            format!("Topic '{topic}' does not exist"),
        ));
    }
    db.conn.execute(
        "INSERT INTO __kalam_topic_offsets (topic, grp, part, committed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (topic, grp, part) DO UPDATE SET committed = MAX(committed, excluded.committed)",
        rusqlite::params![topic, group, part, upto as i64],
    )?;
    Ok(())
}

pub fn message_json(topic: &str, m: &Msg) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("topic_id".into(), json!(topic));
    o.insert("partition_id".into(), json!(m.partition));
    o.insert("offset".into(), json!(m.offset));
    o.insert(
        "payload".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(&m.payload)),
    );
    o.insert("key".into(), json!(m.key));
    o.insert("timestamp_ms".into(), json!(m.ts));
    if let Some(u) = &m.user {
        o.insert("user".into(), json!(u));
    }
    o.insert("op".into(), json!(m.op));
    Value::Object(o)
}
