//! Request framing (issue 22, part 1): the bytes of a request body are
//! never parsed as further requests, whether the body is read or not.
//! An SSRF that controls only a body must not reach the credentials.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::container;
use crate::util::{CREDS_PATH, TestDaemon};

const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "x-aws-ec2-metadata-token";

/// Everything the server writes until it closes, or until `quiet` passes
/// with nothing new (the connection may stay open).
async fn read_answers(s: &mut TcpStream, quiet: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(quiet.min(left), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&out).into(), true);
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// The status line of every answer in `answers` (bodies end with no line
/// break, so an answer may start mid-line).
fn status_lines(answers: &str) -> Vec<&str> {
    answers
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| answers[at..].split("\r\n").next().unwrap_or_default())
        .collect()
}

/// A token PUT head declaring a body, and that body: a credentials GET
/// with a valid token.
async fn put_smuggling_a_get(d: &TestDaemon) -> (String, String) {
    d.ready().await;
    let token = d.token(300).await;
    let smuggled = format!(
        "GET {CREDS_PATH} HTTP/1.1\r\nHost: {}\r\n{TOKEN}: {token}\r\n\r\n",
        d.addr
    );
    let head = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 300\r\nContent-Length: {}\r\n\r\n",
        d.addr,
        smuggled.len()
    );
    (head, smuggled)
}

/// The landed bug: a token PUT declaring a body got its 200 at once, and
/// the body, sent 300 ms later, was answered as a credentials GET.
#[tokio::test]
async fn a_body_sent_after_the_answer_is_never_parsed_as_a_request() {
    let d = TestDaemon::start().await;
    let (head, smuggled) = put_smuggling_a_get(&d).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = s.write_all(smuggled.as_bytes()).await;
    let (answers, _) = read_answers(&mut s, Duration::from_millis(1500)).await;
    assert_eq!(
        status_lines(&answers),
        ["HTTP/1.1 200 OK"],
        "one request, one answer: {answers}"
    );
    assert!(
        !answers.contains("AccessKeyId"),
        "the body was answered as a credentials request: {answers}"
    );
}

/// A body declared far larger than the server will read: one answer, then
/// the connection is closed instead of the filler being parsed (it was
/// answered with a 431).
#[tokio::test]
async fn an_unread_large_body_closes_the_connection_after_one_answer() {
    let d = TestDaemon::start().await;
    let head = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 300\r\nContent-Length: {}\r\n\r\n",
        d.addr,
        100 * 1024 * 1024
    );
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let filler = vec![b'x'; 1024 * 1024];
    // The server may close while the filler is still being sent: a write
    // error is fine, an answer to the filler is not.
    let (mut r, mut w) = s.split();
    let (_, (answers, closed)) =
        tokio::join!(w.write_all(&filler), read_answers_half(&mut r));
    assert!(closed, "no clean close (open, or reset): {answers}");
    assert_eq!(status_lines(&answers), ["HTTP/1.1 200 OK"], "{answers}");
    assert!(
        answers.to_ascii_lowercase().contains("connection: close"),
        "{answers}"
    );
}

async fn read_answers_half(r: &mut tokio::net::tcp::ReadHalf<'_>) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Only a clean end of stream counts as closed: a reset could have
    // thrown the answer away.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) => return true,
                Err(_) => return false,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (String::from_utf8_lossy(&out).into(), read.unwrap_or(false))
}

/// A small body that arrives is read and dropped, and the connection stays
/// usable: the next request on it is answered, with keep-alive.
#[tokio::test]
async fn a_small_body_is_drained_and_keep_alive_goes_on() {
    let d = TestDaemon::start().await;
    let put = |framing: &str, body: &str| {
        format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 60\r\n{framing}\r\n\r\n{body}",
            d.addr
        )
    };
    let requests = [
        put("Content-Length: 5", "hello"),
        put("Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n"),
        put("Content-Length: 0", ""),
    ];
    // One request at a time, as clients send them.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    for request in &requests {
        s.write_all(request.as_bytes()).await.unwrap();
        let (answer, closed) = read_answers(&mut s, Duration::from_millis(300)).await;
        assert!(!closed, "keep-alive ended after a drained body: {answer}");
        assert_eq!(status_lines(&answer), ["HTTP/1.1 200 OK"], "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // Pipelined: still one answer per request.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(requests.concat().as_bytes()).await.unwrap();
    let (answers, _) = read_answers(&mut s, Duration::from_millis(1000)).await;
    assert_eq!(status_lines(&answers), ["HTTP/1.1 200 OK"; 3], "{answers}");
}

/// The container endpoint runs on the same server: a GET whose body holds
/// a second, authorized GET gets one answer.
#[tokio::test]
async fn container_requests_carry_no_smuggled_request_in_their_body() {
    let d = TestDaemon::with_config(container::CONFIG).await;
    let auth = container::token(&d, "dev");
    container::served(&d, "dev", &auth).await;
    let addr = container::container_addr(&d);
    let inner = format!(
        "GET /role/dev HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n"
    );
    let outer = format!(
        "GET /role/nope HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        inner.len()
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(outer.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = s.write_all(inner.as_bytes()).await;
    let (answers, _) = read_answers(&mut s, Duration::from_millis(1500)).await;
    assert_eq!(status_lines(&answers).len(), 1, "{answers}");
    assert!(!answers.contains("AccessKeyId"), "{answers}");
}

/// A body that has not arrived within the wait: the answer says
/// `Connection: close`, the connection ends with a FIN (the client reads
/// the whole answer, then end of stream), and what was sent late is never
/// answered.
#[tokio::test]
async fn a_late_body_closes_the_connection_cleanly_after_one_answer() {
    let d = TestDaemon::start().await;
    let (head, smuggled) = put_smuggling_a_get(&d).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // Past the server's wait for the body (1 s).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let _ = s.write_all(smuggled.as_bytes()).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes");
    let answers = String::from_utf8_lossy(&out);
    assert!(
        read.is_ok(),
        "a reset, not a clean close: {read:?} after {answers}"
    );
    assert_eq!(status_lines(&answers), ["HTTP/1.1 200 OK"], "{answers}");
    assert!(
        answers.to_ascii_lowercase().contains("connection: close"),
        "{answers}"
    );
    assert!(!answers.contains("AccessKeyId"), "{answers}");
}

/// `Expect: 100-continue`: the server asks for the body, reads it, answers
/// and keeps the connection.
#[tokio::test]
async fn expect_100_continue_gets_its_continue_and_keep_alive() {
    let d = TestDaemon::start().await;
    let head = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 60\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        d.addr
    );
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let (interim, _) = read_answers(&mut s, Duration::from_millis(500)).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(b"hello").await.unwrap();
    let (answer, closed) = read_answers(&mut s, Duration::from_millis(500)).await;
    assert!(!closed, "{answer}");
    assert_eq!(status_lines(&answer), ["HTTP/1.1 200 OK"], "{answer}");
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 60\r\nContent-Length: 0\r\n\r\n",
        d.addr
    );
    s.write_all(put.as_bytes()).await.unwrap();
    let (again, _) = read_answers(&mut s, Duration::from_millis(500)).await;
    assert_eq!(status_lines(&again), ["HTTP/1.1 200 OK"], "{again}");
}
