//! The answers every listener builds: one response type and plain bodies.
//! Endpoint-specific headers (IMDS's `Server: EC2ws`) are added by the
//! endpoint, not here.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
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
