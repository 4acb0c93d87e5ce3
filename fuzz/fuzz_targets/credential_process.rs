//! The JSON a `credential_process` helper prints (`Version: 1`), and the
//! documents the daemon would serve from what it parsed. The first 8 bytes
//! are the time; the rest is the output.
//!
//! Invariants: parsed credentials have a key id and a secret, and an
//! expiry (if any) after now; the `Debug` of what was parsed and every
//! error never show the secret key or session token; served documents are
//! JSON holding exactly what was parsed, with an `Expiration` SDKs can
//! read (`YYYY-MM-DDTHH:MM:SSZ`).
#![no_main]

use imdsd::fuzzing;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let unix = i64::from_le_bytes(head.try_into().unwrap()) % 20_000_000_000;
    let now = fuzzing::time(unix);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let secrets = secret_values(text, &["SecretAccessKey", "SessionToken"]);
    let show = |text: &str| match fuzzing::credential_process(text, now) {
        Ok(p) if !p.access_key_id.is_empty() => p.debug.replace(&p.access_key_id, ""),
        Ok(p) => p.debug,
        Err((display, debug)) => display + &debug,
    };
    let shown = show(text);
    for s in &secrets {
        assert!(!common::leaks(s, text, &shown, show), "{shown}");
    }
    if let Ok(p) = fuzzing::credential_process(text, now) {
        assert!(!p.access_key_id.is_empty() && !p.secret_access_key.is_empty());
        assert!(p.expiration.is_none_or(|e| e > now));
        check_documents(&p, now);
    }
});

fn check_documents(p: &fuzzing::Parsed, now: chrono::DateTime<chrono::Utc>) {
    let Some(docs) = fuzzing::documents(p, now) else {
        assert!(
            p.expiration.is_none()
                || p.session_token.as_deref().is_none_or(str::is_empty)
        );
        return;
    };
    for doc in docs {
        let v: serde_json::Value = serde_json::from_str(&doc).expect("a JSON document");
        assert_eq!(v["AccessKeyId"], p.access_key_id.as_str());
        assert_eq!(v["SecretAccessKey"], p.secret_access_key.as_str());
        let expiration = v["Expiration"].as_str().expect("an Expiration");
        assert!(
            sdk_timestamp(expiration),
            "Expiration {expiration:?} is not YYYY-MM-DDTHH:MM:SSZ"
        );
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the only form every SDK parses.
fn sdk_timestamp(s: &str) -> bool {
    s.len() == 20
        && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok()
        && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
}

/// Secret values in the text that appear in it once (an error may quote a
/// value that also stands in a non-secret place, or a key).
fn secret_values(text: &str, keys: &[&str]) -> Vec<String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| map.get(*k)?.as_str())
        .filter(|s| s.len() >= 4 && text.matches(*s).count() == 1)
        .map(str::to_string)
        .collect()
}
