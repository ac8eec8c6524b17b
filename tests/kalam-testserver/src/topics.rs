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
    if t.peek_kw("SELECT") {
        return system_select(db, sql, actor);
    }
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

/// `SELECT ... FROM system.topics` / `system.topic_offsets` (dba/system only, as on the real
/// server). Every row and column of the table is returned: projections and `WHERE` are not
/// evaluated here (clients filter). Other SELECTs are not ours: None.
fn system_select(db: &Db, sql: &str, actor: &Actor) -> Result<Option<StmtOutput>, SqlError> {
    let lower = sql.to_ascii_lowercase();
    let which = if lower.contains("from system.topic_offsets") {
        "offsets"
    } else if lower.contains("from system.topics") {
        "topics"
    } else {
        return Ok(None);
    };
    if !actor.role.is_admin() {
        return Err(SqlError::denied(
            "System tables require 'dba' or 'system' role",
        ));
    }
    let f = crate::db::SchemaField::new;
    if which == "topics" {
        let schema = vec![
            f("topic_id", KType::Text, vec!["pk", "nn", "uq"]),
            f("name", KType::Text, vec!["nn"]),
            f("partitions", KType::Int, vec!["nn"]),
        ];
        let rows = all_topics(db)
            .into_iter()
            .map(|t| {
                let name = t.id.rsplit('.').next().unwrap_or("").to_string();
                vec![json!(t.id), json!(name), json!(t.partitions)]
            })
            .collect();
        return Ok(Some(StmtOutput::Rows { schema, rows }));
    }
    let schema = vec![
        f("topic_id", KType::Text, vec!["pk", "nn"]),
        f("group_id", KType::Text, vec!["pk", "nn"]),
        f("partition_id", KType::Int, vec!["pk", "nn"]),
        f("last_acked_offset", KType::BigInt, vec!["nn"]),
    ];
    let mut st = db.conn.prepare_cached(
        "SELECT topic, grp, part, committed FROM __kalam_topic_offsets ORDER BY topic, grp, part",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(vec![
                json!(r.get::<_, String>(0)?),
                json!(r.get::<_, String>(1)?),
                json!(r.get::<_, i64>(2)?),
                json!(r.get::<_, i64>(3)?.to_string()),
            ])
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(StmtOutput::Rows { schema, rows }))
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
/// Mirrors `kalamdb-publisher/src/service.rs` (PROTOCOL.md §7.4, §12.4): a consume claims
/// `[max(cursor, start), last + 1)`; claims older than the visibility timeout are dropped at
/// the next consume and the cursor rewinds to the earliest of them; an ack commits and drops
/// every claim it fully covers, whoever holds it, and moves the cursor past it.
#[derive(Default)]
pub struct Claims {
    pub cursors: HashMap<(String, String, u32), ClaimState>,
    pub visibility: Duration,
    /// Topic fault switches (test route): consume answers with messages to cut off after
    /// their claim was made, and acks refused with 503 until then.
    pub drop_consume_responses: u64,
    pub fail_acks_until: Option<Instant>,
    /// Every committed ack in arrival order (test route `topic_acks`), bounded.
    pub ack_log: Vec<AckRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AckRecord {
    pub topic_id: String,
    pub group_id: String,
    pub partition_id: u32,
    pub upto_offset: u64,
    pub at_ms: i64,
}

const ACK_LOG_MAX: usize = 200_000;

pub struct ClaimState {
    cursor: u64,
    /// `(start, end_exclusive, claimed_at)`.
    pending: Vec<(u64, u64, Instant)>,
}

impl ClaimState {
    fn new(cursor: u64) -> ClaimState {
        ClaimState {
            cursor,
            pending: Vec::new(),
        }
    }

    fn expire(&mut self, now: Instant, timeout: Duration) {
        let mut earliest: Option<u64> = None;
        self.pending.retain(|(start, _, at)| {
            if now.duration_since(*at) > timeout {
                earliest = Some(earliest.map_or(*start, |e| e.min(*start)));
                false
            } else {
                true
            }
        });
        if let Some(e) = earliest {
            self.cursor = self.cursor.min(e);
        }
    }

    fn ack_up_to(&mut self, upto: u64) {
        self.pending.retain(|(_, end, _)| *end > upto + 1);
        self.cursor = self.cursor.max(upto + 1);
    }
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

fn not_found(topic: &str) -> SqlError {
    SqlError::plain(404, "NOT_FOUND", format!("Topic '{topic}' does not exist"))
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
        return Err(not_found(topic));
    }
    let hw: i64 = db.conn.query_row(
        "SELECT COALESCE(MAX(off) + 1, 0) FROM __kalam_topic_msgs WHERE topic = ?1 AND part = ?2",
        rusqlite::params![topic, part],
        |r| r.get(0),
    )?;
    let hw = hw as u64;
    // The handler's start: committed + 1 when the group committed, else the request's start.
    let start_offset = match (committed(db, topic, group, part), start) {
        (Some(k), _) => k + 1,
        (None, Start::Earliest) => 0,
        (None, Start::Latest) => hw,
        (None, Start::Offset(n)) => n,
    };
    let (from, to) = {
        let c = &mut db.claims;
        let vis = c.visibility;
        let st = c
            .cursors
            .entry((topic.to_string(), group.to_string(), part))
            .or_insert_with(|| ClaimState::new(start_offset));
        let now = Instant::now();
        st.expire(now, vis);
        let from = st.cursor.max(start_offset);
        let to = from.saturating_add(limit).min(hw.max(from));
        if to > from {
            st.cursor = to;
            st.pending.push((from, to, now));
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
    // As the real handler: with no messages, next_offset is the computed start offset.
    let next_offset = messages.last().map_or(start_offset, |m| m.offset + 1);
    let has_more = messages.len() as u64 == limit;
    Ok(Consumed {
        messages,
        next_offset,
        has_more,
    })
}

pub fn ack(db: &mut Db, topic: &str, group: &str, part: u32, upto: u64) -> Result<(), SqlError> {
    if load_topic(db, topic).is_none() {
        return Err(not_found(topic));
    }
    db.conn.execute(
        "INSERT INTO __kalam_topic_offsets (topic, grp, part, committed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (topic, grp, part) DO UPDATE SET committed = MAX(committed, excluded.committed)",
        rusqlite::params![topic, group, part, upto as i64],
    )?;
    let c = &mut db.claims;
    c.cursors
        .entry((topic.to_string(), group.to_string(), part))
        .or_insert_with(|| ClaimState::new(upto + 1))
        .ack_up_to(upto);
    if c.ack_log.len() < ACK_LOG_MAX {
        c.ack_log.push(AckRecord {
            topic_id: topic.to_string(),
            group_id: group.to_string(),
            partition_id: part,
            upto_offset: upto,
            at_ms: now_ms(),
        });
    }
    Ok(())
}

/// The test route's `topic_state`: committed offsets and live claims of every group.
pub fn state_json(db: &Db) -> Value {
    let mut offsets = Vec::new();
    if let Ok(mut st) = db.conn.prepare_cached(
        "SELECT topic, grp, part, committed FROM __kalam_topic_offsets ORDER BY topic, grp, part",
    ) {
        if let Ok(rows) = st.query_map([], |r| {
            Ok(
                json!({"topic_id": r.get::<_, String>(0)?, "group_id": r.get::<_, String>(1)?,
                "partition_id": r.get::<_, i64>(2)?, "last_acked_offset": r.get::<_, i64>(3)?}),
            )
        }) {
            offsets.extend(rows.flatten());
        }
    }
    let claims: Vec<Value> = db
        .claims
        .cursors
        .iter()
        .map(|((t, g, p), st)| {
            json!({"topic_id": t, "group_id": g, "partition_id": p, "cursor": st.cursor,
                "pending": st.pending.iter().map(|(s, e, _)| json!([s, e])).collect::<Vec<_>>()})
        })
        .collect();
    json!({"offsets": offsets, "claims": claims, "acks": db.claims.ack_log})
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
