//! A snapshot of the process environment, passed around as a plain value.
//!
//! Defaults that come from the environment (region, endpoint overrides,
//! source keys, state directory) are decided by pure functions that take an
//! [`Environment`], so tests hand in exactly the variables they mean and
//! never mutate the real process environment.

use std::collections::HashMap;

/// Environment variables, captured once at the edge.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// The current process environment (variables that are valid UTF-8).
    pub(crate) fn capture() -> Self {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The variable's value, treating an empty value as unset (as the AWS
    /// SDKs do).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// This environment without the variables `names` (what a child sees
    /// after `env_remove`).
    pub(crate) fn without(&self, names: &[&str]) -> Self {
        let mut vars = self.vars.clone();
        vars.retain(|k, _| !names.contains(&k.as_str()));
        Environment { vars }
    }

    /// The first of `names` that is set.
    pub(crate) fn first_of(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|name| self.get(name))
    }
}

// Values may be secrets (AWS_SECRET_ACCESS_KEY): only the names print.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Environment")
            .field("names", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Environment::from_pairs([("A", ""), ("B", "b")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.first_of(&["A", "B"]), Some("b"));
        assert_eq!(env.without(&["B"]).get("B"), None);
    }

    #[test]
    fn debug_prints_names_only() {
        let env = Environment::from_pairs([("AWS_SECRET_ACCESS_KEY", "hunter2")]);
        let printed = format!("{env:?}");
        assert!(printed.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!printed.contains("hunter2"));
    }
}
