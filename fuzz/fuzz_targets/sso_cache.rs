//! The SSO login cache (`~/.aws/sso/cache/*.json`): when to use or renew
//! the token, and the file written back after a renewal. The first 8
//! bytes are the time; the rest is the cache file, a NUL byte, then the
//! SSO-OIDC CreateToken answer.
//!
//! Invariants: the token's `Debug` never shows the access token, refresh
//! token or client secret; a renewal never panics, whatever `expiresIn`
//! says; the file written back keeps every other field, holds the new
//! access token, and reads back as a usable token that expires no earlier
//! than now and at most a year later.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use imdsd::fuzzing;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const SECRET_FIELDS: [&str; 3] = ["accessToken", "refreshToken", "clientSecret"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, rest) = data.split_at(8);
    // From 1970 to 2286: a plausible clock.
    let unix = (i64::from_le_bytes(head.try_into().unwrap()) % 10_000_000_000).abs();
    let now = fuzzing::time(unix);
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (cache, renewal) = rest.split_once('\0').unwrap_or((rest, ""));

    let out = fuzzing::sso_cache(cache, now);
    assert_eq!(out.debug.is_some(), out.plan.is_some());
    let show = |cache: &str| fuzzing::sso_cache(cache, now).debug.unwrap_or_default();
    let shown = out.debug.clone().unwrap_or_default();
    for s in secret_values(cache) {
        assert!(!common::leaks(&s, cache, &shown, show), "{shown:?}");
    }

    let Some(written) = fuzzing::sso_renewed(cache, renewal, now) else {
        return;
    };
    // Compared after the same round trip: serde_json's float parsing is not
    // exact, so a number may move by one ulp through any rewrite.
    let before: serde_json::Value = serde_json::from_str(cache).unwrap();
    let before: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&before.to_string()).unwrap();
    let after: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&written).unwrap();
    // serde skips unknown fields without checking their escapes (a lone
    // surrogate), which a `Value` refuses.
    if let Ok(answer) = serde_json::from_str::<serde_json::Value>(renewal) {
        assert_eq!(after["accessToken"], answer["accessToken"]);
    }
    for (k, v) in &before {
        if !["accessToken", "expiresAt", "refreshToken"].contains(&k.as_str()) {
            assert_eq!(after.get(k), Some(v), "{k} changed");
        }
    }
    let expires = after["expiresAt"].as_str().expect("an expiresAt");
    let expires: DateTime<Utc> = DateTime::parse_from_rfc3339(expires)
        .unwrap_or_else(|e| panic!("expiresAt {expires:?} does not read back: {e}"))
        .into();
    assert!(
        expires >= now - TimeDelta::seconds(1) && expires <= now + TimeDelta::days(366),
        "{expires}"
    );
    let reread = fuzzing::sso_cache(&written, now);
    assert!(
        reread.plan.is_some(),
        "the written cache does not read back"
    );
});

/// The secret fields' string values, at least 4 bytes long and found once
/// in the text.
fn secret_values(text: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    SECRET_FIELDS
        .iter()
        .filter_map(|k| map.get(*k)?.as_str())
        .filter(|s| s.len() >= 4 && text.matches(*s).count() == 1)
        .map(str::to_string)
        .collect()
}
