//! The module's free functions: start-up, and ONE synchronous dispatcher (`coreCall`) for
//! the small rules the TypeScript asks for synchronously (core version, FileRef and
//! table-name rules for `FileRef` in bindings/shared/cells.ts, the live-table SQL, the
//! consumer's backoff), so TypeScript never computes them itself. One export instead of one
//! per rule: each export costs a shim in the .wasm and a wrapper in the JS glue.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use super::net::to_js_error;
use crate::core::cells::{file_ref, FileRef};
use crate::core::error::KalamError;
use crate::core::http::sql::TableRef;
use crate::core::http::url::BaseUrl;
use crate::core::json::Value;

/// Runs once when the module is instantiated: Rust panics become readable JS errors.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Runs rule `op` on `args` (a JS array). Ops and their answers:
/// - `coreVersion` → the version of the Rust core inside this package;
/// - `baseUrl` [url] → the server URL normalised as the client uses it (no trailing slash);
/// - `FileRef.from` [text] → the JSON of the object JS sees for a FILE value (FileRef JSON
///   text: the FileRef fields and `stored_name`), or `undefined` when it is not a FileRef;
/// - `storedFileName` [id, name] → the server's stored file name (`{id}-{sanitised name}.{ext}`);
/// - `FileRef.url` [base_url | null, namespace, table, sub, stored_name] →
///   `/v1/files/{namespace}/{table}/{sub}/{stored_name}`, on `base_url` when given (the
///   server URL, normalised like the client's);
/// - `tableLocation` [name, namespace?] → JSON `[namespace, table]` of `table` or
///   `namespace.table`; an unqualified name is placed in `namespace`, else the server's
///   default namespace;
/// - `liveTableSql` [name] (client) → `SELECT * FROM "ns"."table"` for `liveTable(name)`;
/// - `backoffMs` [attempt (from 1), initial, max, multiplier, jitter ratio, random]
///   (consumer) → the capped, jittered exponential backoff of `core::topics::backoff_ms`.
///
/// Bad input throws a KalamError object (`INVALID_ARGUMENT`, `INVALID_URL`), as every rule does.
#[wasm_bindgen(js_name = coreCall)]
pub fn core_call(op: &str, args: Array) -> Result<JsValue, JsValue> {
    call(op, &args).map_err(to_js_error)
}

/// Item `i` of `args` as a string. Out of line: called at a dozen places in `call`.
#[inline(never)]
fn text_at(args: &Array, i: u32) -> Option<String> {
    args.get(i).as_string()
}

/// Item `i` of `args`, which must be a string.
#[inline(never)]
fn required_at(args: &Array, i: u32) -> Result<String, KalamError> {
    text_at(args, i).ok_or_else(|| KalamError::invalid_argument("a string argument is missing"))
}

fn call(op: &str, args: &Array) -> Result<JsValue, KalamError> {
    let text = |i: u32| text_at(args, i);
    let required = |i: u32| required_at(args, i);
    let string = |s: String| Ok(JsValue::from(s));
    match op {
        "coreVersion" => string(env!("CARGO_PKG_VERSION").to_string()),
        "baseUrl" => string(BaseUrl::parse(&required(0)?)?.as_str().to_string()),
        "FileRef.from" => Ok(FileRef::from_value(&Value::String(required(0)?))
            .map_or(JsValue::UNDEFINED, |file| {
                JsValue::from(file.to_js_value(None).to_string())
            })),
        "storedFileName" => string(file_ref::stored_name(&required(0)?, &required(1)?)),
        "FileRef.url" => {
            let path = file_ref::download_path(
                &required(1)?,
                &required(2)?,
                &required(3)?,
                &required(4)?,
                None,
            )?;
            match text(0) {
                Some(base) => string(BaseUrl::parse(&base)?.endpoint(&path)),
                None => string(path),
            }
        }
        "tableLocation" => {
            let table = TableRef::parse(&required(0)?)?;
            let ns = table.namespace_or(text(1).as_deref()).to_string();
            string(Value::from(vec![ns, table.table]).to_string())
        }
        #[cfg(feature = "client")]
        "liveTableSql" => string(crate::core::live::sql::live_table_sql(&required(0)?)?),
        #[cfg(feature = "consumer")]
        "backoffMs" => {
            let number = |i: u32| args.get(i).as_f64().unwrap_or(f64::NAN);
            Ok(JsValue::from(crate::core::topics::backoff_ms(
                number(0) as u32,
                number(1),
                number(2),
                number(3),
                number(4),
                number(5),
            )))
        }
        _ => Err(KalamError::invalid_argument("unknown core call")),
    }
}
