//! The answers every listener builds: one response type and plain bodies.
//! Endpoint-specific headers (IMDS's `Server: EC2ws`) are added by the
//! endpoint, not here.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;

/// What every handler answers with: the whole body in memory.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// `status` with `body` as `text/plain`.
pub(crate) fn text(status: StatusCode, body: Bytes) -> HttpResponse {
    with_type(status, body, "text/plain")
}

/// `status` with `body` as `application/json`.
pub(crate) fn json(status: StatusCode, body: Bytes) -> HttpResponse {
    with_type(status, body, "application/json")
}

fn with_type(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `status` with the JSON error body every endpoint uses:
/// `{"Code":...,"Message":...}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "Code": code, "Message": message }).to_string();
    json(status, Bytes::from(body))
}

/// 429 with `Retry-After: 1`: the client's request rate is over the limit.
pub(crate) fn throttled() -> HttpResponse {
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        Bytes::from_static(b"too many requests\n"),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// A 403 that also closes the connection: for clients that are not to be
/// served at all.
pub(crate) fn forbidden_and_close() -> HttpResponse {
    let mut r = text(StatusCode::FORBIDDEN, Bytes::from_static(b"forbidden\n"));
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_escape_their_message() {
        let r = json_error(StatusCode::SERVICE_UNAVAILABLE, "A", "b \"c\"");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body = http_body_util::BodyExt::collect(r.into_body());
        let bytes = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(&bytes[..], br#"{"Code":"A","Message":"b \"c\""}"#);
    }

    #[test]
    fn plain_answers_carry_only_their_content_type() {
        let r = json(StatusCode::OK, Bytes::from_static(b"{}"));
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(r.headers().len(), 1);
        let r = forbidden_and_close();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[CONNECTION], "close");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
    }
}
