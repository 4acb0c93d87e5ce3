//! Types that hold secrets: wiped from memory on drop, never printed.
//!
//! Secret keys, session tokens, MFA codes, web-identity tokens and SAML
//! assertions all live in a [`Secret`]. Its `Debug` and `Display` print a
//! fixed placeholder, so a stray `{:?}` in a log line or an error message
//! cannot leak the value.

use std::fmt;

use zeroize::Zeroizing;

/// What a secret prints as, everywhere.
pub(crate) const REDACTED: &str = "** redacted **";

/// A secret string, zeroized on drop and redacted when formatted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself; call only where the value is sent or signed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

// Serialized only for the control socket (`imdsd mfa`), never logged.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

/// Bytes that hold a secret (a rendered credentials body), zeroized when the
/// last reference is dropped. Used as the owner behind a `bytes::Bytes`.
pub(crate) struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// A cheaply clonable `Bytes` view that wipes the buffer when dropped.
    pub(crate) fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_are_redacted() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }

    #[test]
    fn secret_bytes_debug_is_redacted_and_bytes_view_is_intact() {
        let b = SecretBytes::new(b"top secret".to_vec());
        assert_eq!(format!("{b:?}"), REDACTED);
        assert_eq!(&b.into_bytes()[..], b"top secret");
    }
}
