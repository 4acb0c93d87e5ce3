//! Raw bytes through the real connection loop (`server::connection::run`,
//! the one every accepted socket runs) over an in-memory pipe, next to
//! what plain hyper makes of the same bytes when it owns the connection and
//! reads every body: the framing the loop must never get ahead of.
//!
//! The input is written by a client in segments: `@P@` splits it, and the
//! client waits 3 s between segments (on a paused clock, so it costs
//! nothing), past the loop's idle release (1 to 2 s), so that bytes arrive both
//! while hyper holds the socket and after the socket was taken back (the
//! request-smuggling bug of issue 22 needed such a pause between a head
//! and its body). `@C@` anywhere makes the listener crowded: the socket is
//! taken back right after every answer. Token markers are replaced as in
//! [`super::http`].
//!
//! What comes out is plain data: the requests the loop handed to the
//! endpoint (with their answers), the requests hyper alone framed, and how
//! many final answers each wrote. The targets hold the invariants.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::http::{HeaderMap, Method, Request, Response, Uri, Version};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;

use super::http::{Exchange, fixture, replace_marks};
use crate::server::connection::{self, Signals};
use crate::server::{HttpResponse, Limits, http_builder};

/// Splits the input into segments written with a pause between them.
pub const PAUSE_MARK: &[u8] = b"@P@";
/// Makes the listener crowded for the whole input.
pub const CROWDED_MARK: &[u8] = b"@C@";

/// The client's wait between two segments: past the loop's idle release
/// (1 to 2 s), under hyper's header-read timeout (5 s).
const PAUSE: Duration = Duration::from_secs(3);
/// How long the client waits for answers after its last segment before
/// it closes its sending side.
const ANSWERS_WAIT: Duration = Duration::from_secs(60);

/// A request head as a server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
}

/// What the loop and plain hyper made of one byte stream.
pub struct StreamOutcome {
    /// The requests the loop handed to the endpoint, in order, with the
    /// endpoint's answers.
    pub exchanges: Vec<Exchange>,
    /// Their heads, as the loop's hyper parsed them.
    pub served: Vec<Head>,
    /// The requests plain hyper framed in the same bytes, reading every
    /// body to its end.
    pub framed: Vec<Head>,
    /// Final (non-1xx) answers the loop wrote.
    pub answers: usize,
    /// Final answers plain hyper wrote (its own 400 or 431 included).
    pub framed_answers: usize,
}

type Respond = fn(Request<()>) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>>;

/// `input` through the loop serving the IMDS endpoint.
pub fn imds_stream(input: &[u8]) -> StreamOutcome {
    stream(input, |req| {
        let f = fixture();
        Box::pin(f.imds.respond(req, &f.client))
    })
}

/// `input` through the loop serving the container endpoint.
pub fn container_stream(input: &[u8]) -> StreamOutcome {
    stream(input, |req| {
        let f = fixture();
        Box::pin(f.container.respond(req, &f.client))
    })
}

fn stream(input: &[u8], respond: Respond) -> StreamOutcome {
    let crowded = find(input, CROWDED_MARK).is_some();
    let segments: Vec<Vec<u8>> = split(input, PAUSE_MARK)
        .into_iter()
        .map(|s| replace_marks(&remove(s, CROWDED_MARK)))
        .collect();
    let runtime = &fixture().paused;
    let (exchanges, served, out) =
        runtime.block_on(through_the_loop(&segments, crowded, respond));
    let (framed, framed_out) = runtime.block_on(through_hyper(&segments));
    let methods =
        |heads: &[Head]| heads.iter().map(|h| h.method.clone()).collect::<Vec<_>>();
    StreamOutcome {
        answers: final_answers(&out, &methods(&served)),
        framed_answers: final_answers(&framed_out, &methods(&framed)),
        exchanges,
        served,
        framed,
    }
}

type Recorded = Arc<Mutex<(Vec<Exchange>, Vec<Head>)>>;

/// The loop as the server runs it for an accepted connection, answering
/// with `respond`; what it handed over, and what it wrote.
async fn through_the_loop(
    segments: &[Vec<u8>],
    crowded: bool,
    respond: Respond,
) -> (Vec<Exchange>, Vec<Head>, Vec<u8>) {
    let limits = Limits::default();
    let (client, server) = tokio::io::duplex(1 << 16);
    let signals = Signals {
        evicted: CancellationToken::new(),
        stop: CancellationToken::new(),
        idle_timeout: limits.idle_timeout,
        crowded: Box::new(move || crowded),
    };
    let recorded = Recorded::default();
    let record = recorded.clone();
    let answer = Arc::new(move |req: Request<()>| {
        let record = record.clone();
        async move {
            let head = head_of(&req);
            let response = respond(req).await;
            let (exchange, response) = exchange(&head, response).await;
            let mut recorded = record.lock().expect("not poisoned");
            recorded.0.push(exchange);
            recorded.1.push(head);
            response
        }
    });
    let http = http_builder(&limits);
    let (_, out) = tokio::join!(
        connection::run(server, &http, signals, answer),
        write_and_read(client, segments)
    );
    let (exchanges, served) =
        std::mem::take(&mut *recorded.lock().expect("not poisoned"));
    (exchanges, served, out)
}

/// Plain hyper with the daemon's settings (but no header-read timeout: the
/// reference must not give up where the loop goes on), owning the
/// connection and reading every body to its end (or its error) before a
/// fixed answer.
async fn through_hyper(segments: &[Vec<u8>]) -> (Vec<Head>, Vec<u8>) {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(86_400),
        ..Limits::default()
    };
    let (client, server) = tokio::io::duplex(1 << 16);
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        record.lock().expect("not poisoned").push(head_of(&req));
        async move {
            let _ = req.into_body().collect().await;
            let ok = Response::new(Full::new(Bytes::from_static(b"ok")));
            Ok::<_, std::convert::Infallible>(ok)
        }
    });
    let http = http_builder(&limits);
    let conn = http.serve_connection(TokioIo::new(server), service);
    let (_, out) = tokio::join!(conn, write_and_read(client, segments));
    let heads = std::mem::take(&mut *heads.lock().expect("not poisoned"));
    (heads, out)
}

/// The client: writes each segment (pausing between them), waits for its
/// answers, closes its sending side, and reads everything the server
/// writes until it closes. (Closing the sending side at once would end
/// the exchange before any answer: hyper, owning a connection or not,
/// drops a request in progress when the client half-closes.)
async fn write_and_read(client: DuplexStream, segments: &[Vec<u8>]) -> Vec<u8> {
    let (mut rx, mut tx) = tokio::io::split(client);
    let write = async move {
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            // The server may have closed (then the rest is not read).
            if tx.write_all(segment).await.is_err() {
                return;
            }
        }
        // Past the loop's idle limit (30 s): by then it has closed.
        tokio::time::sleep(ANSWERS_WAIT).await;
        let _ = tx.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = rx.read_to_end(&mut out).await;
        out
    };
    tokio::join!(write, read).1
}

fn head_of<B>(req: &Request<B>) -> Head {
    Head {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        headers: req.headers().clone(),
    }
}

/// The exchange for `head` answered with `response`, and the response
/// (its body read and put back).
async fn exchange(head: &Head, response: HttpResponse) -> (Exchange, HttpResponse) {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let exchange = Exchange {
        method: head.method.clone(),
        uri: head.uri.clone(),
        headers: head.headers.clone(),
        status: parts.status,
        response_headers: parts.headers.clone(),
        body: body.to_vec(),
    };
    (exchange, Response::from_parts(parts, Full::new(body)))
}

/// How many final (non-1xx) answers `out` holds, answer `i` being to a
/// request with `methods[i]` (a HEAD's answer has no body); parsing stops
/// at the first incomplete or malformed answer.
fn final_answers(out: &[u8], methods: &[Method]) -> usize {
    let mut rest = out;
    let mut count = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = response.parse(rest) else {
            return count;
        };
        let status = response.code.unwrap_or_default();
        let body = match response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        {
            _ if status < 200 => 0,
            _ if methods.get(count) == Some(&Method::HEAD) => 0,
            Some(h) => std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0),
            None => 0,
        };
        if status >= 200 {
            count += 1;
        }
        rest = &rest[(len + body).min(rest.len())..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `input` cut at every `mark` (the marks dropped).
fn split<'a>(mut input: &'a [u8], mark: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(input, mark) {
        parts.push(&input[..at]);
        input = &input[at + mark.len()..];
    }
    parts.push(input);
    parts
}

fn remove(input: &[u8], mark: &[u8]) -> Vec<u8> {
    split(input, mark).concat()
}
