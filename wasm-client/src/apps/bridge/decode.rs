//! Reading a port message (a structured-clone object) into [`Incoming`]: every field type
//! checked, sizes bounded before anything large is copied. The value checks are in `message`.

use js_sys::{Array, ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::message::{
    self, FetchRequest, Id, Incoming, MessageError, WsData, MAX_BODY, MAX_BODY_CHUNK, MAX_HEADERS, MAX_PROTOCOLS,
    MAX_WS_MESSAGE,
};

fn field(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn string(object: &JsValue, key: &'static str) -> Result<String, MessageError> {
    field(object, key).as_string().ok_or(MessageError::BadField(key))
}

fn optional_string(object: &JsValue, key: &'static str) -> Result<String, MessageError> {
    let value = field(object, key);
    if value.is_undefined() || value.is_null() {
        return Ok(String::new());
    }
    value.as_string().ok_or(MessageError::BadField(key))
}

/// The id of a message; `None` when there is no usable id to answer (not an object, or an id
/// that is neither a finite number nor a short string).
pub fn id(data: &JsValue) -> Option<Id> {
    if !data.is_object() || data.is_instance_of::<Array>() {
        return None;
    }
    let id = field(data, "id");
    let id = match (id.as_f64(), id.as_string()) {
        (Some(n), _) => Id::Number(n),
        (_, Some(t)) => Id::Text(t),
        _ => return None,
    };
    message::check_id(&id).ok().map(|()| id)
}

/// The message's `op`.
pub fn op(data: &JsValue) -> Result<String, MessageError> {
    field(data, "op").as_string().ok_or(MessageError::NotAMessage)
}

/// The message's content by its `op`, checked.
pub fn incoming(op: &str, data: &JsValue) -> Result<Incoming, MessageError> {
    let message = match op {
        "fetch" => Incoming::Fetch(fetch(data)?),
        "more" => Incoming::More,
        "body" => match bytes(&field(data, "data"), MAX_BODY_CHUNK, MessageError::BodyChunkTooLarge)? {
            Some(data) => Incoming::Body(data),
            None => return Err(MessageError::BadField("data")),
        },
        "body-end" => Incoming::BodyEnd,
        "cancel" => Incoming::Cancel,
        "ping" => Incoming::Ping,
        "get-cookies" => Incoming::GetCookies,
        "ws-open" => Incoming::WsOpen { path: string(data, "path")?, protocols: protocols(data)? },
        "ws-send" => Incoming::WsSend(ws_data(&field(data, "data"))?),
        "ws-close" => {
            let code = field(data, "code");
            let code = if code.is_undefined() || code.is_null() {
                None
            } else {
                let n = code.as_f64().ok_or(MessageError::BadField("code"))?;
                if n.fract() != 0.0 || !(0.0..=65535.0).contains(&n) {
                    return Err(MessageError::BadClose);
                }
                Some(n as u16)
            };
            Incoming::WsClose { code, reason: optional_string(data, "reason")? }
        }
        "set-cookie" => {
            // A page path that is no request path (`//index.html`, none): the root, as before
            // pages said where they are.
            let path = optional_string(data, "path")?;
            let path = if message::check_path(&path).is_ok() { path } else { "/".to_owned() };
            Incoming::SetCookie { cookie: string(data, "cookie")?, path }
        }
        "prepare" => Incoming::Prepare(string(data, "origin")?),
        other => return Err(MessageError::UnknownOp(other.chars().take(32).collect())),
    };
    message::check(&message)?;
    Ok(message)
}

fn fetch(data: &JsValue) -> Result<FetchRequest, MessageError> {
    let method = string(data, "method")?;
    let path = string(data, "path")?;
    message::check_method(&method)?;
    message::check_path(&path)?;
    let headers = headers(&field(data, "headers"))?;
    let stream_body = match field(data, "streamBody") {
        flag if flag.is_undefined() || flag.is_null() || flag.as_bool() == Some(false) => None,
        flag if flag.as_bool() == Some(true) => Some(message::stream_framing(&headers)?),
        _ => return Err(MessageError::BadField("streamBody")),
    };
    Ok(FetchRequest {
        method,
        path,
        headers,
        body: bytes(&field(data, "body"), MAX_BODY, MessageError::BodyTooLarge)?.unwrap_or_default(),
        stream_body,
        destination: optional_string(data, "destination")?,
        cross_site: field(data, "crossSite").as_bool() == Some(true),
    })
}

fn headers(value: &JsValue) -> Result<Vec<(String, String)>, MessageError> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let list = value.dyn_ref::<Array>().ok_or(MessageError::BadField("headers"))?;
    if list.length() as usize > MAX_HEADERS {
        return Err(MessageError::TooManyHeaders);
    }
    let mut headers = Vec::with_capacity(list.length() as usize);
    for pair in list.iter() {
        let pair = pair.dyn_into::<Array>().map_err(|_| MessageError::BadField("headers"))?;
        match (pair.length(), pair.get(0).as_string(), pair.get(1).as_string()) {
            (2, Some(name), Some(value)) => headers.push((name, value)),
            _ => return Err(MessageError::BadField("headers")),
        }
    }
    message::check_headers(&headers)?;
    Ok(headers)
}

fn protocols(data: &JsValue) -> Result<Vec<String>, MessageError> {
    let value = field(data, "protocols");
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let list = value.dyn_ref::<Array>().ok_or(MessageError::BadField("protocols"))?;
    if list.length() as usize > MAX_PROTOCOLS {
        return Err(MessageError::BadProtocols);
    }
    list.iter().map(|p| p.as_string().ok_or(MessageError::BadProtocols)).collect()
}

fn ws_data(value: &JsValue) -> Result<WsData, MessageError> {
    if let Some(text) = value.as_string() {
        return Ok(WsData::Text(text));
    }
    match bytes(value, MAX_WS_MESSAGE, MessageError::WsMessageTooLarge)? {
        Some(bytes) => Ok(WsData::Binary(bytes)),
        None => Err(MessageError::BadField("data")),
    }
}

/// An `ArrayBuffer` or a view on one (`Uint8Array`, `DataView`, ...), copied when at most `max`
/// bytes; `None` for `null`/`undefined`.
fn bytes(value: &JsValue, max: usize, too_large: MessageError) -> Result<Option<Vec<u8>>, MessageError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let view = if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        Uint8Array::new(buffer)
    } else if ArrayBuffer::is_view(value) {
        let buffer = field(value, "buffer");
        let offset = field(value, "byteOffset").as_f64().unwrap_or(0.0) as u32;
        let length = field(value, "byteLength").as_f64().unwrap_or(0.0) as u32;
        Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length)
    } else {
        return Err(MessageError::BadField("body"));
    };
    if view.length() as usize > max {
        return Err(too_large);
    }
    Ok(Some(view.to_vec()))
}
