//! Client-only requests of `HttpCore`: row writes, multipart uploads and file downloads
//! (left out of the consumer bundle).

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, Blob, BlobPropertyBag, FormData};

use super::{now_ms, to_js_error, CallOptions, HttpCore, Inner, JsResult};
use crate::core::error::KalamError;
use crate::core::http::envelope::{decode_sql_response, is_token_expired};
use crate::core::http::files::{self, FormPart};
use crate::core::http::sql::{self, params_from_json, SqlRequest, TableRef};
use crate::net::http::{send, Body, HttpRequest};

#[wasm_bindgen]
impl HttpCore {
    /// INSERT of one row given as JSON (BigInts tagged `{"$bigint": "…"}`).
    pub async fn insert(
        &self,
        table: String,
        row_json: String,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let request = sql::insert_json(&table, &row_json).map_err(to_js_error)?;
        self.run_built(request, signal, timeout_ms).await
    }

    /// UPDATE by key (a bare value means the `id` column; an object is a composite key).
    pub async fn update(
        &self,
        table: String,
        key_json: String,
        changes_json: String,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let request = sql::update_json(&table, &key_json, &changes_json).map_err(to_js_error)?;
        self.run_built(request, signal, timeout_ms).await
    }

    /// DELETE by key.
    pub async fn delete(
        &self,
        table: String,
        key_json: String,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let request = sql::delete_json(&table, &key_json).map_err(to_js_error)?;
        self.run_built(request, signal, timeout_ms).await
    }

    /// Multipart SQL with `FILE("name")` placeholders. `names[i]` is the placeholder of
    /// `files[i]` (a Blob or File). Never retried, except once after `TOKEN_EXPIRED`
    /// (the server refused it before reading anything).
    #[wasm_bindgen(js_name = queryWithFiles)]
    #[allow(clippy::too_many_arguments)]
    pub async fn query_with_files(
        &self,
        sql_text: String,
        names: Vec<String>,
        files: Array,
        params_json: Option<String>,
        namespace: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, namespace);
        inner
            .upload(sql_text, names, files, params_json, &options)
            .await
            .map_err(to_js_error)
    }

    /// Validates an upload and returns the `Authorization` header for it, for the
    /// XMLHttpRequest path that reports upload progress (fetch cannot).
    #[wasm_bindgen(js_name = prepareUpload)]
    pub async fn prepare_upload(
        &self,
        sql_text: String,
        names: Vec<String>,
        params_json: Option<String>,
        namespace: Option<String>,
    ) -> JsResult<Option<String>> {
        let inner = self.inner.clone();
        let params = match params_json {
            Some(json) => params_from_json(&json).map_err(to_js_error)?,
            None => Vec::new(),
        };
        let ns = namespace.or_else(|| inner.namespace.clone());
        files::upload_form(&sql_text, &params, ns.as_deref(), &names, &inner.limits)
            .map_err(to_js_error)?;
        let step = inner.auth.borrow_mut().prepare(now_ms());
        let (authorization, _) = inner.drive_auth(step).await.map_err(to_js_error)?;
        Ok(authorization)
    }

    /// Decodes an SQL answer obtained outside `fetch` (the XMLHttpRequest upload path).
    #[wasm_bindgen(js_name = decodeResponse)]
    pub fn decode_response(
        &self,
        status: u16,
        body: &str,
        file_table: Option<String>,
    ) -> JsResult<String> {
        let table = file_table.as_deref().and_then(|t| TableRef::parse(t).ok());
        decode_sql_response(status, body, table.as_ref()).map_err(to_js_error)
    }

    /// Downloads `path` (`/v1/files/…`) with the client's token as a Blob.
    pub async fn download(
        &self,
        path: String,
        user_id: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<Blob> {
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, None);
        let mut url = inner.base.endpoint(&path);
        if let Some(user) = user_id {
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str("user_id=");
            url.push_str(&crate::core::http::url::percent_encode(&user));
        }
        let response = inner
            .authorized("GET", &url, None, &options)
            .await
            .map_err(to_js_error)?;
        let bytes = Uint8Array::from(response.body.as_slice());
        let parts = Array::of1(&bytes);
        let props = BlobPropertyBag::new();
        if let Some(content_type) = &response.content_type {
            props.set_type(content_type);
        }
        Blob::new_with_u8_array_sequence_and_options(&parts, &props)
            .map_err(|_| to_js_error(KalamError::protocol("cannot build a Blob")))
    }
}

impl HttpCore {
    async fn run_built(
        &self,
        request: SqlRequest,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, None);
        let request = if request.namespace_id.is_none() {
            request.with_namespace(options.namespace.clone())
        } else {
            request
        };
        inner
            .execute(request, None, &options)
            .await
            .map_err(to_js_error)
    }
}

impl Inner {
    async fn upload(
        &self,
        sql_text: String,
        names: Vec<String>,
        files: Array,
        params_json: Option<String>,
        options: &CallOptions,
    ) -> Result<String, KalamError> {
        if names.len() != files.length() as usize {
            return Err(KalamError::invalid_argument(
                "queryWithFiles: one file per placeholder name",
            ));
        }
        let params = match params_json {
            Some(json) => params_from_json(&json)?,
            None => Vec::new(),
        };
        let form = files::upload_form(
            &sql_text,
            &params,
            options.namespace.as_deref(),
            &names,
            &self.limits,
        )?;
        let table = sql::single_table(&sql_text, options.namespace.as_deref());
        let build_form = || -> Result<FormData, KalamError> {
            let data = FormData::new().map_err(|_| KalamError::protocol("FormData unavailable"))?;
            for part in &form.parts {
                let appended = match part {
                    FormPart::Text { name, value } => data.append_with_str(name, value),
                    FormPart::File { name, file } => {
                        let index = names.iter().position(|n| n == file).unwrap_or(0);
                        let blob: Blob = files.get(index as u32).dyn_into().map_err(|_| {
                            KalamError::invalid_argument(format!(
                                "queryWithFiles: '{file}' is not a Blob or File"
                            ))
                        })?;
                        let filename = js_sys::Reflect::get(&blob, &"name".into())
                            .ok()
                            .and_then(|n| n.as_string())
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| file.clone());
                        data.append_with_blob_and_filename(name, &blob, &filename)
                    }
                };
                appended.map_err(|_| KalamError::protocol("cannot build the upload form"))?;
            }
            Ok(data)
        };
        let url = self.base.sql_url();
        let attempt = |authorization: Option<String>| {
            let form = build_form();
            let (url, table) = (&url, &table);
            async move {
                send(HttpRequest {
                    method: "POST",
                    url,
                    authorization: authorization.as_deref(),
                    body: Body::Form(form?),
                    timeout_ms: options.timeout_ms,
                    signal: options.signal.as_ref(),
                })
                .await
                .and_then(|r| decode_sql_response(r.status, &r.text(), table.as_ref()))
            }
        };
        let (authorization, generation) = self.ensure_auth_for(options).await?;
        match attempt(authorization).await {
            Err(err) if is_token_expired(&err) => {
                let step = self
                    .auth
                    .borrow_mut()
                    .on_token_expired(generation, now_ms());
                let (authorization, _) = self
                    .drive_auth_with(step, options.signal.as_ref(), options.timeout_ms)
                    .await?;
                attempt(authorization).await
            }
            other => other,
        }
    }
}
