//! The AWS config and credentials files (the INI dialect the CLI reads),
//! and resolving every profile in them into a plan. The input is the
//! config file, a NUL byte, then the credentials file.
//!
//! Invariants: neither the parse error, the `Debug` of the parsed files,
//! each profile's plan (`Debug`) nor its error (`Display` and `Debug`)
//! ever show a secret key or session token from either file.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const SECRET_KEYS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let show = |text: &str| {
        let (config, credentials) = text.split_once('\0').unwrap_or((text, ""));
        match imdsd::fuzzing::aws_profiles(config, credentials) {
            Err(e) => e,
            Ok(out) => {
                let mut shown = out.debug;
                for (_, plan) in out.plans {
                    match plan {
                        Ok(debug) => shown += &debug,
                        Err((display, debug)) => shown = shown + &display + &debug,
                    }
                }
                shown
            }
        }
    };
    let shown = show(text);
    for s in secret_values(text) {
        assert!(
            !common::leaks(&s, text, &shown, show),
            "a secret in {shown:?}"
        );
    }
});

/// Values of the secret keys (`key = value` lines; INI also allows `:`),
/// at least 4 bytes long and found once in the whole input: a value that
/// also stands elsewhere (a profile name, an ARN) may be printed from
/// there.
fn secret_values(text: &str) -> Vec<String> {
    // Only the first NUL splits the two files; any other is a byte in a
    // line (of a `credential_process` command, say), as in the INI reader.
    let (config, credentials) = text.split_once('\0').unwrap_or((text, ""));
    [config, credentials]
        .into_iter()
        .flat_map(|file| file.split(['\n', '\r']))
        .filter_map(|line| {
            let i = line.find(['=', ':'])?;
            let (key, value) = (line[..i].trim(), line[i + 1..].trim());
            SECRET_KEYS.contains(&key).then_some(value)
        })
        .filter(|v| v.len() >= 4 && text.matches(*v).count() == 1)
        .map(str::to_string)
        .collect()
}
