//! FILE cells (PROTOCOL.md §1.2, §1.6, §1.8): the FileRef a FILE cell holds, the stored
//! file name the download route wants (not the FileRef id) and the download path. The one
//! copy of these rules: the TypeScript `FileRef` asks the exports in `lib.rs`.

use crate::core::json::{parse, Map, Value};

use crate::core::error::{KalamError, Result};
use crate::core::text;

/// The download route's prefix (`/v1/files/{namespace}/{table}/{sub}/{stored_name}`).
pub const FILES_PATH: &str = "/v1/files";

/// A FILE cell's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Snowflake id, as a decimal string.
    pub id: String,
    /// Subfolder, `f` + 4 digits.
    pub sub: String,
    /// Original file name.
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub sha256: String,
    /// Shard, shared tables only.
    pub shard: Option<u32>,
}

fn text_field(map: &Map, key: &str, required: bool) -> std::result::Result<String, String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if key == "id" => Ok(n.to_string()),
        None | Some(Value::Null) if !required => Ok(String::new()),
        Some(other) => Err(format!("FileRef.{key} is {other}, expected a string")),
        None => Err(format!("FileRef.{key} is missing")),
    }
}

impl FileRef {
    /// From a FILE cell: a string holding FileRef JSON (what the server sends) or an
    /// already-parsed object. `id` may be a string or an integer, `size` a number or a
    /// decimal string; `mime`/`sha256` default to empty. The error is a short reason.
    pub fn from_value(value: &Value) -> std::result::Result<FileRef, String> {
        let parsed;
        let map = match value {
            Value::Object(map) => map,
            Value::String(text) => {
                parsed = parse(text).map_err(|e| format!("FILE cell is not FileRef JSON: {e}"))?;
                match &parsed {
                    Value::Object(map) => map,
                    _ => return Err("FILE cell JSON is not an object".into()),
                }
            }
            other => return Err(format!("FILE cell is {other}, expected FileRef JSON")),
        };
        let id = text_field(map, "id", true)?;
        if id.is_empty() {
            return Err("FileRef.id is empty".into());
        }
        let size = match map.get("size") {
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("FileRef.size is {n}, expected an unsigned integer"))?,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| format!("FileRef.size is \"{s}\", expected an unsigned integer"))?,
            None | Some(Value::Null) => 0,
            Some(other) => return Err(format!("FileRef.size is {other}")),
        };
        let shard = match map.get("shard") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .ok_or_else(|| format!("FileRef.shard is {v}"))?,
            ),
        };
        Ok(FileRef {
            id,
            sub: text_field(map, "sub", true)?,
            name: text_field(map, "name", true)?,
            size,
            mime: text_field(map, "mime", false)?,
            sha256: text_field(map, "sha256", false)?,
            shard,
        })
    }

    /// The name the file is stored under (and downloaded by), see [`stored_name`].
    pub fn stored_name(&self) -> String {
        stored_name(&self.id, &self.name)
    }

    /// `/v1/files/{namespace}/{table}/{sub}/{stored_name}[?user_id=…]`.
    pub fn download_path(
        &self,
        namespace: &str,
        table: &str,
        user_id: Option<&str>,
    ) -> Result<String> {
        download_path(namespace, table, &self.sub, &self.stored_name(), user_id)
    }

    /// The object handed to JS: the FileRef fields plus `stored_name`, and `download_path`
    /// when the table is known and the path is valid.
    pub fn to_js_value(&self, table: Option<(&str, &str)>) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("sub".into(), Value::String(self.sub.clone()));
        map.insert("name".into(), Value::String(self.name.clone()));
        map.insert("size".into(), Value::from(self.size));
        map.insert("mime".into(), Value::String(self.mime.clone()));
        map.insert("sha256".into(), Value::String(self.sha256.clone()));
        if let Some(shard) = self.shard {
            map.insert("shard".into(), Value::from(shard));
        }
        map.insert("stored_name".into(), Value::String(self.stored_name()));
        if let Some((ns, t)) = table {
            if let Ok(path) = self.download_path(ns, t, None) {
                map.insert("download_path".into(), Value::String(path));
            }
        }
        Value::Object(map)
    }
}

/// The server's stored file name for a FileRef (`FileRef::stored_name` in
/// `kalamdb-system/.../file_ref.rs`): `{id}-{sanitized}.{ext}`, or `{id}.{ext}` when
/// `sanitized` is empty.
///
/// * `sanitized`: the name without its last `.extension`; ASCII letters/digits kept and
///   lowercased, space, `_` and `-` become `-`, everything else (incl. all non-ASCII)
///   dropped; the first 50 of those characters taken; then runs of `-` collapsed and
///   leading/trailing `-` removed.
/// * `ext`: the text after the last `.`, ASCII-lowercased, kept if it is at most 10 ASCII
///   alphanumerics, else `bin`; `bin` when there is no dot. ⚠ As in the server, an empty
///   extension (`"name."`) is kept empty, giving `"{id}-name."`.
pub fn stored_name(id: &str, name: &str) -> String {
    let (stem, ext) = match text::rsplit_once(name, b'.') {
        Some((stem, ext)) => {
            let ext = ext.to_ascii_lowercase();
            let ext = if ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                ext
            } else {
                "bin".to_string()
            };
            (stem, ext)
        }
        None => (name, "bin".to_string()),
    };
    let mut sanitized = String::new();
    let mut pending_dash = false;
    let kept = stem.chars().filter_map(|c| {
        if c.is_ascii_alphanumeric() {
            Some(c.to_ascii_lowercase())
        } else if matches!(c, ' ' | '_' | '-') {
            Some('-')
        } else {
            None
        }
    });
    for c in kept.take(50) {
        if c == '-' {
            pending_dash = !sanitized.is_empty();
        } else {
            if pending_dash {
                sanitized.push('-');
                pending_dash = false;
            }
            sanitized.push(c);
        }
    }
    if sanitized.is_empty() {
        format!("{id}.{ext}")
    } else {
        format!("{id}-{sanitized}.{ext}")
    }
}

/// `f` followed by exactly 4 ASCII digits.
fn is_valid_subfolder(sub: &str) -> bool {
    sub.len() == 5 && sub.starts_with('f') && sub[1..].bytes().all(|b| b.is_ascii_digit())
}

fn check_segment(what: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || text::find(value, b"..").is_some()
        || text::has(value, b'/')
        || text::has(value, b'\\')
        || text::has(value, b'\0')
    {
        return Err(KalamError::invalid_argument(format!(
            "invalid {what} for a file download: \"{value}\""
        )));
    }
    Ok(())
}

/// `/v1/files/{namespace}/{table}/{sub}/{stored_name}` with each segment percent-encoded,
/// plus `?user_id=…` (USER tables only; for dba/system acting for a user). Segments with
/// `..`, `/`, `\`, NUL or empty, or an invalid `sub` → `INVALID_ARGUMENT` (the server
/// would answer 400 "Invalid file path").
pub fn download_path(
    namespace: &str,
    table: &str,
    sub: &str,
    stored_name: &str,
    user_id: Option<&str>,
) -> Result<String> {
    check_segment("namespace", namespace)?;
    check_segment("table", table)?;
    check_segment("file name", stored_name)?;
    if !is_valid_subfolder(sub) {
        return Err(KalamError::invalid_argument(format!(
            "invalid file subfolder \"{sub}\" (expected f + 4 digits)"
        )));
    }
    let mut path = format!(
        "{}/{}/{}/{}/{}",
        FILES_PATH,
        percent_encode(namespace),
        percent_encode(table),
        sub,
        percent_encode(stored_name)
    );
    if let Some(user) = user_id.filter(|u| !u.is_empty()) {
        push_user_id(&mut path, user);
    }
    Ok(path)
}

/// Appends `user_id=…` (percent-encoded) to a download path or URL, with `?` or `&`: how a
/// privileged caller reads another user's USER-table file.
pub fn push_user_id(url: &mut String, user_id: &str) {
    url.push_str(if text::has(url, b'?') {
        "&user_id="
    } else {
        "?user_id="
    });
    url.push_str(&percent_encode(user_id));
}

/// Percent-encodes everything except RFC 3986 unreserved characters (`A-Za-z0-9-._~`):
/// safe for one path segment or one query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;
    use crate::core::json::json;

    #[test]
    fn stored_names_match_the_server() {
        let cases = [
            ("123", "Report Q1.pdf", "123-report-q1.pdf"),
            // 60-files.json
            (
                "383266719688294400",
                "Report Q1 (final).PDF",
                "383266719688294400-report-q1-final.pdf",
            ),
            ("123", "My Document.pdf", "123-my-document.pdf"),
            ("456", "文档.pdf", "456.pdf"),
            ("1", "README", "1-readme.bin"),
            ("1", "archive.tar.gz", "1-archivetar.gz"),
            ("1", ".bashrc", "1.bashrc"),
            ("1", "photo.JPEG", "1-photo.jpeg"),
            ("1", "x.abcdefghijk", "1-x.bin"),
            ("1", "x.abcdefghij", "1-x.abcdefghij"),
            ("1", "x.p-f", "1-x.bin"),
            ("1", "x.pdé", "1-x.bin"),
            ("1", "__ -- a__b --", "1-a-b.bin"),
            ("1", "___.txt", "1.txt"),
            ("1", "", "1.bin"),
            ("1", "name.", "1-name."),
            ("1", "Ünïcödé ñame.txt", "1-ncd-ame.txt"),
        ];
        for (id, name, want) in cases {
            assert_eq!(stored_name(id, name), want, "{name:?}");
        }
        // The 50-character cut happens before dashes are collapsed.
        let long = format!("{}.txt", "a".repeat(100));
        assert_eq!(
            stored_name("789", &long),
            format!("789-{}.txt", "a".repeat(50))
        );
        let dashy = format!("a{}b.txt", " ".repeat(60));
        assert_eq!(stored_name("1", &dashy), "1-a.txt");
        let mixed = format!("{}{}", "a-".repeat(30), "z.txt");
        assert_eq!(
            stored_name("1", &mixed),
            format!("1-{}a.txt", "a-".repeat(24))
        );
    }

    #[test]
    fn parses_file_cells_both_ways() {
        // 60-files.json cell
        let cell = json!("{\"id\":\"383266719688294400\",\"sub\":\"f0001\",\"name\":\"Report Q1 (final).PDF\",\"size\":1024,\"mime\":\"application/pdf\",\"sha256\":\"785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9\"}");
        let f = FileRef::from_value(&cell).unwrap();
        assert_eq!(f.size, 1024);
        assert_eq!(f.shard, None);
        assert_eq!(f.stored_name(), "383266719688294400-report-q1-final.pdf");
        assert_eq!(
            f.download_path("wire445072", "docs", None).unwrap(),
            "/v1/files/wire445072/docs/f0001/383266719688294400-report-q1-final.pdf"
        );
        assert_eq!(
            f.download_path("wire445072", "docs", Some("alice445072")).unwrap(),
            "/v1/files/wire445072/docs/f0001/383266719688294400-report-q1-final.pdf?user_id=alice445072"
        );
        let obj = json!({"id": 383266719688294400u64, "sub": "f0002", "name": "a.png", "size": "5", "mime": "image/png", "sha256": "x", "shard": 3});
        let g = FileRef::from_value(&obj).unwrap();
        assert_eq!(
            (g.id.as_str(), g.size, g.shard),
            ("383266719688294400", 5, Some(3))
        );
        let js = g.to_js_value(Some(("app", "t")));
        assert_eq!(js["stored_name"], "383266719688294400-a.png");
        assert_eq!(
            js["download_path"],
            "/v1/files/app/t/f0002/383266719688294400-a.png"
        );
        assert_eq!(js["shard"], 3);
        assert!(f.to_js_value(None).get("download_path").is_none());

        for bad in [
            json!("not json"),
            json!("[1]"),
            json!(42),
            json!({"sub": "f0001", "name": "a"}),
            json!({"id": "1", "sub": "f0001", "name": "a", "size": -1}),
            json!({"id": "1", "sub": 5, "name": "a"}),
        ] {
            assert!(FileRef::from_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn download_paths_are_validated_and_encoded() {
        assert!(is_valid_subfolder("f0001"));
        for bad in ["f001", "f00001", "g0001", "f00a1", "F0001", ""] {
            assert!(!is_valid_subfolder(bad), "{bad}");
        }
        assert_eq!(
            download_path("n s", "t", "f0001", "1-a.pdf", Some("a b&c")).unwrap(),
            "/v1/files/n%20s/t/f0001/1-a.pdf?user_id=a%20b%26c"
        );
        for (ns, t, sub, name) in [
            ("..", "t", "f0001", "x"),
            ("n", "a/b", "f0001", "x"),
            ("n", "t", "f001", "x"),
            ("n", "t", "f0001", "a\\b"),
            ("n", "t", "f0001", ""),
            ("n", "t", "f0001", "a\0"),
        ] {
            assert_eq!(
                download_path(ns, t, sub, name, None).unwrap_err().code,
                codes::INVALID_ARGUMENT
            );
        }
    }

    #[test]
    fn an_empty_extension_stays_empty_like_the_server() {
        // Regression: the TypeScript copy turned "name." into "1-name.bin".
        assert_eq!(stored_name("1", "name."), "1-name.");
        assert_eq!(stored_name("7", "."), "7.");
    }

    #[test]
    fn user_ids_are_appended_with_the_right_separator() {
        let mut path = "/v1/files/n/t/f0001/1.bin".to_string();
        push_user_id(&mut path, "a b");
        assert_eq!(path, "/v1/files/n/t/f0001/1.bin?user_id=a%20b");
        let mut url = "http://h/x?y=1".to_string();
        push_user_id(&mut url, "u");
        assert_eq!(url, "http://h/x?y=1&user_id=u");
        assert_eq!(percent_encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(percent_encode("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
        assert_eq!(percent_encode("ü"), "%C3%BC");
    }
}
