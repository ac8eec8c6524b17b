//! The storage engine: SQLite (bundled) holds every table; KalamDB semantics (namespaces,
//! USER/SHARED/STREAM tables, `_seq`/`_deleted`, soft deletes, per-user isolation) are layered
//! on top by rewriting the `sqlparser` AST. SQLite evaluates every expression and query.

use crate::sqltext::{paren_group, quote_ident, quote_literal, Toks};
use crate::types::{now_ms, now_us, KType, Role, SeqGen, SqlError};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlparser::ast::{
    Expr, Ident, LimitClause, ObjectName, ObjectNamePart, OrderBy, OrderByKind, Query, SelectItem,
    SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableKind {
    User,
    Shared,
    Stream,
}

impl TableKind {
    pub fn lower(&self) -> &'static str {
        match self {
            TableKind::User => "user",
            TableKind::Shared => "shared",
            TableKind::Stream => "stream",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    Public,
    Private,
    Restricted,
    Dba,
}

impl Access {
    fn can_read(&self, r: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Private | Access::Restricted => r >= Role::Service,
            Access::Dba => r >= Role::Dba,
        }
    }
    fn can_write(&self, r: Role) -> bool {
        match self {
            Access::Dba => r >= Role::Dba,
            _ => r >= Role::Service,
        }
    }
    pub fn title(&self) -> &'static str {
        match self {
            Access::Public => "Public",
            Access::Private => "Private",
            Access::Restricted => "Restricted",
            Access::Dba => "Dba",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum DefaultSpec {
    Snowflake,
    Now,
    CurrentUser,
    Literal(Value),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ktype: KType,
    pub nullable: bool,
    pub pk: bool,
    pub default: Option<DefaultSpec>,
}

impl ColumnDef {
    /// This column as a schema entry under the name `name` (its own, or a projection alias).
    pub fn field(&self, name: impl Into<String>) -> SchemaField {
        SchemaField::new(name, self.ktype.clone(), self.flags())
    }

    pub fn flags(&self) -> Vec<&'static str> {
        if self.pk {
            vec!["pk", "nn", "uq"]
        } else if !self.nullable {
            vec!["nn"]
        } else {
            vec![]
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableDef {
    pub namespace: String,
    pub name: String,
    pub kind: TableKind,
    pub access: Access,
    pub columns: Vec<ColumnDef>,
    pub ttl_seconds: Option<i64>,
    pub created_at_ms: i64,
}

impl TableDef {
    pub fn id(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
    pub fn phys(&self) -> String {
        quote_ident(&self.id())
    }
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn pk_cols(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| self.columns[i].pk)
            .collect()
    }
    /// Schema of `SELECT *`: user columns then `_seq` and `_deleted` (§9.2).
    pub fn full_schema(&self) -> Vec<SchemaField> {
        let mut v: Vec<SchemaField> = self
            .columns
            .iter()
            .map(|c| c.field(c.name.clone()))
            .collect();
        v.push(SchemaField::new("_seq", KType::BigInt, vec!["nn"]));
        v.push(SchemaField::new("_deleted", KType::Boolean, vec!["nn"]));
        v
    }
    /// Which rows a caller may see: their own partition for USER/STREAM, live rows only.
    pub fn visibility(&self, owner: &str) -> String {
        let mut w = String::from("_deleted = 0");
        if self.kind != TableKind::Shared {
            w.push_str(&format!(" AND _user = {}", quote_literal(owner)));
        }
        if let (TableKind::Stream, Some(ttl)) = (self.kind, self.ttl_seconds) {
            let min = (now_ms() - ttl * 1000 - crate::types::SNOWFLAKE_EPOCH_MS).max(0) << 22;
            w.push_str(&format!(" AND _seq >= {min}"));
        }
        w
    }
    /// The derived table that replaces `ns.t` in rewritten queries.
    pub fn derived_sql(&self, owner: &str, with_rowid: bool) -> String {
        let mut cols: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        cols.push("_seq".into());
        cols.push("_deleted".into());
        if with_rowid {
            cols.insert(0, "_rowid_ AS __rid".into());
        }
        format!(
            "SELECT {} FROM {} WHERE {}",
            cols.join(", "),
            self.phys(),
            self.visibility(owner)
        )
    }
    fn columns_json(&self) -> String {
        let mut v: Vec<Value> = Vec::new();
        let mut all = self.columns.clone();
        all.push(ColumnDef {
            name: "_seq".into(),
            ktype: KType::BigInt,
            nullable: false,
            pk: false,
            default: None,
        });
        all.push(ColumnDef {
            name: "_deleted".into(),
            ktype: KType::Boolean,
            nullable: false,
            pk: false,
            default: Some(DefaultSpec::Literal(json!(false))),
        });
        for (i, c) in all.iter().enumerate() {
            let default = match &c.default {
                None => json!("None"),
                Some(DefaultSpec::Snowflake) => {
                    json!({"FunctionCall": {"name": "SNOWFLAKE_ID", "args": []}})
                }
                Some(DefaultSpec::Now) => json!({"FunctionCall": {"name": "NOW", "args": []}}),
                Some(DefaultSpec::CurrentUser) => {
                    json!({"FunctionCall": {"name": "CURRENT_USER", "args": []}})
                }
                Some(DefaultSpec::Literal(v)) => json!({ "Literal": v }),
            };
            let comment = match c.name.as_str() {
                "_seq" => json!("Version ID (MVCC) with embedded timestamp"),
                "_deleted" => json!("Soft delete flag"),
                _ => Value::Null,
            };
            v.push(
                json!({"column_id": i + 1, "column_name": c.name, "column_comment": comment,
                "data_type": c.ktype.to_json(), "default_value": default, "ordinal_position": i + 1,
                "is_nullable": c.nullable, "is_primary_key": c.pk, "is_partition_key": false}),
            );
        }
        Value::Array(v).to_string()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SchemaField {
    pub name: String,
    pub ktype: KType,
    pub flags: Vec<&'static str>,
}

impl SchemaField {
    pub fn new(name: impl Into<String>, ktype: KType, flags: Vec<&'static str>) -> SchemaField {
        SchemaField {
            name: name.into(),
            ktype,
            flags,
        }
    }

    pub fn to_json(&self, index: usize) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("data_type".into(), self.ktype.to_json());
        m.insert("index".into(), json!(index));
        if !self.flags.is_empty() {
            m.insert("flags".into(), json!(self.flags));
        }
        Value::Object(m)
    }
}

/// One stored row version.
#[derive(Clone, Debug)]
pub struct FullRow {
    pub values: Vec<SqlValue>,
    pub seq: i64,
    pub deleted: bool,
    pub owner: String,
}

impl FullRow {
    /// All columns as a JSON object (§1.6 encoding), including `_seq` and `_deleted`.
    pub fn to_object(&self, t: &TableDef) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        for (c, v) in t.columns.iter().zip(&self.values) {
            m.insert(c.name.clone(), c.ktype.encode(v));
        }
        m.insert("_seq".into(), json!(self.seq.to_string()));
        m.insert("_deleted".into(), json!(self.deleted));
        m
    }
    pub fn pk_key(&self, t: &TableDef) -> Option<String> {
        let pks = t.pk_cols();
        match pks.len() {
            0 => None,
            1 => Some(match t.columns[pks[0]].ktype.encode(&self.values[pks[0]]) {
                Value::String(s) => s,
                v => v.to_string(),
            }),
            _ => {
                let mut m = serde_json::Map::new();
                for &i in &pks {
                    m.insert(
                        t.columns[i].name.clone(),
                        t.columns[i].ktype.encode(&self.values[i]),
                    );
                }
                Some(Value::Object(m).to_string())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

/// A committed write: feeds live queries and topics.
#[derive(Clone, Debug)]
pub struct ChangeEvent {
    pub table: Arc<TableDef>,
    pub kind: ChangeKind,
    /// Row owner for USER/STREAM tables; the writer for SHARED tables.
    pub user: String,
    pub old: Option<FullRow>,
    /// New version; for deletes the tombstone (old values, `_deleted`, new `_seq`).
    pub new: FullRow,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub role: Role,
    pub email: Option<String>,
    pub password_hash: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl User {
    pub fn info(&self) -> Value {
        json!({"id": self.id, "role": self.role.as_str(), "email": self.email,
            "created_at": crate::types::rfc3339_ms(self.created_at_ms),
            "updated_at": crate::types::rfc3339_ms(self.updated_at_ms)})
    }
    pub fn check_password(&self, pw: &str) -> bool {
        !self.password_hash.is_empty() && hash_password(&self.id, pw) == self.password_hash
    }
}

pub fn hash_password(user: &str, pw: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"kalam-testserver:");
    h.update(user.as_bytes());
    h.update([0]);
    h.update(pw.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The effective identity of a statement.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: String,
    pub role: Role,
}

#[derive(Debug)]
pub enum StmtOutput {
    Rows {
        schema: Vec<SchemaField>,
        rows: Vec<Vec<Value>>,
    },
    Dml {
        kind: ChangeKind,
        count: usize,
    },
    Message(String),
}

pub struct Limits {
    pub default_query_limit: usize,
    pub max_query_limit: usize,
}

pub struct Db {
    pub conn: Connection,
    pub catalog: HashMap<String, Arc<TableDef>>,
    pub namespaces: BTreeMap<String, i64>,
    pub seq: Arc<SeqGen>,
    current_user: Arc<Mutex<String>>,
    pub commit_seq: u64,
    pub limits: Limits,
    /// Events of an open explicit transaction, published on COMMIT.
    pub tx_events: Option<Vec<ChangeEvent>>,
    /// Topic claim cursors: in memory only, cleared by a restart.
    pub claims: crate::topics::Claims,
}

const META_DDL: &str = "
CREATE TABLE IF NOT EXISTS __kalam_namespaces (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __kalam_tables (id TEXT PRIMARY KEY, def TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS __kalam_users (id TEXT PRIMARY KEY, role TEXT NOT NULL, email TEXT,
  password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __kalam_topics (id TEXT PRIMARY KEY, def TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS __kalam_topic_msgs (topic TEXT NOT NULL, part INTEGER NOT NULL,
  off INTEGER NOT NULL, payload BLOB NOT NULL, key TEXT, ts INTEGER NOT NULL, user TEXT, op TEXT NOT NULL,
  PRIMARY KEY (topic, part, off));
CREATE TABLE IF NOT EXISTS __kalam_topic_offsets (topic TEXT NOT NULL, grp TEXT NOT NULL,
  part INTEGER NOT NULL, committed INTEGER NOT NULL, PRIMARY KEY (topic, grp, part));
CREATE TABLE IF NOT EXISTS __kalam_files (ns TEXT NOT NULL, tbl TEXT NOT NULL, owner TEXT NOT NULL,
  sub TEXT NOT NULL, stored TEXT NOT NULL, mime TEXT NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (ns, tbl, owner, sub, stored));
";

impl Db {
    pub fn open(data_dir: Option<&Path>, limits: Limits) -> Result<Db, String> {
        let conn = match data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                Connection::open(d.join("kalam-testserver.sqlite3")).map_err(|e| e.to_string())?
            }
            None => Connection::open_in_memory().map_err(|e| e.to_string())?,
        };
        conn.execute_batch(META_DDL).map_err(|e| e.to_string())?;
        let seq = Arc::new(SeqGen::default());
        let current_user = Arc::new(Mutex::new(String::new()));
        register_functions(&conn, seq.clone(), current_user.clone()).map_err(|e| e.to_string())?;
        let mut db = Db {
            conn,
            catalog: HashMap::new(),
            namespaces: BTreeMap::new(),
            seq,
            current_user,
            commit_seq: 0,
            limits,
            tx_events: None,
            claims: crate::topics::Claims::default(),
        };
        db.load().map_err(|e| e.to_string())?;
        Ok(db)
    }

    fn load(&mut self) -> rusqlite::Result<()> {
        let mut st = self
            .conn
            .prepare("SELECT name, created_at FROM __kalam_namespaces")?;
        let ns: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        drop(st);
        self.namespaces.extend(ns);
        self.namespaces.entry("default".into()).or_insert(now_ms());
        let mut st = self.conn.prepare("SELECT def FROM __kalam_tables")?;
        let defs: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        drop(st);
        for d in defs {
            if let Ok(t) = serde_json::from_str::<TableDef>(&d) {
                let max: Option<i64> = self.conn.query_row(
                    &format!("SELECT MAX(_seq) FROM {}", t.phys()),
                    [],
                    |r| r.get(0),
                )?;
                if let Some(m) = max {
                    self.seq.observe(m);
                }
                self.catalog
                    .insert(t.id().to_ascii_lowercase(), Arc::new(t));
            }
        }
        Ok(())
    }

    pub fn table(&self, ns: &str, name: &str) -> Option<Arc<TableDef>> {
        self.catalog
            .get(&format!("{ns}.{name}").to_ascii_lowercase())
            .cloned()
    }

    /// Resolves `ns.t` / `t` (with the request namespace) to a table.
    pub fn resolve(&self, parts: &[String], default_ns: &str) -> Option<Arc<TableDef>> {
        match parts {
            [t] => self.table(default_ns, t),
            [ns, t] => self.table(ns, t),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- users

    /// Whether `actor` may act as user `target` (EXECUTE AS USER, cross-user downloads):
    /// system anyone, dba up to dba, service up to service, a user only itself.
    /// `Err` carries the target's role for the error message.
    pub fn may_act_as(&self, actor: &Actor, target: &str) -> Result<(), Role> {
        let target_role = self.user(target).map(|u| u.role).unwrap_or(Role::User);
        let allowed = match actor.role {
            Role::System => true,
            Role::Dba => target_role <= Role::Dba,
            Role::Service => target_role <= Role::Service,
            Role::User => target == actor.user,
        };
        if allowed {
            Ok(())
        } else {
            Err(target_role)
        }
    }

    pub fn user(&self, id: &str) -> Option<User> {
        self.conn
            .query_row(
                "SELECT id, role, email, password_hash, created_at, updated_at FROM __kalam_users WHERE id = ?1",
                [id],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::User),
                        email: r.get(2)?,
                        password_hash: r.get(3)?,
                        created_at_ms: r.get(4)?,
                        updated_at_ms: r.get(5)?,
                    })
                },
            )
            .optional()
            .ok()
            .flatten()
    }

    pub fn put_user(&self, u: &User) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO __kalam_users (id, role, email, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![u.id, u.role.as_str(), u.email, u.password_hash, u.created_at_ms, u.updated_at_ms],
        )?;
        Ok(())
    }

    pub fn delete_user(&self, id: &str) -> rusqlite::Result<usize> {
        self.conn
            .execute("DELETE FROM __kalam_users WHERE id = ?1", [id])
    }

    /// Creates root (role `system`) on first start; `password` None leaves setup pending.
    pub fn ensure_root(&self, password: Option<&str>) -> rusqlite::Result<()> {
        let now = now_ms();
        match self.user("root") {
            None => self.put_user(&User {
                id: "root".into(),
                role: Role::System,
                email: Some("root@localhost".into()),
                password_hash: password
                    .filter(|p| !p.is_empty())
                    .map(|p| hash_password("root", p))
                    .unwrap_or_default(),
                created_at_ms: now,
                updated_at_ms: now,
            }),
            Some(mut u) => {
                if let Some(p) = password.filter(|p| !p.is_empty()) {
                    u.password_hash = hash_password("root", p);
                    self.put_user(&u)?;
                }
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------- execution

    fn set_session_user(&self, user: &str) {
        *self.current_user.lock().unwrap_or_else(|e| e.into_inner()) = user.to_string();
    }

    pub fn next_commit_seq(&mut self) -> u64 {
        self.commit_seq += 1;
        self.commit_seq
    }

    /// Executes one statement (already unwrapped from EXECUTE AS USER).
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<StmtOutput, SqlError> {
        self.set_session_user(&actor.user);
        let normalized = crate::sqltext::normalize_functions(sql);
        let sql = normalized.as_str();
        if let Some(out) = self.execute_kalam(sql, ns, actor)? {
            return Ok(out);
        }
        let mut stmts = Parser::parse_sql(&GenericDialect {}, sql)
            .map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
        if stmts.len() != 1 {
            return Err(SqlError::invalid_sql("Expected exactly one statement"));
        }
        let stmt = stmts.remove(0);
        match stmt {
            Statement::Query(q) => self.select(*q, params, ns, actor, true),
            Statement::Insert(ins) => self.insert(ins, params, ns, actor, events),
            Statement::Update {
                table,
                assignments,
                selection,
                from,
                ..
            } => {
                if from.is_some() {
                    return Err(SqlError::exec("UPDATE ... FROM is not supported"));
                }
                self.update(table, assignments, selection, params, ns, actor, events)
            }
            Statement::Delete(d) => self.delete(d, params, ns, actor, events),
            Statement::StartTransaction { .. } => {
                if self.tx_events.is_some() {
                    return Err(SqlError::exec("A transaction is already open"));
                }
                self.conn.execute_batch("BEGIN")?;
                self.tx_events = Some(Vec::new());
                Ok(StmtOutput::Message("Transaction started".into()))
            }
            Statement::Commit { .. } => {
                let Some(evs) = self.tx_events.take() else {
                    return Err(SqlError::exec("No open transaction"));
                };
                self.conn.execute_batch("COMMIT")?;
                events.extend(evs);
                Ok(StmtOutput::Message("Transaction committed".into()))
            }
            Statement::Rollback { .. } => {
                if self.tx_events.take().is_none() {
                    return Err(SqlError::exec("No open transaction"));
                }
                self.conn.execute_batch("ROLLBACK")?;
                Ok(StmtOutput::Message("Transaction rolled back".into()))
            }
            other => Err(SqlError::invalid_sql(format!(
                "Unsupported statement: {}",
                other.to_string().split_whitespace().next().unwrap_or("")
            ))),
        }
    }

    /// Rolls back a transaction left open at the end of a request.
    pub fn abort_open_tx(&mut self) -> bool {
        if self.tx_events.take().is_some() {
            let _ = self.conn.execute_batch("ROLLBACK");
            true
        } else {
            false
        }
    }

    /// KalamDB statements outside standard SQL; None when the statement is plain SQL.
    fn execute_kalam(
        &mut self,
        sql: &str,
        ns: &str,
        actor: &Actor,
    ) -> Result<Option<StmtOutput>, SqlError> {
        let mut t =
            Toks::new(sql).map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
        let admin = actor.role.is_admin();
        let need_admin = |what: &str| -> Result<(), SqlError> {
            if admin {
                Ok(())
            } else {
                Err(SqlError::denied(format!(
                    "Admin privileges (DBA or System role) required for {what}"
                ))
                .unprefixed())
            }
        };
        if t.kws(&["CREATE", "NAMESPACE"]) {
            need_admin("CREATE NAMESPACE")?;
            let ine = t.kws(&["IF", "NOT", "EXISTS"]);
            let name = t
                .name()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: namespace name expected"))?;
            if self.namespaces.contains_key(&name) {
                if ine {
                    return Ok(Some(StmtOutput::Message(format!(
                        "Namespace '{name}' already exists"
                    ))));
                }
                return Err(SqlError::safe_exec(format!(
                    "Namespace '{name}' already exists"
                )));
            }
            if name.eq_ignore_ascii_case("system") || name.contains('.') {
                return Err(SqlError::safe_exec(format!(
                    "Namespace name '{name}' is reserved or invalid"
                )));
            }
            let now = now_ms();
            self.conn.execute(
                "INSERT INTO __kalam_namespaces (name, created_at) VALUES (?1, ?2)",
                rusqlite::params![name, now],
            )?;
            self.namespaces.insert(name.clone(), now);
            return Ok(Some(StmtOutput::Message(format!(
                "Namespace '{name}' created successfully"
            ))));
        }
        if t.kws(&["DROP", "NAMESPACE"]) {
            need_admin("DROP NAMESPACE")?;
            let ie = t.kws(&["IF", "EXISTS"]);
            let name = t
                .name()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: namespace name expected"))?;
            if !self.namespaces.contains_key(&name) {
                if ie {
                    return Ok(Some(StmtOutput::Message(format!(
                        "Namespace '{name}' does not exist"
                    ))));
                }
                return Err(SqlError::safe_exec(format!("Namespace '{name}' not found")));
            }
            let tables: Vec<Arc<TableDef>> = self
                .catalog
                .values()
                .filter(|d| d.namespace == name)
                .cloned()
                .collect();
            for d in tables {
                self.drop_table(&d)?;
            }
            self.conn
                .execute("DELETE FROM __kalam_namespaces WHERE name = ?1", [&name])?;
            self.namespaces.remove(&name);
            return Ok(Some(StmtOutput::Message(format!(
                "Namespace '{name}' dropped successfully"
            ))));
        }
        if t.peek_kw("CREATE")
            && (t.peek_kw_at(1, "TABLE")
                || (t.peek_kw_at(2, "TABLE")
                    && (t.peek_kw_at(1, "USER")
                        || t.peek_kw_at(1, "SHARED")
                        || t.peek_kw_at(1, "STREAM"))))
        {
            return self.create_table(sql, ns, actor).map(Some);
        }
        if t.kws(&["DROP", "TABLE"]) {
            let ie = t.kws(&["IF", "EXISTS"]);
            let parts = t
                .dotted()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: table name expected"))?;
            let Some(d) = self.resolve(&parts, ns) else {
                if ie {
                    return Ok(Some(StmtOutput::Message(format!(
                        "Table {} does not exist",
                        parts.join(".")
                    ))));
                }
                return Err(SqlError::exec(format!(
                    "Table '{}' not found",
                    parts.join(".")
                )));
            };
            if !(admin || (d.kind != TableKind::Shared && actor.role >= Role::Service)) {
                return Err(SqlError::denied(format!(
                    "Permission denied: cannot drop table '{}'",
                    d.id()
                )));
            }
            self.drop_table(&d)?;
            return Ok(Some(StmtOutput::Message(format!(
                "Table {} dropped successfully",
                d.id()
            ))));
        }
        if t.kws(&["CREATE", "USER"]) {
            need_admin("CREATE USER")?;
            let ine = t.kws(&["IF", "NOT", "EXISTS"]);
            let id = t
                .name()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: user name expected"))?;
            let mut pw = None;
            let mut role = Role::User;
            let mut email = None;
            loop {
                if t.kws(&["WITH", "PASSWORD"]) || t.kw("PASSWORD") {
                    pw = t.name();
                } else if t.kw("ROLE") {
                    role = t
                        .name()
                        .and_then(|r| Role::parse(&r))
                        .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: unknown role"))?;
                } else if t.kw("EMAIL") {
                    email = t.name();
                } else if t.done() {
                    break;
                } else {
                    return Err(SqlError::invalid_sql(
                        "Invalid SQL: unexpected token in CREATE USER",
                    ));
                }
            }
            if !valid_user_id(&id) {
                return Err(SqlError::safe_exec(format!("Invalid user id '{id}'")));
            }
            if self.user(&id).is_some() {
                if ine {
                    return Ok(Some(StmtOutput::Message(format!(
                        "User '{id}' already exists"
                    ))));
                }
                return Err(SqlError::safe_exec(format!("User '{id}' already exists")));
            }
            if role == Role::System && actor.role != Role::System {
                return Err(SqlError::denied(
                    "Only system users can create system users",
                ));
            }
            let now = now_ms();
            self.put_user(&User {
                password_hash: pw.map(|p| hash_password(&id, &p)).unwrap_or_default(),
                id: id.clone(),
                role,
                email,
                created_at_ms: now,
                updated_at_ms: now,
            })?;
            return Ok(Some(StmtOutput::Message(format!("User '{id}' created"))));
        }
        if t.kws(&["ALTER", "USER"]) {
            let id = t
                .name()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: user name expected"))?;
            if !(admin || id == actor.user) {
                return Err(SqlError::denied(
                    "Admin privileges (DBA or System role) required for ALTER USER",
                )
                .unprefixed());
            }
            let mut u = self
                .user(&id)
                .ok_or_else(|| SqlError::safe_exec(format!("User '{id}' not found")))?;
            t.kw("SET");
            loop {
                if t.kw("PASSWORD") {
                    let p = t
                        .name()
                        .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: password expected"))?;
                    u.password_hash = hash_password(&id, &p);
                } else if t.kw("ROLE") {
                    if !admin {
                        return Err(SqlError::denied("Only admins can change roles"));
                    }
                    u.role = t
                        .name()
                        .and_then(|r| Role::parse(&r))
                        .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: unknown role"))?;
                } else if t.kw("EMAIL") {
                    u.email = t.name();
                } else if t.done() {
                    break;
                } else if !(t.tok(&sqlparser::tokenizer::Token::Comma) || t.kw("SET")) {
                    return Err(SqlError::invalid_sql(
                        "Invalid SQL: unexpected token in ALTER USER",
                    ));
                }
            }
            u.updated_at_ms = now_ms();
            self.put_user(&u)?;
            return Ok(Some(StmtOutput::Message(format!("User '{id}' updated"))));
        }
        if t.kws(&["DROP", "USER"]) {
            need_admin("DROP USER")?;
            let ie = t.kws(&["IF", "EXISTS"]);
            let id = t
                .name()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: user name expected"))?;
            if id == "root" {
                return Err(SqlError::denied("Cannot drop the root user"));
            }
            if self.delete_user(&id)? == 0 && !ie {
                return Err(SqlError::safe_exec(format!("User '{id}' not found")));
            }
            return Ok(Some(StmtOutput::Message(format!("User '{id}' dropped"))));
        }
        if t.kws(&["SHOW", "TABLES"]) {
            let only_ns = if t.kw("IN") || t.kw("FROM") {
                t.name()
            } else {
                None
            };
            return Ok(Some(self.show_tables(only_ns.as_deref(), actor)));
        }
        if t.kws(&["SHOW", "NAMESPACES"]) {
            let rows = self
                .namespaces
                .iter()
                .map(|(n, c)| vec![json!(n), json!(c * 1000)])
                .collect();
            return Ok(Some(StmtOutput::Rows {
                schema: vec![
                    SchemaField::new("namespace_id", KType::Text, vec!["pk", "nn", "uq"]),
                    SchemaField::new("created_at", KType::Timestamp, vec!["nn"]),
                ],
                rows,
            }));
        }
        if t.kw("DESCRIBE") || t.kw("DESC") {
            need_admin("DESCRIBE")?;
            t.kw("TABLE");
            let parts = t
                .dotted()
                .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: table name expected"))?;
            let d = self
                .resolve(&parts, ns)
                .ok_or_else(|| SqlError::exec(format!("Table '{}' not found", parts.join("."))))?;
            let schema = vec![
                SchemaField::new("column_name", KType::Text, vec!["nn"]),
                SchemaField::new("ordinal_position", KType::Int, vec!["nn"]),
                SchemaField::new("data_type", KType::Text, vec!["nn"]),
                SchemaField::new("is_nullable", KType::Boolean, vec!["nn"]),
                SchemaField::new("is_primary_key", KType::Boolean, vec!["nn"]),
            ];
            let rows = d
                .full_schema()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let dt = match f.ktype.to_json() {
                        Value::String(s) => s,
                        v => v.to_string(),
                    };
                    vec![
                        json!(f.name),
                        json!(i + 1),
                        json!(dt),
                        json!(!f.flags.contains(&"nn")),
                        json!(f.flags.contains(&"pk")),
                    ]
                })
                .collect();
            return Ok(Some(StmtOutput::Rows { schema, rows }));
        }
        if t.peek_kw("STORAGE") || t.kws(&["FLUSH", "TABLE"]) {
            return Ok(Some(StmtOutput::Message("Flush started".into())));
        }
        crate::topics::execute_topic_sql(self, &mut t, sql, ns, actor)
    }

    fn drop_table(&mut self, d: &TableDef) -> Result<(), SqlError> {
        self.conn
            .execute_batch(&format!("DROP TABLE IF EXISTS {}", d.phys()))?;
        self.conn.execute(
            "DELETE FROM __kalam_tables WHERE id = ?1",
            [d.id().to_ascii_lowercase()],
        )?;
        self.catalog.remove(&d.id().to_ascii_lowercase());
        Ok(())
    }

    fn show_tables(&self, only_ns: Option<&str>, actor: &Actor) -> StmtOutput {
        let f = SchemaField::new;
        let schema = vec![
            f("table_id", KType::Text, vec!["pk", "nn", "uq"]),
            f("table_name", KType::Text, vec!["nn"]),
            f("namespace_id", KType::Text, vec!["nn"]),
            f("table_type", KType::Text, vec!["nn"]),
            f("created_at", KType::Timestamp, vec!["nn"]),
            f("schema_version", KType::Int, vec!["nn"]),
            f("columns", KType::Json, vec!["nn"]),
            f("table_comment", KType::Text, vec![]),
            f("updated_at", KType::Timestamp, vec!["nn"]),
            f("options", KType::Json, vec![]),
            f("access_level", KType::Text, vec![]),
            f("is_latest", KType::Boolean, vec!["nn"]),
            f("storage_id", KType::Text, vec![]),
            f("use_user_storage", KType::Boolean, vec![]),
        ];
        let mut defs: Vec<&Arc<TableDef>> = self
            .catalog
            .values()
            .filter(|d| only_ns.is_none_or(|n| d.namespace == n))
            .filter(|d| d.kind != TableKind::Shared || d.access.can_read(actor.role))
            .collect();
        defs.sort_by_key(|d| d.id());
        let rows = defs
            .iter()
            .map(|d| {
                let created = d.created_at_ms * 1000;
                let options = match d.kind {
                    TableKind::User => json!({"table_type": "USER", "storage_id": "local", "use_user_storage": false, "flush_policy": null, "compression": "snappy"}),
                    TableKind::Shared => json!({"table_type": "SHARED", "storage_id": "local", "access_level": d.access.title(), "flush_policy": null, "compression": "snappy"}),
                    TableKind::Stream => json!({"table_type": "STREAM", "ttl_seconds": d.ttl_seconds, "eviction_strategy": "time_based", "max_stream_size_bytes": 0, "compression": "snappy"}),
                };
                vec![
                    json!(format!("{}:{}", d.namespace, d.name)),
                    json!(d.name),
                    json!(d.namespace),
                    json!(d.kind.lower()),
                    json!(created),
                    json!(1),
                    json!(d.columns_json()),
                    Value::Null,
                    json!(created),
                    json!(options.to_string()),
                    if d.kind == TableKind::Shared { json!(d.access.title().to_ascii_lowercase()) } else { Value::Null },
                    json!(true),
                    json!("local"),
                    if d.kind == TableKind::User { json!(false) } else { Value::Null },
                ]
            })
            .collect();
        StmtOutput::Rows { schema, rows }
    }

    fn create_table(&mut self, sql: &str, ns: &str, actor: &Actor) -> Result<StmtOutput, SqlError> {
        let mut t =
            Toks::new(sql).map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
        t.kw("CREATE");
        let mut kind = if t.kw("SHARED") {
            Some(TableKind::Shared)
        } else if t.kw("STREAM") {
            Some(TableKind::Stream)
        } else if t.kw("USER") {
            Some(TableKind::User)
        } else {
            None
        };
        t.kw("TABLE");
        let ine = t.kws(&["IF", "NOT", "EXISTS"]);
        let parts = t
            .dotted()
            .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: table name expected"))?;
        let (tns, tname) = match parts.as_slice() {
            [n] => (ns.to_string(), n.clone()),
            [a, b] => (a.clone(), b.clone()),
            _ => return Err(SqlError::invalid_sql("Invalid SQL: bad table name")),
        };
        let (open, close) = paren_group(sql, 0)
            .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: column list expected"))?;
        let body = &sql[open + 1..close];
        let rest = &sql[close + 1..];
        // Table options: WITH (TYPE = 'USER', ACCESS_LEVEL = 'PUBLIC', TTL_SECONDS = 3600, ...)
        let mut opts: HashMap<String, String> = HashMap::new();
        let mut rt =
            Toks::new(rest).map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
        if rt.kw("WITH") {
            use sqlparser::tokenizer::Token;
            if !rt.tok(&Token::LParen) {
                return Err(SqlError::invalid_sql("Invalid SQL: WITH ( expected"));
            }
            loop {
                let k = rt
                    .name()
                    .ok_or_else(|| SqlError::invalid_sql("Invalid SQL: option name expected"))?;
                rt.tok(&Token::Eq);
                let v = match rt.number() {
                    Some(n) => n.to_string(),
                    None => rt.name().ok_or_else(|| {
                        SqlError::invalid_sql("Invalid SQL: option value expected")
                    })?,
                };
                opts.insert(k.to_ascii_uppercase(), v);
                if rt.tok(&Token::RParen) {
                    break;
                }
                if !rt.tok(&Token::Comma) {
                    return Err(SqlError::invalid_sql(
                        "Invalid SQL: , or ) expected in WITH",
                    ));
                }
            }
        }
        if !rt.done() {
            return Err(SqlError::invalid_sql(
                "Invalid SQL: unexpected text after CREATE TABLE",
            ));
        }
        if let Some(ty) = opts.get("TYPE") {
            kind = Some(match ty.to_ascii_uppercase().as_str() {
                "USER" => TableKind::User,
                "SHARED" => TableKind::Shared,
                "STREAM" => TableKind::Stream,
                other => {
                    return Err(SqlError::invalid_sql(format!(
                        "Invalid SQL: unknown table type {other}"
                    )))
                }
            });
        }
        let kind = kind.unwrap_or(TableKind::User);
        if kind == TableKind::Shared && !actor.role.is_admin() {
            return Err(SqlError::denied(
                "Admin privileges (DBA or System role) required for CREATE SHARED TABLE",
            )
            .unprefixed());
        }
        let access = match opts.get("ACCESS_LEVEL").map(|s| s.to_ascii_uppercase()) {
            None => Access::Private,
            Some(a) => match a.as_str() {
                "PUBLIC" => Access::Public,
                "PRIVATE" => Access::Private,
                "RESTRICTED" => Access::Restricted,
                "DBA" => Access::Dba,
                _ => {
                    return Err(SqlError::invalid_sql(format!(
                        "Invalid SQL: unknown access level {a}"
                    )))
                }
            },
        };
        if !self.namespaces.contains_key(&tns) {
            return Err(SqlError::safe_exec(format!(
                "Namespace '{tns}' does not exist"
            )));
        }
        if self.table(&tns, &tname).is_some() {
            if ine {
                return Ok(StmtOutput::Message(format!(
                    "Table {tns}.{tname} already exists"
                )));
            }
            return Err(SqlError::safe_exec(format!(
                "Table '{tns}.{tname}' already exists"
            )));
        }
        let parsed = Parser::parse_sql(&GenericDialect {}, &format!("CREATE TABLE t ({body})"))
            .map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
        let Some(Statement::CreateTable(ct)) = parsed.into_iter().next() else {
            return Err(SqlError::invalid_sql("Invalid SQL: CREATE TABLE expected"));
        };
        let mut columns = Vec::new();
        for c in &ct.columns {
            let name = c.name.value.clone();
            if name.starts_with('_') && (name == "_seq" || name == "_deleted") {
                return Err(SqlError::safe_exec(format!(
                    "Column name '{name}' is reserved"
                )));
            }
            let ktype = KType::parse(&c.data_type.to_string()).ok_or_else(|| {
                SqlError::invalid_sql(format!(
                    "Invalid SQL: unsupported data type {}",
                    c.data_type
                ))
            })?;
            let mut col = ColumnDef {
                name,
                ktype,
                nullable: true,
                pk: false,
                default: None,
            };
            for o in &c.options {
                let s = o.option.to_string();
                let up = s.to_ascii_uppercase();
                if up.starts_with("PRIMARY KEY") {
                    col.pk = true;
                    col.nullable = false;
                } else if up == "NOT NULL" {
                    col.nullable = false;
                } else if let Some(expr) = up.strip_prefix("DEFAULT ") {
                    let expr = expr.trim();
                    col.default = Some(match expr {
                        "SNOWFLAKE_ID()" => DefaultSpec::Snowflake,
                        "NOW()" | "CURRENT_TIMESTAMP" | "CURRENT_TIMESTAMP()" => DefaultSpec::Now,
                        "KDB_CURRENT_USER()" | "CURRENT_USER" => DefaultSpec::CurrentUser,
                        _ => {
                            let raw = s["DEFAULT ".len()..].trim();
                            let v: SqlValue =
                                self.conn
                                    .query_row(&format!("SELECT {raw}"), [], |r| r.get(0))?;
                            DefaultSpec::Literal(match v {
                                SqlValue::Integer(i) => json!(i),
                                SqlValue::Real(f) => json!(f),
                                SqlValue::Text(t) => json!(t),
                                _ => Value::Null,
                            })
                        }
                    });
                }
            }
            columns.push(col);
        }
        for con in &ct.constraints {
            let s = con.to_string();
            if s.to_ascii_uppercase().contains("PRIMARY KEY") {
                if let Some((a, b)) = paren_group(&s, 0) {
                    for n in s[a + 1..b].split(',') {
                        let n = n.trim().trim_matches('"');
                        if let Some(c) = columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(n))
                        {
                            c.pk = true;
                            c.nullable = false;
                        }
                    }
                }
            }
        }
        if !columns.iter().any(|c| c.pk) {
            return Err(SqlError::safe_exec(
                "PRIMARY KEY is required for CREATE TABLE",
            ));
        }
        let def = TableDef {
            namespace: tns.clone(),
            name: tname.clone(),
            kind,
            access,
            columns,
            ttl_seconds: opts.get("TTL_SECONDS").and_then(|v| v.parse().ok()),
            created_at_ms: now_ms(),
        };
        let cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.ktype.sqlite_decl()))
            .collect();
        let idx = quote_ident(&format!("{}__idx", def.id()));
        self.conn.execute_batch(&format!(
            "CREATE TABLE {p} ({cols}, _seq INTEGER NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0, _user TEXT NOT NULL DEFAULT '');
             CREATE INDEX {idx} ON {p} (_user, _seq);",
            p = def.phys(),
            cols = cols.join(", ")
        ))?;
        self.conn.execute(
            "INSERT INTO __kalam_tables (id, def) VALUES (?1, ?2)",
            rusqlite::params![
                def.id().to_ascii_lowercase(),
                serde_json::to_string(&def).unwrap_or_default()
            ],
        )?;
        self.catalog
            .insert(def.id().to_ascii_lowercase(), Arc::new(def));
        Ok(StmtOutput::Message(format!(
            "CREATE TABLE via Raft consensus: {} table {tns}.{tname} created successfully",
            kind.lower()
        )))
    }

    // ---------------------------------------------------------------- queries

    /// Rewrites every `ns.t` into the caller's visible derived table and checks read access.
    fn rewrite_tables<V: VisitMut>(
        &self,
        node: &mut V,
        ns: &str,
        actor: &Actor,
    ) -> Result<Vec<Arc<TableDef>>, SqlError> {
        self.rewrite_tables_with(node, ns, actor, vec![])
    }

    /// [`Self::rewrite_tables`] where `known` tables (an UPDATE/DELETE target, already
    /// physical in the SQL) also type the comparisons below.
    fn rewrite_tables_with<V: VisitMut>(
        &self,
        node: &mut V,
        ns: &str,
        actor: &Actor,
        known: Vec<Arc<TableDef>>,
    ) -> Result<Vec<Arc<TableDef>>, SqlError> {
        struct R<'a> {
            db: &'a Db,
            ns: &'a str,
            actor: &'a Actor,
            used: Vec<Arc<TableDef>>,
            err: Option<SqlError>,
        }
        impl VisitorMut for R<'_> {
            type Break = ();
            fn post_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
                let TableFactor::Table {
                    name,
                    alias,
                    args: None,
                    ..
                } = tf
                else {
                    return ControlFlow::Continue(());
                };
                let parts = object_parts(name);
                if parts.len() == 1 && parts[0].contains('.') {
                    return ControlFlow::Continue(());
                }
                let Some(def) = self.db.resolve(&parts, self.ns) else {
                    if parts.len() == 2 {
                        self.err = Some(SqlError::exec(format!(
                            "Error during planning: table '{}' not found",
                            parts.join(".")
                        )));
                        return ControlFlow::Break(());
                    }
                    return ControlFlow::Continue(());
                };
                if def.kind == TableKind::Shared && !def.access.can_read(self.actor.role) {
                    self.err = Some(SqlError::denied(format!(
                        "Permission denied: Access denied: Role '{}' cannot access table '{}'. Shared table read denied (access_level={})",
                        self.actor.role.title(), def.id(), def.access.title()
                    )));
                    return ControlFlow::Break(());
                }
                let alias_name = alias
                    .as_ref()
                    .map(|a| a.name.to_string())
                    .unwrap_or_else(|| quote_ident(&def.name));
                let q = format!(
                    "SELECT 1 FROM ({}) AS {}",
                    def.derived_sql(&self.actor.user, false),
                    alias_name
                );
                match Parser::parse_sql(&GenericDialect {}, &q) {
                    Ok(mut s) => {
                        if let Some(Statement::Query(q)) = s.pop() {
                            if let SetExpr::Select(sel) = *q.body {
                                if let Some(twj) = sel.from.into_iter().next() {
                                    *tf = twj.relation;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        self.err = Some(SqlError::exec(e.to_string()));
                        return ControlFlow::Break(());
                    }
                }
                self.used.push(def);
                ControlFlow::Continue(())
            }

            /// `ns.table.column` (three parts, as Drizzle writes qualified columns) works on
            /// the real server (PROTOCOL §12.6); the derived table is named `table` here.
            /// A TIMESTAMP/DATETIME/DATE/TIME column compared with a text value or parameter
            /// compares as that type, as DataFusion coerces it (SQLite would compare the
            /// stored integer with the text, never equal).
            fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                use sqlparser::ast::BinaryOperator as B;
                match e {
                    Expr::BinaryOp {
                        left,
                        op: B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq,
                        right,
                    } => {
                        if let Some(k) = self.temporal(left) {
                            temporal_value(right, k);
                        } else if let Some(k) = self.temporal(right) {
                            temporal_value(left, k);
                        }
                    }
                    Expr::Between {
                        expr, low, high, ..
                    } => {
                        if let Some(k) = self.temporal(expr) {
                            temporal_value(low, k);
                            temporal_value(high, k);
                        }
                    }
                    Expr::InList { expr, list, .. } => {
                        if let Some(k) = self.temporal(expr) {
                            list.iter_mut().for_each(|v| temporal_value(v, k));
                        }
                    }
                    _ => {}
                }
                if let Expr::CompoundIdentifier(idents) = e {
                    if idents.len() == 3 {
                        let parts = [idents[0].value.clone(), idents[1].value.clone()];
                        if let Some(def) = self.db.resolve(&parts, self.ns) {
                            let column = idents[2].clone();
                            *idents = vec![Ident::with_quote('"', def.name.clone()), column];
                        }
                    }
                }
                ControlFlow::Continue(())
            }

            /// `OFFSET n` without `LIMIT` (valid for the real server) needs `LIMIT -1` in SQLite.
            /// NULLs sort as in DataFusion: last ascending, first descending (SQLite: the
            /// other way round).
            fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
                if let Some(OrderBy {
                    kind: OrderByKind::Expressions(items),
                    ..
                }) = &mut q.order_by
                {
                    for item in items {
                        if item.options.nulls_first.is_none() {
                            item.options.nulls_first = Some(item.options.asc == Some(false));
                        }
                    }
                }
                if let Some(LimitClause::LimitOffset {
                    limit: limit @ None,
                    offset: Some(_),
                    ..
                }) = &mut q.limit_clause
                {
                    *limit = Some(Expr::value(sqlparser::ast::Value::Number(
                        "-1".into(),
                        false,
                    )));
                }
                ControlFlow::Continue(())
            }
        }
        impl R<'_> {
            /// The temporal type of a column reference (by its last name, in the tables seen).
            fn temporal(&self, e: &Expr) -> Option<&'static str> {
                let name = match e {
                    Expr::Identifier(id) => &id.value,
                    Expr::CompoundIdentifier(ids) => &ids.last()?.value,
                    _ => return None,
                };
                let col = self
                    .used
                    .iter()
                    .find_map(|d| d.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))?;
                match col.ktype {
                    KType::Timestamp | KType::DateTime => Some("Timestamp"),
                    KType::Date => Some("Date"),
                    KType::Time => Some("Time"),
                    _ => None,
                }
            }
        }
        /// Wraps a text value or parameter in `KDB_TEMPORAL(v, kind)`.
        fn temporal_value(e: &mut Expr, kind: &str) {
            use sqlparser::ast::Value as V;
            if let Expr::Value(v) = e {
                if matches!(v.value, V::Placeholder(_) | V::SingleQuotedString(_)) {
                    let sql = format!("KDB_TEMPORAL({e}, '{kind}')");
                    if let Ok(wrapped) = Parser::new(&GenericDialect {})
                        .try_with_sql(&sql)
                        .and_then(|mut p| p.parse_expr())
                    {
                        *e = wrapped;
                    }
                }
            }
        }
        let mut r = R {
            db: self,
            ns,
            actor,
            used: known,
            err: None,
        };
        let _ = node.visit(&mut r);
        match r.err {
            Some(e) => Err(e),
            None => Ok(r.used),
        }
    }

    /// Runs a SELECT. `cap` applies the default/max row limits (§9.3).
    pub fn select(
        &mut self,
        mut q: Query,
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
        cap: bool,
    ) -> Result<StmtOutput, SqlError> {
        let has_limit = q.limit_clause.is_some() || q.fetch.is_some();
        alias_current_user(&mut q);
        let hints = projection_hints(&q);
        self.rewrite_tables(&mut q, ns, actor)?;
        let sql = q.to_string();
        let limit = if !cap {
            usize::MAX
        } else if has_limit {
            self.limits.max_query_limit
        } else {
            self.limits.default_query_limit
        };
        let (schema, raw) = self.run_query(&sql, params, limit, &hints)?;
        let rows = raw
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&schema)
                    .map(|(v, f)| f.ktype.encode(v))
                    .collect()
            })
            .collect();
        Ok(StmtOutput::Rows { schema, rows })
    }

    /// Executes SQL and derives the KalamDB schema of the result (origin columns carry their
    /// catalog type and flags; computed columns are typed from the AST or the values).
    pub fn run_query(
        &self,
        sql: &str,
        params: &[SqlValue],
        limit: usize,
        hints: &HashMap<String, KType>,
    ) -> Result<(Vec<SchemaField>, Vec<Vec<SqlValue>>), SqlError> {
        let mut st = self.conn.prepare_cached(sql)?;
        bind_params(&mut st, params)?;
        let n = st.column_count();
        let meta: Vec<(String, Option<(String, String)>)> = st
            .columns_with_metadata()
            .iter()
            .map(|m| {
                let origin = match (m.table_name(), m.origin_name()) {
                    (Some(t), Some(c)) => Some((t.to_string(), c.to_string())),
                    _ => None,
                };
                (m.name().to_string(), origin)
            })
            .collect();
        let names: Vec<String> = meta.iter().map(|(n, _)| n.clone()).collect();
        let mut schema: Vec<Option<SchemaField>> = Vec::with_capacity(n);
        for (name, origin) in meta {
            let f = origin.and_then(|(t, c)| {
                let def = self.catalog.get(&t.to_ascii_lowercase())?;
                match c.as_str() {
                    "_seq" => Some(SchemaField::new(name.clone(), KType::BigInt, vec!["nn"])),
                    "_deleted" => Some(SchemaField::new(name.clone(), KType::Boolean, vec!["nn"])),
                    _ => def
                        .columns
                        .iter()
                        .find(|cd| cd.name == c)
                        .map(|cd| cd.field(name.clone())),
                }
            });
            let f = f.or_else(|| {
                hints
                    .get(&name)
                    .map(|k| SchemaField::new(name.clone(), k.clone(), vec![]))
            });
            schema.push(f);
        }
        let mut rows = Vec::new();
        let mut rs = st.raw_query();
        while let Some(r) = rs.next()? {
            if rows.len() >= limit {
                break;
            }
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(r.get::<_, SqlValue>(i)?);
            }
            rows.push(row);
        }
        drop(rs);
        let schema = schema
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                f.unwrap_or_else(|| {
                    let k = rows
                        .iter()
                        .find_map(|r| match &r[i] {
                            SqlValue::Null => None,
                            SqlValue::Integer(_) => Some(KType::BigInt),
                            SqlValue::Real(_) => Some(KType::Double),
                            SqlValue::Text(_) => Some(KType::Text),
                            SqlValue::Blob(_) => Some(KType::Bytes),
                        })
                        .unwrap_or(KType::Text);
                    SchemaField::new(names[i].clone(), k, vec![])
                })
            })
            .collect();
        Ok((schema, rows))
    }

    // ---------------------------------------------------------------- writes

    fn write_target(
        &self,
        name: &ObjectName,
        ns: &str,
        actor: &Actor,
    ) -> Result<Arc<TableDef>, SqlError> {
        let parts = object_parts(name);
        let def = self.resolve(&parts, ns).ok_or_else(|| {
            SqlError::exec(format!(
                "Error during planning: table '{}' not found",
                parts.join(".")
            ))
        })?;
        if def.kind == TableKind::Shared && !def.access.can_write(actor.role) {
            return Err(SqlError::denied(format!(
                "Permission denied: Access denied: Role '{}' cannot access table '{}'. Shared table write denied (access_level={})",
                actor.role.title(),
                def.id(),
                def.access.title()
            )));
        }
        Ok(def)
    }

    fn owner_of(def: &TableDef, actor: &Actor) -> String {
        if def.kind == TableKind::Shared {
            String::new()
        } else {
            actor.user.clone()
        }
    }

    fn insert(
        &mut self,
        mut ins: sqlparser::ast::Insert,
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<StmtOutput, SqlError> {
        let sqlparser::ast::TableObject::TableName(name) = &ins.table else {
            return Err(SqlError::exec("INSERT target must be a table"));
        };
        let def = self.write_target(name, ns, actor)?;
        let cols: Vec<usize> = if ins.columns.is_empty() {
            (0..def.columns.len()).collect()
        } else {
            ins.columns
                .iter()
                .map(|c| {
                    def.col(&c.value).ok_or_else(|| {
                        SqlError::safe_exec(format!("Schema error: No field named {}", c.value))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut source = ins
            .source
            .take()
            .ok_or_else(|| SqlError::exec("INSERT without VALUES/SELECT"))?;
        self.rewrite_tables(&mut *source, ns, actor)?;
        let (_, rows) = self.run_query(&source.to_string(), params, usize::MAX, &HashMap::new())?;
        let owner = Self::owner_of(&def, actor);
        let mut count = 0;
        for vals in rows {
            if vals.len() != cols.len() {
                return Err(SqlError::exec(format!("Inserting query must have the same schema as the table: expected {} values, got {}", cols.len(), vals.len())));
            }
            let mut row: Vec<SqlValue> = vec![SqlValue::Null; def.columns.len()];
            let mut given = vec![false; def.columns.len()];
            for (ci, v) in cols.iter().zip(vals) {
                row[*ci] = def.columns[*ci]
                    .ktype
                    .coerce(v, &def.columns[*ci].name)
                    .map_err(|e| SqlError::exec(format!("Execution error: {e}")))?;
                given[*ci] = true;
            }
            for (i, c) in def.columns.iter().enumerate() {
                if !given[i] {
                    row[i] = match &c.default {
                        None => SqlValue::Null,
                        Some(DefaultSpec::Snowflake) => SqlValue::Integer(self.seq.next()),
                        Some(DefaultSpec::Now) => SqlValue::Integer(now_us()),
                        Some(DefaultSpec::CurrentUser) => SqlValue::Text(actor.user.clone()),
                        Some(DefaultSpec::Literal(v)) => c
                            .ktype
                            .coerce(json_to_sql(v), &c.name)
                            .map_err(SqlError::exec)?,
                    };
                }
            }
            self.check_row(&def, &row)?;
            self.check_pk(&def, &owner, &row, None)?;
            let new = FullRow {
                values: row,
                seq: self.seq.next(),
                deleted: false,
                owner: owner.clone(),
            };
            self.write_physical(&def, &new, None)?;
            count += 1;
            events.push(ChangeEvent {
                table: def.clone(),
                kind: ChangeKind::Insert,
                user: actor.user.clone(),
                old: None,
                new,
            });
        }
        Ok(StmtOutput::Dml {
            kind: ChangeKind::Insert,
            count,
        })
    }

    fn check_row(&self, def: &TableDef, row: &[SqlValue]) -> Result<(), SqlError> {
        for (c, v) in def.columns.iter().zip(row) {
            if !c.nullable && *v == SqlValue::Null {
                return Err(SqlError::safe_exec(format!(
                    "Column '{}' cannot be null",
                    c.name
                )));
            }
        }
        Ok(())
    }

    /// Primary keys are unique among a partition's live rows; a soft-deleted row with the
    /// same key is replaced.
    fn check_pk(
        &self,
        def: &TableDef,
        owner: &str,
        row: &[SqlValue],
        skip_rowid: Option<i64>,
    ) -> Result<(), SqlError> {
        let pks = def.pk_cols();
        let mut cond = vec![format!("_user = {}", quote_literal(owner))];
        let mut vals = Vec::new();
        for (n, &i) in pks.iter().enumerate() {
            cond.push(format!(
                "{} IS ?{}",
                quote_ident(&def.columns[i].name),
                n + 1
            ));
            vals.push(row[i].clone());
        }
        let sql = format!(
            "SELECT _rowid_, _deleted FROM {} WHERE {}",
            def.phys(),
            cond.join(" AND ")
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let found: Vec<(i64, bool)> = st
            .query_map(params_from_iter(vals.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        for (rid, deleted) in found {
            if Some(rid) == skip_rowid {
                continue;
            }
            if !deleted {
                let key = pks
                    .iter()
                    .map(|&i| def.columns[i].ktype.encode(&row[i]).to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SqlError::safe_exec(format!(
                    "Primary key violation: value {key} already exists in column '{}'",
                    pks.iter()
                        .map(|&i| def.columns[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            self.conn.execute(
                &format!("DELETE FROM {} WHERE _rowid_ = ?1", def.phys()),
                [rid],
            )?;
        }
        Ok(())
    }

    fn write_physical(
        &self,
        def: &TableDef,
        r: &FullRow,
        rowid: Option<i64>,
    ) -> Result<(), SqlError> {
        let n = def.columns.len();
        let mut vals: Vec<SqlValue> = r.values.clone();
        vals.push(SqlValue::Integer(r.seq));
        vals.push(SqlValue::Integer(r.deleted as i64));
        vals.push(SqlValue::Text(r.owner.clone()));
        match rowid {
            None => {
                let cols: Vec<String> = def.columns.iter().map(|c| quote_ident(&c.name)).collect();
                let ph: Vec<String> = (1..=n + 3).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "INSERT INTO {} ({}, _seq, _deleted, _user) VALUES ({})",
                    def.phys(),
                    cols.join(", "),
                    ph.join(", ")
                );
                self.conn
                    .prepare_cached(&sql)?
                    .execute(params_from_iter(vals.iter()))?;
            }
            Some(rid) => {
                let sets: Vec<String> = def
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{} = ?{}", quote_ident(&c.name), i + 1))
                    .collect();
                let sql = format!(
                    "UPDATE {} SET {}, _seq = ?{}, _deleted = ?{}, _user = ?{} WHERE _rowid_ = ?{}",
                    def.phys(),
                    sets.join(", "),
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                );
                vals.push(SqlValue::Integer(rid));
                self.conn
                    .prepare_cached(&sql)?
                    .execute(params_from_iter(vals.iter()))?;
            }
        }
        self.seq.observe(r.seq);
        Ok(())
    }

    fn load_row(&self, def: &TableDef, rowid: i64) -> Result<FullRow, SqlError> {
        let cols: Vec<String> = def.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let sql = format!(
            "SELECT {}, _seq, _deleted, _user FROM {} WHERE _rowid_ = ?1",
            cols.join(", "),
            def.phys()
        );
        let n = def.columns.len();
        Ok(self.conn.prepare_cached(&sql)?.query_row([rowid], |r| {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(r.get::<_, SqlValue>(i)?);
            }
            Ok(FullRow {
                values,
                seq: r.get(n)?,
                deleted: r.get::<_, i64>(n + 1)? != 0,
                owner: r.get(n + 2)?,
            })
        })?)
    }

    /// Selects `(rowid, extra exprs...)` of the caller's visible rows matching `selection`.
    #[allow(clippy::too_many_arguments)]
    fn target_rows(
        &self,
        def: &TableDef,
        alias: Option<String>,
        selection: Option<Expr>,
        extra: &[Expr],
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
    ) -> Result<Vec<(i64, Vec<SqlValue>)>, SqlError> {
        let mut sel = "SELECT __rid".to_string();
        for e in extra {
            sel.push_str(&format!(", {e}"));
        }
        let alias = alias.unwrap_or_else(|| quote_ident(&def.name));
        sel.push_str(&format!(
            " FROM ({}) AS {}",
            def.derived_sql(&Self::owner_of(def, actor), true),
            alias
        ));
        if let Some(w) = selection {
            sel.push_str(&format!(" WHERE {w}"));
        }
        let mut q = match Parser::parse_sql(&GenericDialect {}, &sel)
            .map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?
            .pop()
        {
            Some(Statement::Query(q)) => q,
            _ => return Err(SqlError::exec("internal rewrite failed")),
        };
        // Only nested subqueries still name user tables; the derived table is already physical.
        let known = self.table(&def.namespace, &def.name).into_iter().collect();
        self.rewrite_tables_with(&mut *q, ns, actor, known)?;
        let (_, rows) = self.run_query(&q.to_string(), params, usize::MAX, &HashMap::new())?;
        // Each row's id, then the values of `extra`.
        Ok(rows
            .into_iter()
            .filter_map(|mut r| match r.remove(0) {
                SqlValue::Integer(rid) => Some((rid, r)),
                _ => None,
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        table: sqlparser::ast::TableWithJoins,
        assignments: Vec<sqlparser::ast::Assignment>,
        selection: Option<Expr>,
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<StmtOutput, SqlError> {
        let TableFactor::Table { name, alias, .. } = &table.relation else {
            return Err(SqlError::exec("UPDATE target must be a table"));
        };
        let def = self.write_target(name, ns, actor)?;
        if def.kind == TableKind::Stream {
            return Err(SqlError::safe_exec(format!(
                "UPDATE is not supported on STREAM table '{}'",
                def.id()
            )));
        }
        let mut targets = Vec::new();
        let mut exprs = Vec::new();
        for a in &assignments {
            let col = a.target.to_string();
            let col = col
                .rsplit('.')
                .next()
                .unwrap_or(&col)
                .trim_matches('"')
                .to_string();
            let i = def.col(&col).ok_or_else(|| {
                SqlError::safe_exec(format!("Schema error: No field named {col}"))
            })?;
            targets.push(i);
            exprs.push(a.value.clone());
        }
        let rows = self.target_rows(
            &def,
            alias.as_ref().map(|a| a.name.to_string()),
            selection,
            &exprs,
            params,
            ns,
            actor,
        )?;
        let mut count = 0;
        for (rid, values) in rows {
            let old = self.load_row(&def, rid)?;
            let mut new = old.clone();
            for (k, &ci) in targets.iter().enumerate() {
                new.values[ci] = def.columns[ci]
                    .ktype
                    .coerce(values[k].clone(), &def.columns[ci].name)
                    .map_err(|e| SqlError::exec(format!("Execution error: {e}")))?;
            }
            self.check_row(&def, &new.values)?;
            if def
                .pk_cols()
                .iter()
                .any(|&i| new.values[i] != old.values[i])
            {
                self.check_pk(&def, &old.owner, &new.values, Some(rid))?;
            }
            new.seq = self.seq.next();
            self.write_physical(&def, &new, Some(rid))?;
            count += 1;
            events.push(ChangeEvent {
                table: def.clone(),
                kind: ChangeKind::Update,
                user: actor.user.clone(),
                old: Some(old),
                new,
            });
        }
        Ok(StmtOutput::Dml {
            kind: ChangeKind::Update,
            count,
        })
    }

    fn delete(
        &mut self,
        d: sqlparser::ast::Delete,
        params: &[SqlValue],
        ns: &str,
        actor: &Actor,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<StmtOutput, SqlError> {
        let from = match &d.from {
            sqlparser::ast::FromTable::WithFromKeyword(v)
            | sqlparser::ast::FromTable::WithoutKeyword(v) => v,
        };
        let Some(TableFactor::Table { name, alias, .. }) = from.first().map(|t| &t.relation) else {
            return Err(SqlError::exec("DELETE target must be a table"));
        };
        let def = self.write_target(name, ns, actor)?;
        let rows = self.target_rows(
            &def,
            alias.as_ref().map(|a| a.name.to_string()),
            d.selection.clone(),
            &[],
            params,
            ns,
            actor,
        )?;
        let mut count = 0;
        for (rid, _) in rows {
            let old = self.load_row(&def, rid)?;
            let mut tomb = old.clone();
            tomb.deleted = true;
            tomb.seq = self.seq.next();
            if def.kind == TableKind::Stream {
                self.conn.execute(
                    &format!("DELETE FROM {} WHERE _rowid_ = ?1", def.phys()),
                    [rid],
                )?;
            } else {
                self.write_physical(&def, &tomb, Some(rid))?;
            }
            count += 1;
            events.push(ChangeEvent {
                table: def.clone(),
                kind: ChangeKind::Delete,
                user: actor.user.clone(),
                old: Some(old),
                new: tomb,
            });
        }
        Ok(StmtOutput::Dml {
            kind: ChangeKind::Delete,
            count,
        })
    }
}

pub fn valid_user_id(id: &str) -> bool {
    !id.trim().is_empty()
        && !id.contains("..")
        && !id.contains('/')
        && !id.contains('\\')
        && !id.contains('\0')
        && id.len() <= 128
}

pub fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect()
}

pub fn json_to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Binds `$n` parameters (SQLite treats `$1` as a named parameter).
fn bind_params(
    st: &mut rusqlite::CachedStatement<'_>,
    params: &[SqlValue],
) -> Result<(), SqlError> {
    for i in 1..=st.parameter_count() {
        let name = st.parameter_name(i).unwrap_or("").to_string();
        let idx = name
            .trim_start_matches(['$', '?', ':', '@'])
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1);
        let Some(n) = idx else {
            return Err(SqlError::exec(format!(
                "Execution error: unsupported placeholder {name}"
            )));
        };
        let v = params.get(n - 1).ok_or_else(|| {
            SqlError::exec(format!(
                "Execution error: No value found for placeholder with name ${n}"
            ))
        })?;
        st.raw_bind_parameter(i, v)?;
    }
    Ok(())
}

/// `CURRENT_USER()` is reported under DataFusion's name `kdb_current_user()`.
fn alias_current_user(q: &mut Query) {
    if let SetExpr::Select(sel) = q.body.as_mut() {
        for item in sel.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e @ Expr::Function(_)) = item {
                if e.to_string().eq_ignore_ascii_case("KDB_CURRENT_USER()") {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: sqlparser::ast::Ident::with_quote('"', "kdb_current_user()"),
                    };
                }
            }
        }
    }
}

/// Types of computed projection items, by output column name.
fn projection_hints(q: &Query) -> HashMap<String, KType> {
    let mut m = HashMap::new();
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return m;
    };
    for item in &sel.projection {
        let (name, e) = match item {
            SelectItem::UnnamedExpr(e) => (e.to_string(), e),
            SelectItem::ExprWithAlias { expr, alias } => (alias.value.clone(), expr),
            _ => continue,
        };
        let k = match e {
            Expr::Cast { data_type, .. } => KType::parse(&data_type.to_string()),
            Expr::Function(f) => {
                let n = f.name.to_string().to_ascii_uppercase();
                match n.as_str() {
                    "COUNT" => Some(KType::BigInt),
                    "NOW" | "CURRENT_TIMESTAMP" => Some(KType::Timestamp),
                    "KDB_CURRENT_USER" => Some(KType::Text),
                    "SNOWFLAKE_ID" => Some(KType::BigInt),
                    "AVG" => Some(KType::Double),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(k) = k {
            m.insert(name, k);
        }
    }
    m
}

fn register_functions(
    conn: &Connection,
    seq: Arc<SeqGen>,
    user: Arc<Mutex<String>>,
) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("NOW", 0, flags, |_| Ok(now_us()))?;
    // Text compared with a temporal column, as that column's stored integer (see rewrite_tables).
    conn.create_scalar_function("KDB_TEMPORAL", 2, flags, |ctx| {
        let value: SqlValue = ctx.get(0)?;
        let kind = match ctx.get::<String>(1)?.as_str() {
            "Date" => KType::Date,
            "Time" => KType::Time,
            _ => KType::Timestamp,
        };
        Ok(kind.coerce(value.clone(), "").unwrap_or(value))
    })?;
    conn.create_scalar_function("SNOWFLAKE_ID", 0, flags, move |_| Ok(seq.next()))?;
    conn.create_scalar_function("KDB_CURRENT_USER", 0, flags, move |_| {
        Ok(user.lock().map(|u| u.clone()).unwrap_or_default())
    })?;
    Ok(())
}

pub fn shared_readable(t: &TableDef, r: Role) -> bool {
    t.access.can_read(r)
}
