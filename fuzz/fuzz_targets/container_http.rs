//! Raw request bytes through the real container-credentials endpoint
//! (`respond`, as the server calls it), with `@0@` and `@1@` standing for
//! the tokens of its two roles, `dev` and `ops`.
//!
//! Invariants: an answer that carries a role's secret key or session token
//! is a 200 to a GET/HEAD of `/role/THAT-ROLE`, from a request with exactly
//! one `Host` naming the listener, no proxy or browser markers, and
//! exactly one `Authorization` holding that role's token (never the other
//! role's); it carries no other role's secrets, and its body is JSON with
//! the keys SDKs read. Every other answer is a JSON `{Code, Message}`. No
//! answer is a 5xx.
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

const HOSTS: [&str; 2] = ["127.0.0.1:16926", "localhost:16926"];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let secrets: Vec<[String; 2]> = http::CONTAINER_ROLES
        .iter()
        .map(|r| http::secrets(r))
        .collect();
    if secrets
        .iter()
        .flatten()
        .any(|s| contains(data, s.as_bytes()))
    {
        return;
    }
    if let Some(x) = http::container(data) {
        check_answer(&x, &secrets);
    }
    let outcome = stream::container_stream(data);
    framing::assert_framed(&outcome);
    for x in &outcome.exchanges {
        check_answer(x, &secrets);
    }
});

fn check_answer(x: &http::Exchange, secrets: &[[String; 2]]) {
    assert!(!x.status.is_server_error(), "{}", x.status);
    let doc: serde_json::Value =
        serde_json::from_slice(&x.body).expect("every answer is JSON");
    let carrying: Vec<usize> = (0..secrets.len())
        .filter(|&i| secrets[i].iter().any(|s| contains(&x.body, s.as_bytes())))
        .collect();
    match carrying.as_slice() {
        [] => {
            assert!(
                doc["Code"].is_string() && doc["Message"].is_string(),
                "{doc}"
            );
            assert_ne!(x.status, StatusCode::OK);
        }
        [role] => check_credentials_answer(x, &doc, *role),
        _ => panic!("one answer carries several roles' secrets"),
    }
}

fn check_credentials_answer(x: &http::Exchange, doc: &serde_json::Value, role: usize) {
    let name = http::CONTAINER_ROLES[role];
    assert_eq!(x.status, StatusCode::OK, "credentials in a non-200 answer");
    assert!(
        x.method == Method::GET || x.method == Method::HEAD,
        "{}",
        x.method
    );
    let segments: Vec<&str> = x.uri.path().split('/').filter(|s| !s.is_empty()).collect();
    assert_eq!(
        segments,
        ["role", name],
        "{name}'s credentials at {}",
        x.uri
    );
    x.assert_names_this_listener(&HOSTS);
    for refused in [
        "x-forwarded-for",
        "origin",
        "sec-fetch-site",
        "sec-fetch-mode",
    ] {
        assert!(
            x.headers.get(refused).is_none(),
            "credentials despite {refused}"
        );
    }
    let auth: Vec<_> = x.headers.get_all("authorization").iter().collect();
    assert_eq!(
        auth.len(),
        1,
        "credentials without exactly one Authorization"
    );
    assert_eq!(
        auth[0].as_bytes(),
        http::container_token(role).as_bytes(),
        "{name}'s credentials for another token"
    );
    for key in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(doc[key].is_string(), "no {key} in the credentials");
    }
    assert_eq!(doc["AccessKeyId"], http::access_key_id(name).as_str());
}
