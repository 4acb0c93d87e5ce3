//! One connection's life: a hyper connection serves requests while the
//! client is active; after a quiet pause (or at once while the listener is
//! crowded) the socket is taken back from it and waits for the client's
//! next bytes holding nothing but itself, still open for keep-alive.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long
//! as a connection lives; a thousand idle keep-alive connections held 12
//! MiB that way. Building a hyper connection per request instead cost a
//! keep-alive client a fifth of its throughput, so an active client keeps
//! its hyper connection and only an idle one gives it up: memory goes back
//! once a burst is over, and the pool's cap stays cheap to fill. Bytes read
//! past a request (pipelined) are carried over when the socket is taken
//! back.
//!
//! Framing: the socket goes back for the next request only at a request
//! boundary. A request's body (no endpoint reads one) is read and dropped
//! before the answer when it is small and arrives promptly; otherwise the
//! answer says `Connection: close` and the connection ends after it, so the
//! body's bytes are never parsed as requests (request smuggling: an SSRF
//! that controls only a body must not reach the credentials).
//!
//! The loop is generic over the byte stream ([`Stream`]): the daemon runs
//! it on TCP sockets, the fuzz targets (`src/fuzzing/stream.rs`) on an
//! in-memory pipe, checking that every request it serves is one that
//! plain hyper frames in the same bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::HttpResponse;

/// Why a connection's loop ends (for the log).
#[derive(Debug)]
pub(crate) enum Ended {
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
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Ended::Closed => "closed",
            Ended::Evicted => "evicted",
            Ended::Stopped => "stopped",
            Ended::Error(_) => "error",
        }
    }
}

/// What a connection's loop waits on besides the client.
pub(crate) struct Signals {
    pub(crate) evicted: CancellationToken,
    pub(crate) stop: CancellationToken,
    pub(crate) idle_timeout: Duration,
    /// Whether the listener holds so many connections that an answered
    /// one gives its hyper buffers back at once instead of after
    /// [`IDLE_RELEASE`].
    pub(crate) crowded: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Answers one request head: the listener's handler behind its checks.
/// A plain function of the head (no box of its own: the one future hyper
/// gets per request is boxed once, around the drain and this answer).
pub(crate) trait Answer: Send + Sync + 'static {
    fn answer(
        &self,
        req: Request<()>,
    ) -> impl Future<Output = HttpResponse> + Send + 'static;
}

impl<F, A> Answer for F
where
    F: Fn(Request<()>) -> A + Send + Sync + 'static,
    A: Future<Output = HttpResponse> + Send + 'static,
{
    fn answer(
        &self,
        req: Request<()>,
    ) -> impl Future<Output = HttpResponse> + Send + 'static {
        self(req)
    }
}

/// The longest body read and dropped to keep a connection open.
const MAX_DRAINED_BODY: u64 = 64 * 1024;
/// How long a body may take to arrive before the answer goes out anyway
/// (and the connection closes after it).
const BODY_WAIT: Duration = Duration::from_secs(1);
/// After an answer that closes the connection, how long bytes the client
/// still sends are read and dropped, so that closing with unread data does
/// not reset the connection before the client has read the answer.
const LINGER: Duration = Duration::from_secs(1);
/// How long a hyper connection stays with a quiet client (no request in
/// progress, nothing read since the last answer), at least; at most twice
/// that: SDKs that refresh credentials ask in bursts, and within a burst
/// requests come milliseconds apart. Twice it is under hyper's header-read
/// timeout, which counts from the last answer.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// A boxed response future (hyper's `poll_without_shutdown` wants `Unpin`).
type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

/// A client's byte stream: a TCP socket in the daemon, an in-memory pipe
/// in the fuzz targets (which drive this very loop).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// Serves `stream` until it closes: a hyper connection while the client is
/// active, the bare socket while it is quiet.
pub(crate) async fn run<S: Stream, A: Answer>(
    stream: S,
    http: &http1::Builder,
    signals: Signals,
    answer: Arc<A>,
) -> Ended {
    let mut io = Prefixed::new(stream, Bytes::new());
    let mut idle_since = Instant::now();
    loop {
        if io.prefix.is_empty() {
            // The bare socket waits for the client's first byte, read
            // into the connection's state and handed to hyper as the
            // prefix: as many reads as a peek and then hyper's read, with
            // no buffer held while waiting, on any stream. 0 is the
            // client closing.
            let mut byte = [0u8; 1];
            tokio::select! {
                read = io.stream.read(&mut byte) => match read {
                    Ok(1) => io.prefix = Bytes::copy_from_slice(&byte),
                    _ => return Ended::Closed,
                },
                _ = signals.evicted.cancelled() => return Ended::Evicted,
                _ = signals.stop.cancelled() => return Ended::Stopped,
                _ = tokio::time::sleep_until(idle_since + signals.idle_timeout) => return Ended::Closed,
            }
        }
        let exchange = Arc::new(Exchange::default());
        io.exchange = exchange.clone();
        let service = Requests {
            answer: answer.clone(),
            exchange: exchange.clone(),
        };
        let conn = http.serve_connection(TokioIo::new(io), service);
        match serve(Box::new(conn), &exchange, &signals).await {
            Ok(Served::Quiet(next, since)) => (io, idle_since) = (next, since),
            Ok(Served::Close(last)) => {
                linger(last).await;
                return Ended::Closed;
            }
            Ok(Served::Ended(ended)) => return ended,
            Err(e) => return Ended::Error(e),
        }
    }
}

/// What the service of one hyper connection tells the loop around it.
#[derive(Default)]
struct Exchange {
    /// Requests handed to the service.
    started: AtomicU64,
    /// Answers made.
    responded: AtomicU64,
    /// Answers whose first bytes went out: hyper has written the head, so
    /// it can be told to stop after it without turning it into
    /// `Connection: close`.
    sent: AtomicU64,
    /// Bytes were read since the last answer went out: a request head may
    /// be half read (hyper's header-read timeout rules it, and the socket
    /// is not taken back from it).
    reading: AtomicBool,
    /// A request's body was not read to its end: the socket is not at a
    /// request boundary and must not serve another request.
    unframed: AtomicBool,
}

impl Exchange {
    /// Whether a request is between its head and its answer's head.
    fn in_flight(&self) -> bool {
        self.started.load(Ordering::Acquire) != self.sent.load(Ordering::Acquire)
    }
}

/// The service of one hyper connection: reads each request's body
/// (bounded) and answers its head.
struct Requests<A> {
    answer: Arc<A>,
    exchange: Arc<Exchange>,
}

impl<A: Answer> Service<Request<Incoming>> for Requests<A> {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        let exchange = self.exchange.clone();
        exchange.started.fetch_add(1, Ordering::AcqRel);
        let (head, body) = req.into_parts();
        // Lazy: nothing of the answer runs before the body is dealt with.
        let answering = self.answer.answer(Request::from_parts(head, ()));
        Box::pin(async move {
            let framed = drain(body).await;
            let mut response = answering.await;
            if !framed {
                exchange.unframed.store(true, Ordering::Release);
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            exchange.responded.fetch_add(1, Ordering::AcqRel);
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
async fn linger<S: Stream>(mut io: Prefixed<S>) {
    use tokio::io::AsyncWriteExt;
    if io.stream.shutdown().await.is_err() {
        return;
    }
    // On the heap: an array here would be part of every connection task's
    // state (8 KiB each, lingering or not: a future is as large as its
    // largest state), which was most of an idle connection's memory.
    let mut sink = vec![0u8; 8192];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(io.stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

type Conn<S, A> = http1::Connection<TokioIo<Prefixed<S>>, Requests<A>>;

/// How a hyper connection ended.
enum Served<S> {
    /// The client went quiet (quiet since the instant given), or the
    /// listener is crowded: the socket, at a request boundary, for the
    /// next request.
    Quiet(Prefixed<S>, Instant),
    /// Answered, but the socket must not serve another request.
    Close(Prefixed<S>),
    /// Closed: by the client, by hyper, by the pool or for stopping.
    Ended(Ended),
}

/// What [`Watch`] tells the loop driving a hyper connection.
enum Step {
    Wait,
    /// Let hyper finish what it is doing and stop.
    Release,
    /// Drop the connection now (nothing is in progress).
    End(Ended),
}

/// Watches a hyper connection from outside: when to take the socket back,
/// and eviction and stopping.
struct Watch<'a, 's> {
    exchange: &'a Exchange,
    signals: &'s Signals,
    quiet: Pin<&'a mut tokio::time::Sleep>,
    stopped: Pin<&'a mut WaitForCancellationFuture<'s>>,
    evicted: Pin<&'a mut WaitForCancellationFuture<'s>>,
    /// Answers sent at the last look.
    sent: u64,
    /// An answer went out since the quiet timer was last armed.
    answered: bool,
    /// When the client went quiet: the last answer went out no later
    /// (or the connection started then).
    quiet_since: Instant,
    /// hyper was told to stop after what it is doing.
    releasing: bool,
    /// Why the connection ends once hyper has finished.
    ending: Option<Ended>,
}

impl Watch<'_, '_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Step {
        if self.ending.is_none() {
            if self.stopped.as_mut().poll(cx).is_ready() {
                self.ending = Some(Ended::Stopped);
            } else if self.evicted.as_mut().poll(cx).is_ready() {
                self.ending = Some(Ended::Evicted);
            }
            if let Some(ending) = self.ending.take_if(|_| !self.exchange.in_flight()) {
                return Step::End(ending);
            }
            if self.ending.is_some() {
                return self.release();
            }
        }
        if self.releasing {
            return Step::Wait;
        }
        let sent = self.exchange.sent.load(Ordering::Acquire);
        if sent != self.sent {
            // No clock read and no timer reset per answer (they were a
            // visible part of a keep-alive request's cost): the timer
            // notices the answer when it fires, so the socket goes back
            // 1 to 2 pauses after the last answer.
            self.sent = sent;
            self.answered = true;
            if self.exchange.unframed.load(Ordering::Acquire) || (self.signals.crowded)()
            {
                self.quiet_since = Instant::now();
                return self.release();
            }
        }
        while self.quiet.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let reading = self.exchange.reading.load(Ordering::Acquire);
            if !std::mem::take(&mut self.answered)
                && !reading
                && !self.exchange.in_flight()
            {
                // Quiet for a whole pause: the last answer went out
                // before it began.
                self.quiet_since = now.checked_sub(IDLE_RELEASE).unwrap_or(now);
                return self.release();
            }
            // Busy: look again a pause later.
            self.quiet.as_mut().reset(now + IDLE_RELEASE);
        }
        Step::Wait
    }

    fn release(&mut self) -> Step {
        self.releasing = true;
        Step::Release
    }
}

/// Drives `conn` while its client is active, then takes the socket back
/// (or ends).
async fn serve<S: Stream, A: Answer>(
    mut conn: Box<Conn<S, A>>,
    exchange: &Exchange,
    signals: &Signals,
) -> Result<Served<S>, hyper::Error> {
    let quiet = std::pin::pin!(tokio::time::sleep(IDLE_RELEASE));
    let stopped = std::pin::pin!(signals.stop.cancelled());
    let evicted = std::pin::pin!(signals.evicted.cancelled());
    let mut watch = Watch {
        exchange,
        signals,
        quiet,
        stopped,
        evicted,
        sent: 0,
        answered: false,
        quiet_since: Instant::now(),
        releasing: false,
        ending: None,
    };
    let dropped = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(done.map(|()| None));
            }
            match watch.poll(cx) {
                Step::Wait => return Poll::Pending,
                Step::Release => Pin::new(&mut *conn).graceful_shutdown(),
                Step::End(ended) => return Poll::Ready(Ok(Some(ended))),
            }
        }
    })
    .await?;
    if let Some(ended) = dropped.or(watch.ending) {
        return Ok(Served::Ended(ended));
    }
    let unframed = exchange.unframed.load(Ordering::Acquire);
    // Done without being released: hyper ended the connection itself (the
    // client asked to close, or closed): so do we.
    if !watch.releasing && !unframed {
        return Ok(Served::Ended(Ended::Closed));
    }
    let parts = conn.into_parts();
    let io = Prefixed::new(parts.io.into_inner().stream, parts.read_buf);
    Ok(if unframed {
        Served::Close(io)
    } else {
        Served::Quiet(io, watch.quiet_since)
    })
}

/// The socket, with bytes already read from it (pipelined past the last
/// request) to be read again first; writes are reported to the request's
/// exchange.
pub(super) struct Prefixed<S> {
    stream: S,
    prefix: Bytes,
    exchange: Arc<Exchange>,
}

impl<S: Stream> Prefixed<S> {
    fn new(stream: S, prefix: Bytes) -> Self {
        Prefixed {
            stream,
            prefix,
            exchange: Arc::default(),
        }
    }

    /// Notes that `written` bytes went out: the head of the last answer
    /// made (hyper writes nothing else).
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            let exchange = &self.exchange;
            let responded = exchange.responded.load(Ordering::Acquire);
            if exchange.sent.swap(responded, Ordering::AcqRel) != responded {
                exchange.reading.store(false, Ordering::Release);
            }
        }
    }
}

impl<S: Stream> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            self.exchange.reading.store(true, Ordering::Release);
            // The rest of the request is most likely there already (the
            // prefix is often the one byte that woke the bare socket):
            // take it in this read rather than after a parse of one byte.
            if self.prefix.is_empty() && buf.remaining() > 0 {
                let _ = Pin::new(&mut self.stream).poll_read(cx, buf);
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.exchange.reading.store(true, Ordering::Release);
        }
        read
    }
}

impl<S: Stream> AsyncWrite for Prefixed<S> {
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
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    /// A connection served by `run` answering "ok" to everything, and the
    /// client end.
    async fn served(
        crowded: bool,
    ) -> (TcpStream, CancellationToken, tokio::task::JoinHandle<Ended>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let evicted = CancellationToken::new();
        let signals = Signals {
            evicted: evicted.clone(),
            stop: CancellationToken::new(),
            idle_timeout: Duration::from_secs(30),
            crowded: Box::new(move || crowded),
        };
        let answer = Arc::new(|_req| async {
            let ok = Bytes::from_static(b"ok");
            crate::server::response::text(http::StatusCode::OK, ok)
        });
        let task = tokio::spawn(async move {
            run(server, &http1::Builder::new(), signals, answer).await
        });
        (client, evicted, task)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    /// Reads until `n` answers have arrived (bounded by the test's own
    /// patience: each read waits at most 10 s).
    async fn answers(client: &mut TcpStream, n: usize) -> String {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            if text.matches("HTTP/1.1 200").count() >= n && text.ends_with("ok") {
                break;
            }
            let read =
                tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf));
            let got = read.await.expect("an answer").unwrap();
            assert!(got > 0, "closed after {text:?}");
            text.push_str(&String::from_utf8_lossy(&buf[..got]));
        }
        text
    }

    #[tokio::test]
    async fn requests_are_answered_before_and_after_the_socket_is_taken_back() {
        for crowded in [false, true] {
            let (mut client, evicted, task) = served(crowded).await;
            // Pipelined: both are answered, in order.
            client.write_all(&[GET, GET].concat()).await.unwrap();
            assert_eq!(answers(&mut client, 2).await.matches("200 OK").count(), 2);
            // Past the quiet pause the socket is back to bare, and serves on.
            tokio::time::sleep(2 * IDLE_RELEASE + Duration::from_millis(300)).await;
            client.write_all(GET).await.unwrap();
            assert!(answers(&mut client, 1).await.starts_with("HTTP/1.1 200"));
            // Evicted while quiet (in hyper or bare), it closes.
            evicted.cancel();
            assert!(matches!(task.await.unwrap(), Ended::Evicted));
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "{rest:?}");
        }
    }

    /// Every open connection's task holds this future, idle or not, and a
    /// future is as large as its largest state: a buffer held across an
    /// await (the linger's 8 KiB once was) costs every idle connection.
    #[tokio::test]
    async fn a_connections_state_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let signals = Signals {
            evicted: CancellationToken::new(),
            stop: CancellationToken::new(),
            idle_timeout: Duration::from_secs(1),
            crowded: Box::new(|| true),
        };
        let answer = Arc::new(|_req| async {
            let empty = Bytes::new();
            crate::server::response::text(http::StatusCode::OK, empty)
        });
        let http = http1::Builder::new();
        let task = run(server, &http, signals, answer);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "{size} bytes per connection task");
    }

    /// The loop over any byte stream (the fuzz targets' in-memory pipe):
    /// a head declaring a body too large to drain, the body (a request)
    /// after a pause past the idle release: one answer, then the end.
    #[tokio::test(start_paused = true)]
    async fn a_body_never_becomes_a_request_on_an_in_memory_stream() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let answer = Arc::new(move |_req| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { crate::server::response::text(http::StatusCode::OK, Bytes::new()) }
        });
        let signals = Signals {
            evicted: CancellationToken::new(),
            stop: CancellationToken::new(),
            idle_timeout: Duration::from_secs(30),
            crowded: Box::new(|| false),
        };
        let task = tokio::spawn(async move {
            run(server, &http1::Builder::new(), signals, answer).await
        });
        let head = format!(
            "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            1 << 20
        );
        client.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(3 * IDLE_RELEASE).await;
        let _ = client.write_all(&GET.repeat(8)).await;
        let _ = client.shutdown().await;
        let mut out = String::new();
        let _ = client.read_to_string(&mut out).await;
        assert!(matches!(task.await.unwrap(), Ended::Closed));
        assert_eq!(calls.load(Ordering::Relaxed), 1, "{out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

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
