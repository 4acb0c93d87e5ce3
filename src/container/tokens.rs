//! The container tokens: one per role, whoever can read its file gets the
//! role.
//!
//! A token is derived, not stored: `base64url(HMAC-SHA256(state key,
//! role name ‖ digest of the role's definition))`. So it survives a restart
//! (a client holding it in `AWS_CONTAINER_AUTHORIZATION_TOKEN` keeps
//! working), it changes by itself when the role's definition changes (whoever
//! held the old role does not silently get the new one), and deleting the
//! state key rotates every token. The token replaced by a reload stays
//! accepted for [`ROTATION_GRACE`], so a client that read the file a moment
//! before is still served. Checks run in constant time.
//!
//! Pure: the files they are written to are `token_files`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::RoleConfig;
use crate::secret::Secret;

/// How long a replaced token stays accepted after a reload.
pub(crate) const ROTATION_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Derives role tokens from the state key.
#[derive(Clone)]
pub(crate) struct TokenMinter {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMinter(** redacted **)")
    }
}

impl TokenMinter {
    pub(crate) fn new(key: &[u8]) -> Self {
        let keyed =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        TokenMinter { keyed }
    }

    /// The token of `role`: the same while the key and the role's
    /// definition stay the same.
    pub(crate) fn token_for(&self, role: &RoleConfig) -> Secret {
        // The definition's Debug form names no secret (ARNs, paths,
        // commands); only its digest enters the MAC.
        let definition = Sha256::digest(format!("{role:?}").as_bytes());
        let mut mac = self.keyed.clone();
        mac.update(b"imdsd container token v1\0");
        mac.update(role.name.as_bytes());
        mac.update(b"\0");
        mac.update(&definition);
        Secret::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// A role's current token, and the one a reload replaced while it is
/// still accepted.
#[derive(Debug, Clone)]
pub(crate) struct RoleToken {
    current: Secret,
    previous: Option<(Secret, DateTime<Utc>)>,
}

impl RoleToken {
    pub(crate) fn new(current: Secret) -> Self {
        RoleToken {
            current,
            previous: None,
        }
    }

    /// `current`, replacing `old`: when they differ, `old`'s token stays
    /// accepted until `until`.
    pub(crate) fn replacing(
        current: Secret,
        old: &RoleToken,
        until: DateTime<Utc>,
    ) -> Self {
        if old.current.expose() == current.expose() {
            return RoleToken {
                current,
                previous: old.previous.clone(),
            };
        }
        RoleToken {
            current,
            previous: Some((old.current.clone(), until)),
        }
    }

    /// Whether `presented` (the raw `Authorization` value) is this role's
    /// token at `now`. Constant time in the token's bytes.
    pub(crate) fn accepts(&self, presented: &[u8], now: DateTime<Utc>) -> bool {
        let matches =
            |token: &Secret| bool::from(token.expose().as_bytes().ct_eq(presented));
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|(token, until)| now < *until && matches(token));
        matches(&self.current) | previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flow;
    use std::time::Duration;

    fn role(name: &str, command: &str) -> RoleConfig {
        RoleConfig {
            name: name.into(),
            duration: Duration::from_secs(3600),
            flow: Flow::Process(command.into()),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn tokens_are_stable_per_key_and_definition() {
        let minter = TokenMinter::new(&[7; 32]);
        let dev = minter.token_for(&role("dev", "a"));
        assert_eq!(dev.expose(), minter.token_for(&role("dev", "a")).expose());
        assert_eq!(dev.expose().len(), 43);
        assert!(
            dev.expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(dev.expose(), minter.token_for(&role("prod", "a")).expose());
        assert_ne!(dev.expose(), minter.token_for(&role("dev", "b")).expose());
        let other_key = TokenMinter::new(&[8; 32]).token_for(&role("dev", "a"));
        assert_ne!(dev.expose(), other_key.expose());
        assert!(!format!("{minter:?}").contains('7'));
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let token = RoleToken::new(Secret::new("abc123"));
        assert!(token.accepts(b"abc123", at(0)));
        for wrong in [&b""[..], b"abc12", b"abc1234", b"ABC123", b"Bearer abc123"] {
            assert!(!token.accepts(wrong, at(0)), "{wrong:?}");
        }
    }

    #[test]
    fn a_replaced_token_is_accepted_until_the_grace_ends() {
        let old = RoleToken::new(Secret::new("old"));
        let new = RoleToken::replacing(Secret::new("new"), &old, at(60));
        assert!(new.accepts(b"new", at(0)));
        assert!(new.accepts(b"old", at(59)));
        assert!(!new.accepts(b"old", at(60)));
        assert!(new.accepts(b"new", at(600)));
        // An unchanged token keeps what it had, and no grace starts.
        let same = RoleToken::replacing(Secret::new("new"), &new, at(900));
        assert!(same.accepts(b"old", at(59)) && !same.accepts(b"old", at(60)));
    }
}
