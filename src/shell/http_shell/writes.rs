//! Client-only operations of `HttpShell`: row writes, multipart uploads and file downloads
//! (left out of the consumer bundle).

use js_sys::{Array, Uint8Array};
use web_sys::{Blob, BlobPropertyBag};

use super::{Args, Shell};
use crate::core::cells::file_ref::push_user_id;
use crate::core::error::KalamError;
use crate::core::http::driver::{Body, CallSpec, Decode, RequestSpec};
use crate::core::http::envelope::decode_sql_response;
use crate::core::http::files;
use crate::core::http::retry::RequestKind;
use crate::core::http::sql;

impl Shell {
    /// INSERT of one row given as JSON (BigInts tagged `{"$bigint": "…"}`), UPDATE or DELETE
    /// by key (a bare value means the `id` column; an object is a composite key).
    pub(super) fn row_write(&self, op: &str, args: &Args) -> Result<CallSpec, KalamError> {
        let table = args.required("table")?;
        let request = match op {
            "insert" => sql::insert_json(&table, &args.required("row")?)?,
            "update" => {
                sql::update_json(&table, &args.required("key")?, &args.required("changes")?)?
            }
            _ => sql::delete_json(&table, &args.required("key")?)?,
        };
        let request = if request.namespace_id.is_none() {
            let namespace = self.namespace(args);
            request.with_namespace(namespace)
        } else {
            request
        };
        self.sql_spec(request, None)
    }

    /// Multipart SQL with `FILE("name")` placeholders; `names[i]` is the placeholder of
    /// `files[i]`. Never retried, except once after `TOKEN_EXPIRED` (the server refused it
    /// before reading anything).
    pub(super) fn upload_call(
        &self,
        args: &Args,
        names: &[String],
        files: &Array,
    ) -> Result<CallSpec, KalamError> {
        if names.len() != files.length() as usize {
            return Err(KalamError::invalid_argument(
                "queryWithFiles: one file per placeholder name",
            ));
        }
        let sql_text = args.required("sql")?;
        let namespace = self.namespace(args);
        let params = Self::params(args)?;
        let form = files::upload_form(
            &sql_text,
            &params,
            namespace.as_deref(),
            names,
            &self.limits,
        )?;
        let table = sql::single_table(&sql_text, namespace.as_deref());
        Ok(CallSpec::Request(RequestSpec {
            method: "POST",
            url: self.executor.driver().base().sql_url(),
            body: Body::Form(form.parts),
            authenticated: true,
            kind: RequestKind::Upload,
            decode: Decode::Text(Box::new(move |status, body| {
                decode_sql_response(status, body, table.as_ref())
            })),
        }))
    }

    /// `path` (`/v1/files/…`) with the client's token, as bytes.
    pub(super) fn download_call(&self, args: &Args) -> Result<CallSpec, KalamError> {
        let mut url = self
            .executor
            .driver()
            .base()
            .endpoint(&args.required("path")?);
        if let Some(user) = args.text("userId") {
            push_user_id(&mut url, &user);
        }
        Ok(CallSpec::Request(RequestSpec {
            method: "GET",
            url,
            body: Body::None,
            authenticated: true,
            // Not retried (as before the driver): only renewed once on TOKEN_EXPIRED.
            kind: RequestKind::Write,
            decode: Decode::Bytes,
        }))
    }
}

/// A downloaded body as a Blob of its content type.
pub(super) fn blob(
    content_type: Option<String>,
    body: &[u8],
) -> Result<wasm_bindgen::JsValue, KalamError> {
    let bytes = Uint8Array::from(body);
    let parts = Array::of1(&bytes);
    let props = BlobPropertyBag::new();
    if let Some(content_type) = &content_type {
        props.set_type(content_type);
    }
    Blob::new_with_u8_array_sequence_and_options(&parts, &props)
        .map(Into::into)
        .map_err(|_| KalamError::protocol("cannot build a Blob"))
}
