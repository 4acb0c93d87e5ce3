//! Shared by the parser targets: telling a leaked secret from an output
//! that merely contains the same characters.
//!
//! The fuzzer steers inputs towards whatever a check compares, so a
//! "secret" soon equals a piece of a fixed message ("at byte 3"). A secret
//! leaks only if the output shows it because the input held it: the same
//! input with the secret masked (as many `X`s, so every position stays)
//! must not show it too.

/// Whether `shown` (what `show` makes of `input`, computed once by the
/// caller: an input may hold many secrets) shows `secret` only because
/// `input` holds it, judged against the outputs for `masked(input)`.
pub fn leaks(
    secret: &str,
    input: &str,
    shown: &str,
    show: impl Fn(&str) -> String,
) -> bool {
    if secret.bytes().all(|b| b == b'X') {
        return false;
    }
    shown.contains(secret) && !show(&masked(input, secret)).contains(secret)
}

/// `input` with every occurrence of `secret` replaced by `X`s.
pub fn masked(input: &str, secret: &str) -> String {
    input.replace(secret, &"X".repeat(secret.len()))
}
