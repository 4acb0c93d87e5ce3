//! The container tokens: one per role, whoever can read its file gets the
//! role.
//!
//! A token is derived, not stored: `base64url(HMAC-SHA256(state key,
//! "imdsd container token\0" ‖ definition))`, where the definition is an
//! explicit, versioned encoding of the fields that decide which
//! credentials the role serves ([`definition`]). So it survives a restart
//! and an upgrade (a client holding it in
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` keeps working), it changes by itself
//! when what the role serves changes (whoever held the old role does not
//! silently get the new one), and deleting the state key rotates every
//! token. The token replaced by a reload stays accepted for
//! [`ROTATION_GRACE`], so a client that read the file a moment before is
//! still served. Checks run in constant time.
//!
//! Pure: the files they are written to are `token_files`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{
    AssertionSource, AssumeRole, Flow, Mfa, RoleConfig, Saml, SessionPolicy, SourceSpec,
    WebIdentity,
};
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
    /// [`definition`] stay the same.
    pub(crate) fn token_for(&self, role: &RoleConfig) -> Secret {
        let mut mac = self.keyed.clone();
        mac.update(b"imdsd container token\0");
        mac.update(&definition(role));
        Secret::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// The format of [`definition`]. Changing it rotates every container token
/// once; bump it only on purpose. Version 1 (before imdsd kept this
/// encoding) hashed the role's `Debug` text, so any new config field
/// rotated every token on upgrade.
const DEFINITION_VERSION: u8 = 2;

/// The bytes that define `role` for its token: the version, the name, then
/// the flow's tag and its defining fields, each string length-prefixed.
///
/// Defining: whatever changes which credentials are served (role ARN,
/// source, session name, external id, MFA device, session policy, tags,
/// source identity, token file, SAML principal and assertion source,
/// profile, command). Not defining: how long credentials last
/// (`duration`), how MFA codes are obtained (`mfa_command`), a command's
/// timeout. `[sts]` settings are not the role's: a reload restarts the
/// role on a new region or endpoint, but its token stays. The structs are
/// taken apart without `..`, so a new config field does not compile here
/// until someone decides which side it is on.
pub(crate) fn definition(role: &RoleConfig) -> Vec<u8> {
    let RoleConfig {
        name,
        duration: _,
        flow,
    } = role;
    let mut e = Encoder(vec![DEFINITION_VERSION]);
    e.str(name);
    match flow {
        Flow::AssumeRole(a) => assume_role(e.tag(1), a),
        Flow::WebIdentity(w) => web_identity(e.tag(2), w),
        Flow::Saml(s) => saml(e.tag(3), s),
        Flow::SessionToken { source, mfa } => {
            e.tag(4);
            e.source(source);
            e.mfa(mfa.as_ref());
        }
        Flow::Profile {
            name,
            mfa_command: _,
        } => {
            e.tag(5).str(name);
        }
        Flow::Process(command) => {
            e.tag(6).str(command);
        }
    }
    e.0
}

fn assume_role(e: &mut Encoder, a: &AssumeRole) {
    // Every field named, as the config builds it: all of them define.
    let AssumeRole {
        role_arn,
        source,
        session_name,
        external_id,
        mfa,
        session,
        tags,
        transitive_tag_keys,
        source_identity,
    } = a;
    e.str(role_arn);
    e.source(source);
    e.str(session_name);
    e.opt(external_id.as_deref());
    e.mfa(mfa.as_ref());
    e.session(session);
    e.count(tags.len());
    for (key, value) in tags {
        e.str(key).str(value);
    }
    e.list(transitive_tag_keys);
    e.opt(source_identity.as_deref());
}

fn web_identity(e: &mut Encoder, w: &WebIdentity) {
    let WebIdentity {
        role_arn,
        token_file,
        session_name,
        session,
    } = w;
    e.str(role_arn);
    e.bytes(token_file.as_os_str().as_encoded_bytes());
    e.str(session_name);
    e.session(session);
}

fn saml(e: &mut Encoder, s: &Saml) {
    let Saml {
        role_arn,
        principal_arn,
        assertion,
        session,
    } = s;
    e.str(role_arn).str(principal_arn);
    match assertion {
        AssertionSource::File(path) => {
            e.tag(1).bytes(path.as_os_str().as_encoded_bytes());
        }
        AssertionSource::Command {
            command,
            timeout: _,
        } => {
            e.tag(2).str(command);
        }
    }
    e.session(session);
}

/// Appends fields so that no two different definitions share bytes: each
/// variable-length field carries its length, each choice a fixed tag (not
/// an enum's declaration order, which a refactor may change).
struct Encoder(Vec<u8>);

impl Encoder {
    fn tag(&mut self, tag: u8) -> &mut Self {
        self.0.push(tag);
        self
    }

    fn count(&mut self, n: usize) -> &mut Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.tag(1).str(s),
            None => self.tag(0),
        }
    }

    fn list(&mut self, items: &[String]) -> &mut Self {
        self.count(items.len());
        for item in items {
            self.str(item);
        }
        self
    }

    fn source(&mut self, source: &SourceSpec) -> &mut Self {
        match source {
            SourceSpec::Env => self.tag(1),
            SourceSpec::Profile(name) => self.tag(2).str(name),
            SourceSpec::Role(name) => self.tag(3).str(name),
            SourceSpec::Process(command) => self.tag(4).str(command),
            SourceSpec::Imds => self.tag(5),
            SourceSpec::Container => self.tag(6),
            SourceSpec::Credential(name) => self.tag(7).str(name),
            SourceSpec::Keyring(profile) => self.tag(8).str(profile),
        }
    }

    /// The MFA device only: where its codes come from does not change
    /// which credentials are served.
    fn mfa(&mut self, mfa: Option<&Mfa>) -> &mut Self {
        self.opt(mfa.map(|Mfa { serial, command: _ }| serial.as_str()))
    }

    fn session(&mut self, session: &SessionPolicy) -> &mut Self {
        let SessionPolicy {
            policy,
            policy_arns,
        } = session;
        self.opt(policy.as_deref()).list(policy_arns)
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

    /// A chained role with an MFA device and a command for its codes.
    fn assumed() -> RoleConfig {
        RoleConfig {
            name: "dev".into(),
            duration: Duration::from_secs(3600),
            flow: Flow::AssumeRole(AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/dev".into(),
                source: SourceSpec::Profile("base".into()),
                session_name: "imdsd-dev".into(),
                external_id: Some("ext-1".into()),
                mfa: Some(Mfa {
                    serial: "arn:aws:iam::123456789012:mfa/me".into(),
                    command: Some("otp dev".into()),
                }),
                session: SessionPolicy::default(),
                tags: vec![("team".into(), "a".into())],
                transitive_tag_keys: vec![],
                source_identity: None,
            }),
        }
    }

    fn assume_role(role: &mut RoleConfig) -> &mut AssumeRole {
        match &mut role.flow {
            Flow::AssumeRole(a) => a,
            _ => unreachable!("built by assumed()"),
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

    /// Tokens live in clients' environments: a change to the derivation
    /// rotates every one of them on upgrade. If this fails, the change
    /// rotates tokens; bump DEFINITION_VERSION only if that is meant.
    #[test]
    fn the_token_of_a_fixed_key_and_role_is_pinned() {
        let minter = TokenMinter::new(&[7; 32]);
        assert_eq!(
            definition(&role("dev", "a")),
            [2, 0, 0, 0, 3, b'd', b'e', b'v', 6, 0, 0, 0, 1, b'a']
        );
        assert_eq!(
            minter.token_for(&role("dev", "a")).expose(),
            "YQEyUWWcRlfYPmYW4DhXMPdLxLIglvMtjo-SDZ4-LxE"
        );
        assert_eq!(
            minter.token_for(&assumed()).expose(),
            "E3Gmkt6V7tAwERCneJni_hViguxWkXtdW71iCPVQ9cc"
        );
    }

    #[test]
    fn what_does_not_define_the_role_keeps_its_token() {
        let minter = TokenMinter::new(&[7; 32]);
        let before = minter.token_for(&assumed());
        let mut longer = assumed();
        longer.duration = Duration::from_secs(12 * 3600);
        let mut other_codes = assumed();
        assume_role(&mut other_codes).mfa.as_mut().unwrap().command = None;
        for same in [longer, other_codes] {
            assert_eq!(
                minter.token_for(&same).expose(),
                before.expose(),
                "{same:?}"
            );
        }
        let profile = |mfa_command: Option<&str>| RoleConfig {
            flow: Flow::Profile {
                name: "sso".into(),
                mfa_command: mfa_command.map(Into::into),
            },
            ..assumed()
        };
        assert_eq!(
            minter.token_for(&profile(None)).expose(),
            minter.token_for(&profile(Some("otp"))).expose()
        );
    }

    #[test]
    fn what_defines_the_role_changes_its_token() {
        let minter = TokenMinter::new(&[7; 32]);
        let before = minter.token_for(&assumed());
        let changes: [fn(&mut AssumeRole); 8] = [
            |a| a.role_arn.push('2'),
            |a| a.source = SourceSpec::Role("base".into()),
            |a| a.session_name.push('2'),
            |a| a.external_id = None,
            |a| a.mfa.as_mut().unwrap().serial.push('2'),
            |a| {
                a.session
                    .policy_arns
                    .push("arn:aws:iam::aws:policy/ReadOnly".into())
            },
            |a| a.tags[0].1.push('2'),
            |a| a.source_identity = Some("me".into()),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut changed = assumed();
            change(assume_role(&mut changed));
            assert_ne!(
                minter.token_for(&changed).expose(),
                before.expose(),
                "change {i}"
            );
        }
        let renamed = RoleConfig {
            name: "prod".into(),
            ..assumed()
        };
        assert_ne!(minter.token_for(&renamed).expose(), before.expose());
    }
}
