//! Raw request bytes through the real IMDS endpoint (`respond`, as the
//! server calls it), with `@T@`/`@E@`/`@F@` standing for a valid, an
//! expired and a foreign-key IMDSv2 token.
//!
//! Invariants: an answer that carries the role's secret key or session
//! token is a 200 to a GET/HEAD of the role's credentials path, from a
//! request with exactly one `Host` naming the listener and exactly one
//! token header holding the valid token; that body is JSON with the keys
//! SDKs read. A 200 to a token PUT is a token that verifies. No answer is a
//! 5xx.
//!
//! The same bytes then go through the connection loop the server runs for
//! every socket (`@P@` pauses the client, `@C@` crowds the listener): each
//! request it hands to the endpoint must hold the invariants above, and
//! the framing ones of `framing.rs` (one answer per framed request; a
//! body's bytes never become a request).
#![no_main]

mod framing;

use imdsd::fuzzing::http::{self, Method, StatusCode};
use imdsd::fuzzing::stream;
use libfuzzer_sys::fuzz_target;

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const HOSTS: [&str; 4] = [
    "169.254.169.254",
    "169.254.169.254:80",
    "localhost",
    "localhost:80",
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let secrets = http::secrets(http::IMDS_ROLE);
    // Secrets typed into the input may be echoed as typed; skip those.
    if secrets.iter().any(|s| contains(data, s.as_bytes())) {
        return;
    }
    if let Some(x) = http::imds(data) {
        check_answer(&x);
    }
    let outcome = stream::imds_stream(data);
    framing::assert_framed(&outcome);
    for x in &outcome.exchanges {
        check_answer(x);
    }
});

fn check_answer(x: &http::Exchange) {
    let secrets = http::secrets(http::IMDS_ROLE);
    assert!(!x.status.is_server_error(), "{}", x.status);
    let carries = secrets.iter().any(|s| contains(&x.body, s.as_bytes()));
    if carries {
        check_credentials_answer(x);
    }
    if x.method == Method::PUT && x.status == StatusCode::OK {
        let token = std::str::from_utf8(&x.body).expect("a token is text");
        let key = imdsd::fuzzing::ImdsTokenKey::new(&[0x5a; 32]);
        assert!(
            matches!(
                key.verify(token.as_bytes(), http::now()),
                imdsd::fuzzing::Verdict::Valid { .. }
            ),
            "a PUT answered with something that is not a valid token"
        );
        assert!(x.headers.get("x-forwarded-for").is_none());
    }
}

fn check_credentials_answer(x: &http::Exchange) {
    assert_eq!(x.status, StatusCode::OK, "credentials in a non-200 answer");
    assert!(
        x.method == Method::GET || x.method == Method::HEAD,
        "{}",
        x.method
    );
    let segments: Vec<&str> = x.uri.path().split('/').filter(|s| !s.is_empty()).collect();
    assert_eq!(
        segments,
        [
            "latest",
            "meta-data",
            "iam",
            "security-credentials",
            http::IMDS_ROLE
        ],
        "credentials served at {}",
        x.uri
    );
    x.assert_names_this_listener(&HOSTS);
    let tokens: Vec<_> = x.headers.get_all(TOKEN_HEADER).iter().collect();
    assert_eq!(tokens.len(), 1, "credentials without exactly one token");
    assert_eq!(
        tokens[0].as_bytes(),
        http::valid_imds_token().as_bytes(),
        "credentials for a token that is not the valid one"
    );
    let doc: serde_json::Value = serde_json::from_slice(&x.body).expect("a JSON body");
    for key in [
        "Code",
        "LastUpdated",
        "Type",
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
    ] {
        assert!(doc[key].is_string(), "no {key} in the credentials");
    }
    assert_eq!(doc["Code"], "Success");
    assert_eq!(
        doc["AccessKeyId"],
        http::access_key_id(http::IMDS_ROLE).as_str()
    );
}
