//! `fetch(url, init)` for home hosts: a real `Response` whose body streams from the tunnel.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Headers, ResponseInit};

use super::js::{self, field};
use super::stream::{readable, Source};
use super::tunnel;
use crate::error::ClientError;
use crate::http::{HttpUrl, Request};
use crate::lan::http::{self, Redirects};

/// Fetches an `http://` URL of a home host through the tunnel (exposed to pages as
/// `hometun.fetch`). `init` takes `method`, `headers`, `body` (string, `Uint8Array` or
/// `ArrayBuffer`) and `redirect` (`follow`, `manual`, `error`). Resolves with a `Response`
/// (streaming `body`, `text()`, `arrayBuffer()`, ...) that also carries `url`, `redirected`
/// and `rawHeaders` (the head as received).
#[wasm_bindgen(js_name = httpFetch)]
pub async fn http_fetch(url: String, init: JsValue) -> Result<web_sys::Response, JsValue> {
    let request = request_from(&url, &init)?;
    let redirects = match field(&init, "redirect").as_string().as_deref() {
        Some("manual") => Redirects::Manual,
        Some("error") => Redirects::Error,
        _ => Redirects::Follow,
    };
    let response = http::fetch(&tunnel(), request, redirects).await?;
    to_js_response(response)
}

fn request_from(url: &str, init: &JsValue) -> Result<Request, ClientError> {
    let url = HttpUrl::parse(url)?;
    let method = field(init, "method").as_string().unwrap_or_else(|| "GET".into());
    let mut request = Request::new(&method, url);
    let headers = field(init, "headers");
    if !headers.is_undefined() && !headers.is_null() {
        let headers = Headers::new_with_str_sequence_sequence(&headers)
            .map_err(|_| ClientError::InvalidArgument("init.headers".into()))?;
        for pair in headers.entries().into_iter().flatten() {
            let pair: js_sys::Array = pair.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                request.headers.push((name, value));
            }
        }
    }
    let body = field(init, "body");
    request.body = if body.is_undefined() || body.is_null() {
        Vec::new()
    } else if let Some(text) = body.as_string() {
        text.into_bytes()
    } else if body.is_instance_of::<js_sys::Uint8Array>() || body.is_instance_of::<js_sys::ArrayBuffer>() {
        js::bytes(&body)
    } else {
        return Err(ClientError::InvalidArgument("init.body must be a string, Uint8Array or ArrayBuffer".into()));
    };
    Ok(request)
}

fn to_js_response(response: http::Response) -> Result<web_sys::Response, JsValue> {
    let status = response.head.status;
    if !(200..=599).contains(&status) {
        return Err(ClientError::Http(crate::http::HttpError::BadHead(format!(
            "status {status} cannot be handed to the page"
        )))
        .into());
    }
    let headers = Headers::new()?;
    for (name, value) in &response.head.headers {
        // The browser refuses some names and values in a constructed Response; skip those.
        let _ = headers.append(name, value);
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(&response.head.reason);
    init.set_headers(&headers);
    let (url, redirected, raw_head) = (response.url.to_string(), response.redirected, response.raw_head.clone());
    let js_response = if matches!(status, 204 | 205 | 304) {
        web_sys::Response::new_with_opt_str_and_init(None, &init)?
    } else {
        let body = readable(Source::Body(Box::new(response)))?;
        web_sys::Response::new_with_opt_readable_stream_and_init(Some(&body), &init)?
    };
    for (key, value) in
        [("url", JsValue::from(url)), ("redirected", redirected.into()), ("rawHeaders", raw_head.into())]
    {
        let descriptor = js::Obj::new().set("value", value).set("enumerable", true).into_js();
        js_sys::Object::define_property(&js_response, &key.into(), descriptor.unchecked_ref());
    }
    Ok(js_response)
}
