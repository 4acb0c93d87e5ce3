//! Shared by the parser targets: telling a leaked secret from an output
//! that merely contains the same characters.
//!
//! The fuzzer steers inputs towards whatever a check compares, so a
//! "secret" soon equals a piece of a fixed message ("at byte 3"). A secret
//! leaks only if the output shows it because the input held it: the same
//! input with the secret masked must not show it too. The mask changes
//! only the secret's letters and digits, so every position and every bit
//! of syntax (`[`, `<`, quotes, `=`) stays and the input takes the same
//! path; a mask that turned a `]` into `X` once changed which error a file
//! got, and the fixed message of the first error passed for a leak.

/// Whether `shown` (what `show` makes of `input`, computed once by the
/// caller: an input may hold many secrets) shows `secret` only because
/// `input` holds it, judged against the outputs for `masked(input)`.
/// A secret without letters or digits cannot be masked this way and is
/// never counted; real keys and tokens are base64.
pub fn leaks(
    secret: &str,
    input: &str,
    shown: &str,
    show: impl Fn(&str) -> String,
) -> bool {
    shown.contains(secret) && !show(&masked(input, secret)).contains(secret)
}

/// `input` with every occurrence of `secret` replaced by a copy whose
/// ASCII letters and digits are all changed (to `X`, or `Y` for an `X`).
pub fn masked(input: &str, secret: &str) -> String {
    let mask: String = secret
        .chars()
        .map(|c| match c {
            'X' => 'Y',
            c if c.is_ascii_alphanumeric() => 'X',
            c => c,
        })
        .collect();
    input.replace(secret, &mask)
}
