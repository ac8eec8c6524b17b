//! The module's free functions: start-up, the core version, and the FileRef and table-name
//! rules the TypeScript `FileRef` (bindings/shared/cells.ts) asks for synchronously, one
//! crossing each, so TypeScript never computes them itself.

use wasm_bindgen::prelude::*;

use super::net::to_js_error;
use crate::core::cells::{file_ref, FileRef};
use crate::core::http::sql::TableRef;
use crate::core::http::url::BaseUrl;
use crate::core::json::Value;

/// Runs once when the module is instantiated: Rust panics become readable JS errors.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The version of the Rust core inside this package.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// A FILE value (FileRef JSON text) as the JSON of the object JS sees (the FileRef fields,
/// `stored_name`, and `download_path` when `namespace` and `table` are given), or
/// `undefined` when it is not a FileRef.
#[wasm_bindgen(js_name = fileRefJson)]
pub fn file_ref_json(
    text: String,
    namespace: Option<String>,
    table: Option<String>,
) -> Option<String> {
    let file = FileRef::from_value(&Value::String(text)).ok()?;
    let table = namespace.as_deref().zip(table.as_deref());
    Some(file.to_js_value(table).to_string())
}

/// The server's stored file name (`{id}-{sanitised name}.{ext}`).
#[wasm_bindgen(js_name = storedFileName)]
pub fn stored_file_name(id: &str, name: &str) -> String {
    file_ref::stored_name(id, name)
}

/// `/v1/files/{namespace}/{table}/{sub}/{stored_name}`, on `base_url` when given (the
/// server URL, normalised like the client's). `INVALID_ARGUMENT` / `INVALID_URL`.
#[wasm_bindgen(js_name = fileDownloadUrl)]
pub fn file_download_url(
    base_url: Option<String>,
    namespace: &str,
    table: &str,
    sub: &str,
    stored_name: &str,
) -> Result<String, JsValue> {
    let path =
        file_ref::download_path(namespace, table, sub, stored_name, None).map_err(to_js_error)?;
    match base_url {
        Some(base) => Ok(BaseUrl::parse(&base).map_err(to_js_error)?.endpoint(&path)),
        None => Ok(path),
    }
}

/// `[namespace, table]` of `table` or `namespace.table`; an unqualified name is placed in
/// `namespace`, else the server's default namespace. Bad names → `INVALID_ARGUMENT`.
#[wasm_bindgen(js_name = tableLocation)]
pub fn table_location(name: &str, namespace: Option<String>) -> Result<Vec<String>, JsValue> {
    let table = TableRef::parse(name).map_err(to_js_error)?;
    let ns = table.namespace_or(namespace.as_deref()).to_string();
    Ok(vec![ns, table.table])
}
