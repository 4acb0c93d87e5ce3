//! One connection's life: idle, holding nothing but the socket, until the
//! client sends bytes; then a hyper connection serves one request and hands
//! the socket back, still open for keep-alive.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long
//! as a connection lives; a thousand idle keep-alive connections held 12
//! MiB that way. Here an idle connection costs its socket and a small task,
//! so the pool's cap is cheap to fill, and memory goes back once a burst is
//! over. Pipelined bytes read past a request are carried to the next one.
//!
//! Framing: the socket goes back for the next request only at a request
//! boundary. A request's body (no endpoint reads one) is read and dropped
//! before the answer when it is small and arrives promptly; otherwise the
//! answer says `Connection: close` and the connection ends after it, so the
//! body's bytes are never parsed as requests (request smuggling: an SSRF
//! that controls only a body must not reach the credentials).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::HeaderValue;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use std::convert::Infallible;

use hyper::Request;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::HttpResponse;

/// Why a connection's loop ends (for the log).
#[derive(Debug)]
pub(super) enum Ended {
    /// The client closed, or stayed idle past the idle limit.
    Closed,
    /// The pool closed it to admit another connection.
    Evicted,
    /// The server is stopping.
    Stopped,
    Error(hyper::Error),
}

impl Ended {
    /// For logs.
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Ended::Closed => "closed",
            Ended::Evicted => "evicted",
            Ended::Stopped => "stopped",
            Ended::Error(_) => "error",
        }
    }
}

/// What a connection's loop waits on besides the client.
pub(super) struct Signals {
    pub(super) evicted: CancellationToken,
    pub(super) stop: CancellationToken,
    pub(super) idle_timeout: Duration,
}

/// Answers one request head: the listener's handler behind its checks.
pub(super) type Answer = Arc<dyn Fn(Request<()>) -> ResponseFuture + Send + Sync>;

/// The longest body read and dropped to keep a connection open.
const MAX_DRAINED_BODY: u64 = 64 * 1024;
/// How long a body may take to arrive before the answer goes out anyway
/// (and the connection closes after it).
const BODY_WAIT: Duration = Duration::from_secs(1);
/// After an answer that closes the connection, how long bytes the client
/// still sends are read and dropped, so that closing with unread data does
/// not reset the connection before the client has read the answer.
const LINGER: Duration = Duration::from_secs(1);

/// A boxed response future (hyper's `poll_without_shutdown` wants `Unpin`).
pub(super) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

/// Serves `stream` until it closes: each request on its own hyper
/// connection, nothing held in between.
pub(super) async fn run(
    stream: TcpStream,
    http: &http1::Builder,
    signals: Signals,
    answer: Answer,
) -> Ended {
    let mut io = Prefixed::new(stream, Bytes::new());
    loop {
        if io.prefix.is_empty() {
            // `peek` waits for a byte (readiness alone can be spurious);
            // 0 is the client closing.
            let mut byte = [0u8; 1];
            tokio::select! {
                peeked = io.stream.peek(&mut byte) => if !matches!(peeked, Ok(n) if n > 0) {
                    return Ended::Closed;
                },
                _ = signals.evicted.cancelled() => return Ended::Evicted,
                _ = signals.stop.cancelled() => return Ended::Stopped,
                _ = tokio::time::sleep(signals.idle_timeout) => return Ended::Closed,
            }
        }
        let exchange = Arc::new(Exchange::default());
        io.exchange = exchange.clone();
        let service = OneRequest {
            answer: answer.clone(),
            exchange: exchange.clone(),
        };
        let conn = http.serve_connection(TokioIo::new(io), service);
        match serve_one(Box::new(conn), &exchange, &signals.stop).await {
            Ok(Served::Next(next)) => io = next,
            Ok(Served::Close(last)) => {
                linger(last).await;
                return Ended::Closed;
            }
            Ok(Served::Closed) => return Ended::Closed,
            Err(e) => return Ended::Error(e),
        }
    }
}

/// What the service of one request tells the loop around it.
#[derive(Default)]
struct Exchange {
    /// The answer is made.
    responded: AtomicBool,
    /// Bytes of the answer went out: hyper has written its head, so it can
    /// be told to stop after it without turning it into `Connection:
    /// close`.
    answer_sent: AtomicBool,
    /// The request's body was not read to its end: the socket is not at a
    /// request boundary and must not serve another request.
    unframed: AtomicBool,
}

/// The service of one hyper connection: reads the request's body (bounded)
/// and answers its head.
struct OneRequest {
    answer: Answer,
    exchange: Arc<Exchange>,
}

impl Service<Request<Incoming>> for OneRequest {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        let (answer, exchange) = (self.answer.clone(), self.exchange.clone());
        Box::pin(async move {
            let (head, body) = req.into_parts();
            let framed = drain(body).await;
            let mut response = answer(Request::from_parts(head, ())).await?;
            if !framed {
                exchange.unframed.store(true, Ordering::Release);
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            exchange.responded.store(true, Ordering::Release);
            Ok(response)
        })
    }
}

/// Reads `body` to its end and drops it: `true` when it ended within
/// [`MAX_DRAINED_BODY`] bytes and [`BODY_WAIT`].
async fn drain(mut body: Incoming) -> bool {
    if body.is_end_stream() {
        return true;
    }
    if body.size_hint().lower() > MAX_DRAINED_BODY {
        return false;
    }
    let read_to_end = async {
        let mut read = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > MAX_DRAINED_BODY {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(BODY_WAIT, read_to_end)
        .await
        .unwrap_or(false)
}

/// Closes a connection whose client may still be sending: our side is shut
/// first, then what arrives is dropped for at most [`LINGER`].
async fn linger(mut io: Prefixed) {
    use tokio::io::AsyncWriteExt;
    if io.stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(io.stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

type Conn = http1::Connection<TokioIo<Prefixed>, OneRequest>;

/// How one request on a connection ended.
enum Served {
    /// Answered at a request boundary: the socket, for the next request.
    Next(Prefixed),
    /// Answered, but the socket must not serve another request.
    Close(Prefixed),
    /// hyper ended the connection itself.
    Closed,
}

/// Drives `conn` until its request is answered, then takes the socket back.
async fn serve_one(
    mut conn: Box<Conn>,
    exchange: &Exchange,
    stop: &CancellationToken,
) -> Result<Served, hyper::Error> {
    let mut released = false;
    std::future::poll_fn(|cx| {
        loop {
            let polled = conn.poll_without_shutdown(cx);
            if polled.is_ready() || released {
                return polled;
            }
            // Answered (the response is written, or being written with its
            // keep-alive head already sent): release the socket once it is,
            // instead of waiting in hyper for the next request. Stopping:
            // finish this request, and close.
            if exchange.answer_sent.load(Ordering::Acquire) || stop.is_cancelled() {
                Pin::new(&mut *conn).graceful_shutdown();
                released = true;
                continue;
            }
            return Poll::Pending;
        }
    })
    .await?;
    // Done without being released: hyper ended the connection itself (the
    // client asked to close, or closed): so do we.
    if !released || stop.is_cancelled() {
        return Ok(Served::Closed);
    }
    let parts = conn.into_parts();
    let io = Prefixed::new(parts.io.into_inner().stream, parts.read_buf);
    Ok(if exchange.unframed.load(Ordering::Acquire) {
        Served::Close(io)
    } else {
        Served::Next(io)
    })
}

/// The socket, with bytes already read from it (pipelined past the last
/// request) to be read again first; writes are reported to the request's
/// exchange.
pub(super) struct Prefixed {
    stream: TcpStream,
    prefix: Bytes,
    exchange: Arc<Exchange>,
}

impl Prefixed {
    fn new(stream: TcpStream, prefix: Bytes) -> Self {
        Prefixed {
            stream,
            prefix,
            exchange: Arc::default(),
        }
    }

    /// Notes that `written` bytes went out (only the answer is written
    /// once the exchange has one).
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        let answered = self.exchange.responded.load(Ordering::Acquire);
        if answered && matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.exchange.answer_sent.store(true, Ordering::Release);
        }
    }
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefixed_bytes_are_read_before_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b" world").await.unwrap();
        drop(client);
        let mut io = Prefixed::new(server, Bytes::from_static(b"hello"));
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
