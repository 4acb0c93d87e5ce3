//! IMDSv2 session tokens: stateless, so they survive a daemon restart.
//!
//! A token is `base64url(version ‖ expiry ‖ HMAC-SHA256(key, version ‖
//! expiry))`: 55 characters, a valid header value, like real IMDS's 56. The
//! key lives in the state directory (see `state`), so a client holding a
//! 6-hour token (the Rust SDK caches one and retries it on 401) keeps
//! working after a restart. Verifying decodes into a stack buffer and
//! compares the MAC in constant time: no allocation on the hot path.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Longest TTL a client may ask for (six hours), as on EC2.
pub(crate) const MAX_TTL_SECS: u32 = 21_600;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const RAW_LEN: usize = 1 + 8 + MAC_LEN;
/// Length of an encoded token.
pub(crate) const TOKEN_LEN: usize = 55;

/// The secret that signs tokens.
#[derive(Clone)]
pub(crate) struct TokenKey {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(** redacted **)")
    }
}

/// The outcome of checking a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// Good until this unix time.
    Valid {
        expires_at: i64,
    },
    Expired,
    /// Not a token this daemon (with this key) minted.
    Invalid,
}

/// Why a token PUT's TTL header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TtlError {
    #[error("missing X-aws-ec2-metadata-token-ttl-seconds header")]
    Missing,
    #[error(
        "X-aws-ec2-metadata-token-ttl-seconds must be a whole number of seconds from 1 to 21600"
    )]
    Invalid,
}

/// Parses the TTL header of a token PUT: an integer in 1..=21600.
pub(crate) fn parse_ttl(header: Option<&[u8]>) -> Result<u32, TtlError> {
    let raw = header.ok_or(TtlError::Missing)?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| TtlError::Invalid)?
        .trim();
    let all_digits =
        !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(ttl) if all_digits && (1..=MAX_TTL_SECS).contains(&ttl) => Ok(ttl),
        _ => Err(TtlError::Invalid),
    }
}

impl TokenKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        let keyed =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        TokenKey { keyed }
    }

    fn mac(&self, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(signed);
        mac
    }

    /// A token valid for `ttl_secs` from `now`.
    pub(crate) fn mint(&self, now: DateTime<Utc>, ttl_secs: u32) -> String {
        let expires_at = now.timestamp() + i64::from(ttl_secs);
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&expires_at.to_be_bytes());
        let tag = self.mac(&raw[..9]).finalize().into_bytes();
        raw[9..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a token presented at `now`.
    pub(crate) fn verify(&self, token: &[u8], now: DateTime<Utc>) -> TokenCheck {
        if token.len() != TOKEN_LEN {
            return TokenCheck::Invalid;
        }
        let mut raw = [0u8; RAW_LEN + 2];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(RAW_LEN) if raw[0] == VERSION => {}
            _ => return TokenCheck::Invalid,
        }
        if self.mac(&raw[..9]).verify_slice(&raw[9..RAW_LEN]).is_err() {
            return TokenCheck::Invalid;
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&raw[1..9]);
        let expires_at = i64::from_be_bytes(expiry);
        if now.timestamp() >= expires_at {
            TokenCheck::Expired
        } else {
            TokenCheck::Valid { expires_at }
        }
    }
}

/// Slots of [`Verified`]: one per token a burst of clients presents at
/// once, more or less (a miss costs only the full check).
const VERIFIED_SLOTS: usize = 16;

/// Tokens that verified lately, with their expiry: an SDK presents the
/// same token on every request for up to six hours, and decoding it and
/// computing its HMAC again was a tenth of a keep-alive request's own
/// work. A token seen before is compared in constant time with the one a
/// slot holds (so its timing says nothing of that token); only a token
/// that verified is ever stored, and its expiry is checked at every use as
/// [`TokenKey::verify`] checks it. One per listener: a reload that changes
/// the key builds a new one.
#[derive(Default)]
pub(crate) struct Verified {
    slots: [ArcSwapOption<([u8; TOKEN_LEN], i64)>; VERIFIED_SLOTS],
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verified(** redacted **)")
    }
}

impl Verified {
    /// What [`TokenKey::verify`] says of `token` at `now`.
    pub(crate) fn check(
        &self,
        key: &TokenKey,
        token: &[u8],
        now: DateTime<Utc>,
    ) -> TokenCheck {
        let Ok(presented) = <[u8; TOKEN_LEN]>::try_from(token) else {
            return TokenCheck::Invalid;
        };
        // The second-to-last character carries six bits of the MAC (the
        // last one only two): a spread that a client cannot use to reach
        // another client's slot for anything but a miss.
        let slot = &self.slots[usize::from(presented[TOKEN_LEN - 2]) % VERIFIED_SLOTS];
        if let Some(seen) = &*slot.load()
            && bool::from(seen.0.ct_eq(&presented))
        {
            return match seen.1 {
                expires_at if now.timestamp() >= expires_at => TokenCheck::Expired,
                expires_at => TokenCheck::Valid { expires_at },
            };
        }
        let check = key.verify(token, now);
        if let TokenCheck::Valid { expires_at } = check {
            slot.store(Some(Arc::new((presented, expires_at))));
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn remembered_tokens_check_as_the_key_does() {
        let (key, other) = (TokenKey::new(&[7; 32]), TokenKey::new(&[8; 32]));
        let verified = Verified::default();
        let token = key.mint(now(), 300);
        let later = now() + TimeDelta::seconds(300);
        for _ in 0..2 {
            for at in [now(), later - TimeDelta::seconds(1), later] {
                let t = token.as_bytes();
                assert_eq!(verified.check(&key, t, at), key.verify(t, at));
            }
        }
        // A forgery of the same length, in the same slot, is still checked.
        let mut forged = token.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(verified.check(&key, &forged, now()), TokenCheck::Invalid);
        // Another listener's key: its own memo, its own answer.
        let theirs = Verified::default();
        assert_eq!(
            theirs.check(&other, token.as_bytes(), now()),
            TokenCheck::Invalid
        );
        assert_eq!(verified.check(&key, b"short", now()), TokenCheck::Invalid);
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let key = TokenKey::new(&[7; 32]);
        let token = key.mint(now(), 300);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(http::HeaderValue::from_str(&token).is_ok());
        let expires_at = now().timestamp() + 300;
        assert_eq!(
            key.verify(token.as_bytes(), now()),
            TokenCheck::Valid { expires_at }
        );
        let later = now() + TimeDelta::seconds(299);
        assert_eq!(
            key.verify(token.as_bytes(), later),
            TokenCheck::Valid { expires_at }
        );
        let at_expiry = now() + TimeDelta::seconds(300);
        assert_eq!(key.verify(token.as_bytes(), at_expiry), TokenCheck::Expired);
    }

    #[test]
    fn tokens_survive_a_new_key_instance_with_the_same_bytes() {
        let token = TokenKey::new(&[7; 32]).mint(now(), 21_600);
        let restarted = TokenKey::new(&[7; 32]);
        assert!(matches!(
            restarted.verify(token.as_bytes(), now()),
            TokenCheck::Valid { .. }
        ));
    }

    #[test]
    fn other_keys_tampering_and_garbage_are_invalid() {
        let key = TokenKey::new(&[7; 32]);
        let token = key.mint(now(), 300);
        assert_eq!(
            TokenKey::new(&[8; 32]).verify(token.as_bytes(), now()),
            TokenCheck::Invalid
        );
        // Extend the expiry without the key: the MAC no longer matches.
        let forged = TokenKey::new(&[8; 32]).mint(now(), 21_600);
        assert_eq!(key.verify(forged.as_bytes(), now()), TokenCheck::Invalid);
        let mut flipped = token.clone().into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.verify(&flipped, now()), TokenCheck::Invalid);
        for garbage in [&b""[..], b"x", &[b'!'; TOKEN_LEN], &token.as_bytes()[1..]] {
            assert_eq!(key.verify(garbage, now()), TokenCheck::Invalid);
        }
    }

    #[test]
    fn ttl_must_be_an_integer_from_1_to_21600() {
        assert_eq!(parse_ttl(Some(b"21600")), Ok(21_600));
        assert_eq!(parse_ttl(Some(b"300")), Ok(300));
        assert_eq!(parse_ttl(Some(b"1")), Ok(1));
        assert_eq!(parse_ttl(None), Err(TtlError::Missing));
        for bad in [
            &b"0"[..],
            b"21601",
            b"-1",
            b"1.5",
            b"",
            b"abc",
            b"99999999999",
            b"+5",
        ] {
            assert_eq!(
                parse_ttl(Some(bad)),
                Err(TtlError::Invalid),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn a_token_of_another_format_version_is_invalid_even_with_our_mac() {
        // A future format must not be read as this one, even when signed
        // with the right key.
        let key = TokenKey::new(b"k");
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION + 1;
        raw[1..9].copy_from_slice(&(now().timestamp() + 60).to_be_bytes());
        let tag = key.mac(&raw[..9]).finalize().into_bytes();
        raw[9..].copy_from_slice(&tag);
        let token = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(key.verify(token.as_bytes(), now()), TokenCheck::Invalid);
    }
}
