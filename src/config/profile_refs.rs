//! The AWS profiles a config names (`profile = "NAME"`, `source =
//! "profile:NAME"`), checked against the profiles read at the edge, and the
//! region the selected profile sets (pure).

use std::ops::Range;

use toml::Spanned;

use super::Diagnostic;
use super::raw::{RawConfig, RawRole};
use super::suggest;
use crate::environment::Environment;
use crate::profile::{ProfileError, Profiles};

/// The AWS profiles as the edge read them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProfileFacts<'a> {
    /// Not read (parsing text alone): nothing is checked.
    Unread,
    Read(&'a Profiles),
    /// The files could not be read or parsed, and this is why.
    Unreadable(&'a str),
}

impl ProfileFacts<'_> {
    /// The `region` of the selected profile (`AWS_PROFILE`, else
    /// `default`), as the CLI falls back to it after the environment.
    pub(crate) fn region(&self, env: &Environment) -> Option<String> {
        let ProfileFacts::Read(profiles) = self else {
            return None;
        };
        let section = profiles.profiles.get(&crate::profile::selected(env))?;
        let region = section.get("region")?.trim();
        (!region.is_empty()).then(|| region.to_string())
    }
}

/// An error for every role whose profile does not resolve, at the key that
/// names it.
pub(crate) fn check(
    raw: &RawConfig,
    facts: ProfileFacts<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    if matches!(facts, ProfileFacts::Unread) {
        return;
    }
    for (role, table) in &raw.roles {
        let Some((key, span, name)) = named_profile(table.get_ref()) else {
            continue;
        };
        let problem = match facts {
            ProfileFacts::Unread => None,
            ProfileFacts::Unreadable(reason) => {
                Some(format!("cannot check profile `{name}`: {reason}"))
            }
            ProfileFacts::Read(profiles) => problem(profiles, name),
        };
        if let Some(problem) = problem {
            let message = format!("roles.{}.{key}: {problem}", role.get_ref());
            diags.push(Diagnostic::error(Some(span), message));
        }
    }
}

/// A listener's `role` (or `roles` entry) may name an AWS profile that no
/// `[roles.NAME]` declares: such a profile is declared here as the role
/// `[roles.NAME] profile = "NAME"` would be, so it is always active and
/// everything after treats it like any role. Only with the profiles read
/// (`imdsd check`, `run`); text alone cannot tell a profile from a typo.
pub(crate) fn declare_listener_profiles(raw: &mut RawConfig, facts: ProfileFacts<'_>) {
    let ProfileFacts::Read(profiles) = facts else {
        return;
    };
    let imds = raw.imds.iter().filter_map(|l| l.get_ref().role.clone());
    let container = raw
        .container
        .iter()
        .filter_map(|c| c.get_ref().roles.as_ref())
        .flat_map(|list| list.get_ref().iter().cloned());
    let named: Vec<Spanned<String>> = imds.chain(container).collect();
    for name in named {
        let declared = raw.roles.keys().any(|k| k.get_ref() == name.get_ref());
        if declared || !profiles.profiles.contains_key(name.get_ref()) {
            continue;
        }
        let role = RawRole {
            profile: Some(name.clone()),
            ..RawRole::default()
        };
        let span = name.span();
        raw.roles.insert(name, Spanned::new(span, role));
    }
}

/// The key that names a profile, its span, and the profile's name.
fn named_profile(table: &RawRole) -> Option<(&'static str, Range<usize>, &str)> {
    if let Some(p) = &table.profile {
        return Some(("profile", p.span(), p.get_ref().trim()));
    }
    let source = table.source.as_ref()?;
    let name = source.get_ref().trim().strip_prefix("profile:")?.trim();
    Some(("source", source.span(), name))
}

/// Why `name` does not resolve to credentials, if it does not.
fn problem(profiles: &Profiles, name: &str) -> Option<String> {
    let e = profiles.plan(name).err()?;
    let hint = match &e {
        ProfileError::NoProfile(missing) => {
            suggest::hint(missing, profiles.profiles.keys().map(String::as_str))
        }
        _ => String::new(),
    };
    Some(format!("{e}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::parse_files;

    const PROFILES: &str = "[profile dev]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/d\nsource_profile = base\n\
        [profile base]\n[default]\nregion = ap-south-1\n";

    fn diagnostics(toml: &str, facts: ProfileFacts<'_>) -> Vec<String> {
        let raw: RawConfig = toml::from_str(toml).unwrap();
        let mut diags = Vec::new();
        check(&raw, facts, &mut diags);
        diags.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn a_missing_profile_is_an_error_at_the_key_with_a_suggestion() {
        let profiles = parse_files(
            Some(PROFILES),
            Some("[base]\naws_access_key_id = A\naws_secret_access_key = s\n"),
        )
        .unwrap();
        let facts = ProfileFacts::Read(&profiles);
        let toml = "[roles.a]\nprofile = \"dve\"\n[roles.b]\nrole_arn = \"arn:aws:iam::123456789012:role/b\"\nsource = \"profile:dev\"\n";
        assert_eq!(
            diagnostics(toml, facts),
            [
                "roles.a.profile: profile `dve` is not in the AWS config or credentials file; did you mean `dev`?"
            ]
        );
        let toml = "[roles.b]\nrole_arn = \"arn:aws:iam::123456789012:role/b\"\nsource = \"profile:nowhere\"\n";
        assert_eq!(
            diagnostics(toml, facts),
            [
                "roles.b.source: profile `nowhere` is not in the AWS config or credentials file"
            ]
        );
    }

    #[test]
    fn unread_profiles_are_not_checked_and_unreadable_ones_say_why() {
        let toml = "[roles.a]\nprofile = \"dev\"\n[roles.e]\nrole_arn = \"arn:aws:iam::123456789012:role/b\"\nsource = \"env\"\n";
        assert!(diagnostics(toml, ProfileFacts::Unread).is_empty());
        assert_eq!(
            diagnostics(toml, ProfileFacts::Unreadable("~/.aws/config: line 3: bad")),
            ["roles.a.profile: cannot check profile `dev`: ~/.aws/config: line 3: bad"]
        );
    }

    #[test]
    fn the_selected_profiles_region_is_the_fallback() {
        let profiles = parse_files(Some(PROFILES), None).unwrap();
        let facts = ProfileFacts::Read(&profiles);
        assert_eq!(
            facts.region(&Environment::default()).as_deref(),
            Some("ap-south-1")
        );
        let env = Environment::from_pairs([("AWS_PROFILE", "dev")]);
        assert_eq!(facts.region(&env).as_deref(), Some("eu-west-1"));
        let env = Environment::from_pairs([("AWS_PROFILE", "base")]);
        assert_eq!(facts.region(&env), None);
        assert_eq!(ProfileFacts::Unread.region(&Environment::default()), None);
    }
}
