//! One connection's life: idle, holding nothing but the socket, until the
//! client sends bytes; then a hyper connection serves one request and hands
//! the socket back, still open for keep-alive.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long
//! as a connection lives; a thousand idle keep-alive connections held 12
//! MiB that way. Here an idle connection costs its socket and a small task,
//! so the pool's cap is cheap to fill, and memory goes back once a burst is
//! over. Pipelined bytes read past a request are carried to the next one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use std::convert::Infallible;

use hyper::Request;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
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

/// Answers one request: the listener's handler behind its checks.
pub(super) type Answer = Arc<dyn Fn(Request<Incoming>) -> ResponseFuture + Send + Sync>;

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
        let responded = Arc::new(AtomicBool::new(false));
        let service = OneRequest {
            answer: answer.clone(),
            responded: responded.clone(),
        };
        let conn = http.serve_connection(TokioIo::new(io), service);
        match serve_one(Box::new(conn), &responded, &signals.stop).await {
            Ok(Some(next)) => io = next,
            Ok(None) => return Ended::Closed,
            Err(e) => return Ended::Error(e),
        }
    }
}

/// The service of one hyper connection: sets `responded` once the answer
/// is made.
struct OneRequest {
    answer: Answer,
    responded: Arc<AtomicBool>,
}

impl Service<Request<Incoming>> for OneRequest {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        let answering = (self.answer)(req);
        let responded = self.responded.clone();
        Box::pin(async move {
            let answer = answering.await;
            responded.store(true, Ordering::Release);
            answer
        })
    }
}

type Conn = http1::Connection<TokioIo<Prefixed>, OneRequest>;

/// Drives `conn` until its request is answered, then takes the socket back
/// (`None` when the connection closed instead).
async fn serve_one(
    mut conn: Box<Conn>,
    responded: &AtomicBool,
    stop: &CancellationToken,
) -> Result<Option<Prefixed>, hyper::Error> {
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
            if responded.load(Ordering::Acquire) || stop.is_cancelled() {
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
        return Ok(None);
    }
    let parts = conn.into_parts();
    Ok(Some(Prefixed::new(
        parts.io.into_inner().stream,
        parts.read_buf,
    )))
}

/// The socket, with bytes already read from it (pipelined past the last
/// request) to be read again first.
pub(super) struct Prefixed {
    stream: TcpStream,
    prefix: Bytes,
}

impl Prefixed {
    fn new(stream: TcpStream, prefix: Bytes) -> Self {
        Prefixed { stream, prefix }
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
        Pin::new(&mut self.stream).poll_write(cx, buf)
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
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
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
