//! The IMDS wire contract (sdk-contract.md sections 1.1 to 1.5), checked
//! over real HTTP against an in-process daemon. Each test names the
//! contract item it covers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{CONFIG, CREDS_PATH, TestDaemon, raw, request};

const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "x-aws-ec2-metadata-token";

// === 1.1 listener / transport ===

#[tokio::test]
async fn c3_doubled_leading_slash_is_tolerated() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let r = d.get("//latest/meta-data/iam/security-credentials/").await;
    assert_eq!((r.status, r.text().as_str()), (200, "dev"));
    let r = d.get(&format!("/{CREDS_PATH}")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn c4_token_put_accepts_length_zero_no_length_and_chunked() {
    let d = TestDaemon::start().await;
    let host = d.addr;
    for framing in [
        "Content-Length: 0\r\n",
        "",
        "Transfer-Encoding: chunked\r\n",
    ] {
        let body = if framing.contains("chunked") {
            "0\r\n\r\n"
        } else {
            ""
        };
        let req = format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\n{TTL}: 300\r\n{framing}Connection: close\r\n\r\n{body}"
        );
        let r = raw(d.addr, req.as_bytes()).await;
        assert_eq!(r.status, 200, "framing {framing:?}: {r:?}");
        assert_eq!(r.header(TTL), Some("300"));
    }
}

#[tokio::test]
async fn c5_no_user_agent_needed_and_underscore_header_names_accepted() {
    let d = TestDaemon::start().await;
    let req = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\nuser_agent: aws-sdk-java/1.0\r\n{TTL}: 21600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        d.addr
    );
    assert_eq!(raw(d.addr, req.as_bytes()).await.status, 200);
}

#[tokio::test]
async fn c6_get_carrying_the_ttl_header_is_served() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let token = d.token(21600).await;
    let r = request(
        d.addr,
        "GET",
        CREDS_PATH,
        &[(TOKEN, &token), (TTL, "21600")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn c7_responses_carry_real_imds_headers_and_stay_keep_alive() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let r = d.get(CREDS_PATH).await;
    assert_eq!(r.header("server"), Some("EC2ws"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("accept-ranges"), Some("none"));
    // Two requests on one connection: keep-alive is kept on purpose.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 60\r\nContent-Length: 0\r\n\r\n",
        d.addr
    );
    s.write_all(put.as_bytes()).await.unwrap();
    s.write_all(put.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed after one answer");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn c8_foreign_host_header_is_refused_dns_rebinding() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let token = d.token(300).await;
    let req = format!(
        "GET {CREDS_PATH} HTTP/1.1\r\nHost: attacker.example:{}\r\n{TOKEN}: {token}\r\nConnection: close\r\n\r\n",
        d.addr.port()
    );
    assert_eq!(raw(d.addr, req.as_bytes()).await.status, 403);
    let req = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: rebind.example\r\n{TTL}: 300\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(d.addr, req.as_bytes()).await.status, 403);
    let req = format!(
        "GET {CREDS_PATH} HTTP/1.1\r\nHost: localhost:{}\r\n{TOKEN}: {token}\r\nConnection: close\r\n\r\n",
        d.addr.port()
    );
    assert_eq!(raw(d.addr, req.as_bytes()).await.status, 200);
    let r = request(
        d.addr,
        "GET",
        CREDS_PATH,
        &[(TOKEN, &token), ("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(r.status, 403);
}

/// RFC 9112 read strictly (issue 9): an absolute-form target names the
/// host, so a foreign one is refused like a foreign `Host`; two `Host`
/// headers, or two of a header the endpoint reads once, are 400 instead of
/// "the first wins".
#[tokio::test]
async fn strict_hosts_and_single_security_headers() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let token = d.token(300).await;
    let host = d.addr;
    let get = |target: &str, headers: &str| {
        format!("GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n")
    };
    let cases = [
        (
            get(
                &format!("http://evil{CREDS_PATH}"),
                &format!("Host: {host}\r\n{TOKEN}: {token}\r\n"),
            ),
            403,
        ),
        (
            get(
                &format!("http://{host}{CREDS_PATH}"),
                &format!("Host: {host}\r\n{TOKEN}: {token}\r\n"),
            ),
            200,
        ),
        (
            get(
                CREDS_PATH,
                &format!("Host: {host}\r\nHost: evil\r\n{TOKEN}: {token}\r\n"),
            ),
            400,
        ),
        (
            get(
                CREDS_PATH,
                &format!("Host: {host}\r\n{TOKEN}: {token}\r\n{TOKEN}: {token}\r\n"),
            ),
            400,
        ),
        (
            format!(
                "PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\n{TTL}: 300\r\n{TTL}: 21600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            400,
        ),
    ];
    for (req, status) in cases {
        let r = raw(d.addr, req.as_bytes()).await;
        assert_eq!(r.status, status, "{req}");
        if status != 200 {
            assert!(!r.text().contains("SecretAccessKey"), "{req}");
        }
    }
}

// === 1.2 PUT /latest/api/token ===

#[tokio::test]
async fn c10_c12_ttl_header_is_case_insensitive_and_echoed() {
    let d = TestDaemon::start().await;
    let r = d
        .put_token(&[("x-AWS-EC2-metadata-TOKEN-ttl-seconds", "300")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"),
        Some("300")
    );
    let token = r.text();
    assert!(!token.ends_with('\n'), "token body has no newline");
}

#[tokio::test]
async fn c11_ttl_out_of_range_missing_or_not_an_integer_is_400() {
    let d = TestDaemon::start().await;
    for ttl in ["0", "21601", "-5", "abc", "1.5", ""] {
        assert_eq!(d.put_token(&[(TTL, ttl)]).await.status, 400, "ttl {ttl:?}");
    }
    assert_eq!(d.put_token(&[]).await.status, 400, "missing ttl");
    assert_eq!(d.put_token(&[(TTL, "1")]).await.status, 200);
    assert_eq!(d.put_token(&[(TTL, "21600")]).await.status, 200);
}

#[tokio::test]
async fn c13_token_is_a_url_safe_header_value() {
    let d = TestDaemon::start().await;
    let token = d.token(21600).await;
    assert!(token.len() >= 40);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
}

#[tokio::test]
async fn c14_tokens_stay_valid_across_a_restart() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let token = d.token(21600).await;
    let (clock, sts, state_dir, tmp) = d.stop().await;
    let d = TestDaemon::start_with(CONFIG, clock, sts, state_dir, tmp).await;
    d.ready().await;
    let r = request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &token)]).await;
    assert_eq!(r.status, 200, "token minted before the restart: {r:?}");
}

#[tokio::test]
async fn c15_put_with_x_forwarded_for_is_403() {
    let d = TestDaemon::start().await;
    let r = d
        .put_token(&[(TTL, "300"), ("X-Forwarded-For", "203.0.113.9")])
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn c16_other_methods_on_the_token_path_are_405_with_allow() {
    let d = TestDaemon::start().await;
    for method in ["GET", "POST", "DELETE"] {
        let r = request(d.addr, method, "/latest/api/token", &[(TTL, "300")]).await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("OPTIONS, PUT"));
    }
}

// === 1.3 token enforcement ===

#[tokio::test]
async fn c19_missing_unknown_malformed_or_expired_token_is_401() {
    let d = TestDaemon::start().await;
    d.ready().await;
    assert_eq!(request(d.addr, "GET", CREDS_PATH, &[]).await.status, 401);
    let other_key = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, other_key)])
            .await
            .status,
        401
    );
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, "not-a-token")])
            .await
            .status,
        401
    );
    let short = d.token(1).await;
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &short)])
            .await
            .status,
        200
    );
    d.clock.advance(chrono::TimeDelta::seconds(2));
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &short)])
            .await
            .status,
        401
    );
    // Listings need a token too.
    assert_eq!(
        request(d.addr, "GET", "/latest/meta-data/", &[])
            .await
            .status,
        401
    );
}

/// The MAC is what makes a token: a six-hour token, well formed and far
/// from expiry, is refused when another key signed it or one character of
/// it changed.
#[tokio::test]
async fn c19_a_token_signed_with_another_key_or_altered_is_401() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let other = TestDaemon::start().await;
    assert_ne!(d.state_dir, other.state_dir);
    let foreign = other.token(21600).await;
    assert_eq!(
        request(other.addr, "GET", CREDS_PATH, &[(TOKEN, &foreign)])
            .await
            .status,
        200,
        "the foreign token is valid where it was minted"
    );
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &foreign)])
            .await
            .status,
        401,
        "a token minted with another state directory's key"
    );
    let valid = d.token(21600).await;
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &valid)])
            .await
            .status,
        200
    );
    // Character 40 lies inside the MAC (the first 12 encode the version
    // and expiry).
    let mut altered = valid.into_bytes();
    altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, &altered)])
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn c20_v1_mode_serves_tokenless_gets_but_still_rejects_bad_tokens() {
    let d = TestDaemon::with_config(&CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nv1 = true",
    ))
    .await;
    d.ready().await;
    assert_eq!(request(d.addr, "GET", CREDS_PATH, &[]).await.status, 200);
    assert_eq!(
        request(d.addr, "GET", CREDS_PATH, &[(TOKEN, "forged")])
            .await
            .status,
        401
    );
}

// === 1.4 paths and bodies ===

#[tokio::test]
async fn c21_trailing_slash_on_leaf_paths() {
    let d = TestDaemon::start().await;
    let with = d
        .get("/latest/meta-data/placement/availability-zone/")
        .await;
    let without = d.get("/latest/meta-data/placement/availability-zone").await;
    assert_eq!((with.status, with.text()), (200, "us-east-1a".to_string()));
    assert_eq!(without.text(), "us-east-1a");
    assert_eq!(
        d.get(&format!("{CREDS_PATH}/")).await.status,
        d.get(CREDS_PATH).await.status
    );
}

#[tokio::test]
async fn c22_role_listing_is_exactly_the_name() {
    let d = TestDaemon::start().await;
    for p in [
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials",
    ] {
        let r = d.get(p).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"dev", "no trailing newline");
        assert_eq!(r.header("content-length"), Some("3"));
    }
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/other")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn c23_credentials_document_exact_shape() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let r = d.get(CREDS_PATH).await;
    let text = r.text();
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().split('"').nth(1))
        .collect();
    assert_eq!(
        keys,
        [
            "Code",
            "LastUpdated",
            "Type",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration"
        ]
    );
    let v = r.json();
    assert_eq!(v["Code"], "Success");
    assert_eq!(v["Type"], "AWS-HMAC");
    assert_eq!(v["AccessKeyId"], crate::fake_sts::FakeSts::issued_key(1));
    assert_eq!(
        v["SecretAccessKey"],
        crate::fake_sts::FakeSts::issued_secret(1)
    );
    assert_eq!(v["Token"], crate::fake_sts::FakeSts::issued_token(1, "dev"));
    // The fake sends milliseconds; the daemon serves whole seconds and Z.
    let expiration = v["Expiration"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(expiration, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
        "{expiration}"
    );
    assert_eq!(expiration.len(), 20);
    let last_updated = v["LastUpdated"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(last_updated, "%Y-%m-%dT%H:%M:%SZ").is_ok()
    );
    assert!(v.get("AccountId").is_none());
}

#[tokio::test]
async fn c24_extended_path_is_404_not_401_or_500() {
    let d = TestDaemon::start().await;
    d.ready().await;
    for p in [
        "/latest/meta-data/iam/security-credentials-extended/",
        "/latest/meta-data/iam/security-credentials-extended/dev",
    ] {
        assert_eq!(d.get(p).await.status, 404, "{p}");
    }
}

#[tokio::test]
async fn c25_iam_info() {
    let d = TestDaemon::start().await;
    let v = d.get("/latest/meta-data/iam/info").await.json();
    assert_eq!(v["Code"], "Success");
    assert_eq!(
        v["InstanceProfileArn"],
        "arn:aws:iam::123456789012:instance-profile/dev"
    );
    assert!(v["InstanceProfileId"].as_str().unwrap().starts_with("AIPA"));
}

#[tokio::test]
async fn c26_region_az_and_identity_document() {
    let d = TestDaemon::start().await;
    let az = d
        .get("/latest/meta-data/placement/availability-zone/")
        .await
        .text();
    let region = d.get("/latest/meta-data/placement/region").await.text();
    assert_eq!(region, "us-east-1", "no trailing newline");
    assert_eq!(
        &az[..az.len() - 1],
        region,
        "botocore drops the last character of the AZ"
    );
    let doc = d
        .get("/latest/dynamic/instance-identity/document")
        .await
        .json();
    assert_eq!(doc["region"], "us-east-1");
}

#[tokio::test]
async fn c27_c28_instance_id_listings_and_404_page() {
    let d = TestDaemon::start().await;
    let id = d.get("/latest/meta-data/instance-id").await.text();
    assert!(id.starts_with("i-") && id.len() == 19, "{id}");
    assert_eq!(
        d.get("/latest/meta-data/iam").await.text(),
        "info\nsecurity-credentials/"
    );
    let r = d.get("/latest/meta-data/nothing-here").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("404 - Not Found"));
}

// === limits ===

#[tokio::test]
async fn oversized_request_head_is_refused_not_read_forever() {
    let d = TestDaemon::start().await;
    let big = "x".repeat(64 * 1024);
    let req = format!(
        "GET /latest/meta-data/ HTTP/1.1\r\nHost: {}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n",
        d.addr
    );
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let _ = s.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answered");
    let head = String::from_utf8_lossy(&out);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let d = TestDaemon::custom(crate::util::CONFIG, crate::util::source_env(), |o| {
        o.limits.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x")
        .await
        .unwrap();
    let sent = tokio::time::Instant::now();
    let mut out = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the slow client was not disconnected");
    // hyper ends the connection without an answer when the header timeout
    // fires (no 408): closed with nothing sent, and by the timeout, not
    // earlier.
    assert_eq!(
        String::from_utf8_lossy(&out),
        "",
        "an answer to half a head"
    );
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "cut off after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "cut off after {waited:?}");
}

#[tokio::test]
async fn allow_uids_serves_listed_users_and_drops_everyone_else() {
    let me = imdsd::current_uid();
    let only_me = crate::util::CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\nallow_uids = [{me}]"),
    );
    let d = TestDaemon::with_config(&only_me).await;
    d.ready().await;
    assert_eq!(d.get("/latest/meta-data/instance-id").await.status, 200);

    let someone_else = crate::util::CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        &format!(
            "listen = \"127.0.0.1:0\"\nallow_uids = [{}]",
            me.wrapping_add(4242)
        ),
    );
    let d = TestDaemon::with_config(&someone_else).await;
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\n{TTL}: 60\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        d.addr
    );
    // The connection is accepted, then closed without a byte: not refused
    // at connect, not left hanging, not answered.
    let answer = crate::util::try_raw(d.addr, put.as_bytes()).await;
    let kind = answer
        .as_ref()
        .map_err(std::io::Error::kind)
        .expect_err("a user outside allow_uids got an answer");
    assert!(
        matches!(
            kind,
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "not the allow_uids refusal: {answer:?}"
    );
}
