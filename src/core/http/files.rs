//! FILE uploads (PROTOCOL.md §1.6): the multipart plan of `queryWithFiles`. The browser's
//! `FormData` builds the body in the shell; this module decides its parts and validates the
//! `FILE("x")` placeholders. The FileRef a FILE cell holds is `core::cells::file_ref`.

use crate::core::error::{KalamError, Result};
use crate::core::http::sql::{self, Param, SqlLimits, SqlRequest, Tok};
use crate::core::json::{ObjectWriter, ToJson};

// Transitional: `core/fuzz_tests.rs` still names the FileRef here.
#[cfg(test)]
pub use crate::core::cells::FileRef;

/// The placeholder names of `FILE("x")` / `FILE('x')` in `sql` (keyword case-insensitive;
/// comments ignored), in order of appearance, without duplicates.
pub fn file_placeholders(sql: &str) -> Vec<String> {
    let toks = sql::lex(sql);
    let mut out: Vec<String> = Vec::new();
    for w in toks.windows(4) {
        if w[0].is_word("FILE") && w[1] == Tok::Punct('(') && w[3] == Tok::Punct(')') {
            let name = match &w[2] {
                Tok::Quoted(s) | Tok::Str(s) => s.clone(),
                _ => continue,
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// One multipart part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormPart {
    /// A text part: `formData.append(name, value)`.
    Text { name: String, value: String },
    /// A file part: `formData.append(name, blobOf(file), fileNameOf(file))` where `file`
    /// is the caller's key for the file (the placeholder).
    File { name: String, file: String },
}

/// Untagged: `{"name","value"}` or `{"name","file"}`.
impl ToJson for FormPart {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        match self {
            FormPart::Text { name, value } => w.field("name", name).field("value", value),
            FormPart::File { name, file } => w.field("name", name).field("file", file),
        };
        w.finish();
    }
}

/// What the shell sends for `queryWithFiles`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadForm {
    pub parts: Vec<FormPart>,
    /// Files given but not referenced by any placeholder (the server would drop them;
    /// they are not uploaded).
    pub unused_files: Vec<String>,
}

/// `{"parts":[…],"unused_files":[…]}`.
impl ToJson for UploadForm {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("parts", &self.parts)
            .field("unused_files", &self.unused_files);
        w.finish();
    }
}

/// Multipart part names.
pub mod parts {
    pub const SQL: &str = "sql";
    pub const PARAMS: &str = "params";
    pub const NAMESPACE_ID: &str = "namespace_id";
    pub const FILE_PREFIX: &str = "file:";
}

/// Default `files.max_files_per_request`.
pub const MAX_FILES_PER_REQUEST: usize = 20;

/// Plans a `queryWithFiles` upload: `sql`, then `params` (JSON array text, only when
/// non-empty), `namespace_id` (when given), then one `file:<placeholder>` per referenced
/// placeholder. Rejected with `INVALID_ARGUMENT` before sending: the SQL checks of
/// [`SqlRequest::validate`] (except the placeholder rule), more than one statement, a
/// `FILE("x")` with no file `x`, no placeholder at all, or more than
/// [`MAX_FILES_PER_REQUEST`] files.
pub fn upload_form(
    sql_text: &str,
    params: &[Param],
    namespace_id: Option<&str>,
    file_names: &[String],
    limits: &SqlLimits,
) -> Result<UploadForm> {
    let req = SqlRequest::new(sql_text)
        .with_params(params.to_vec())
        .with_namespace(namespace_id.map(str::to_string));
    req.validate_common(limits)?;
    if sql::statement_count(sql_text) != 1 {
        return Err(KalamError::invalid_argument(
            "a file upload must contain exactly one statement",
        ));
    }
    let placeholders = file_placeholders(sql_text);
    if placeholders.is_empty() {
        return Err(KalamError::invalid_argument(
            "queryWithFiles needs FILE(\"name\") placeholders in the SQL",
        ));
    }
    let missing: Vec<&str> = placeholders
        .iter()
        .filter(|p| !file_names.contains(p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(KalamError::invalid_argument(format!(
            "no file given for placeholder(s) \"{}\"",
            missing.join("\", \"")
        )));
    }
    if placeholders.len() > MAX_FILES_PER_REQUEST {
        return Err(KalamError::invalid_argument(format!(
            "{} files in one request; the server accepts at most {MAX_FILES_PER_REQUEST}",
            placeholders.len()
        )));
    }
    let mut parts = vec![FormPart::Text {
        name: parts::SQL.into(),
        value: sql_text.into(),
    }];
    if !params.is_empty() {
        parts.push(FormPart::Text {
            name: parts::PARAMS.into(),
            value: sql::params_json(params),
        });
    }
    if let Some(ns) = req.namespace_id.as_deref() {
        parts.push(FormPart::Text {
            name: parts::NAMESPACE_ID.into(),
            value: ns.into(),
        });
    }
    for p in &placeholders {
        parts.push(FormPart::File {
            name: format!("{}{p}", parts::FILE_PREFIX),
            file: p.clone(),
        });
    }
    let unused_files = file_names
        .iter()
        .filter(|f| !placeholders.contains(f))
        .cloned()
        .collect();
    Ok(UploadForm {
        parts,
        unused_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;
    use crate::core::json::{json, ToJson};

    #[test]
    fn plans_uploads_and_checks_placeholders() {
        let l = SqlLimits::default();
        let sql = "INSERT INTO ns.docs (name, a, b) VALUES ($1, FILE(\"doc\"), file('img'))";
        assert_eq!(file_placeholders(sql), vec!["doc", "img"]);
        assert_eq!(
            file_placeholders("-- FILE(\"x\")\nSELECT 'FILE(\"y\")'"),
            Vec::<String>::new()
        );
        let form = upload_form(
            sql,
            &[Param::Text("n".into())],
            Some("ns"),
            &["doc".into(), "img".into(), "extra".into()],
            &l,
        )
        .unwrap();
        assert_eq!(form.unused_files, vec!["extra"]);
        assert_eq!(
            form.parts.to_json(),
            json!([
                {"name": "sql", "value": sql},
                {"name": "params", "value": "[\"n\"]"},
                {"name": "namespace_id", "value": "ns"},
                {"name": "file:doc", "file": "doc"},
                {"name": "file:img", "file": "img"}
            ])
            .to_string()
        );
        assert!(form.to_json().ends_with(r#"}],"unused_files":["extra"]}"#));
        let err = upload_form(sql, &[], None, &["doc".into()], &l).unwrap_err();
        assert_eq!(err.code, codes::INVALID_ARGUMENT);
        assert!(err.message.contains("img"));
        assert!(upload_form("INSERT INTO t VALUES (1)", &[], None, &[], &l).is_err());
        assert!(upload_form(
            "INSERT INTO t VALUES (FILE(\"a\")); SELECT 1",
            &[],
            None,
            &["a".into()],
            &l
        )
        .is_err());
        let form = upload_form(
            "EXECUTE AS USER 'bob' (INSERT INTO ns.t (f) VALUES (FILE('a')))",
            &[],
            None,
            &["a".into()],
            &l,
        )
        .unwrap();
        assert_eq!(form.parts.len(), 2);
    }
}
