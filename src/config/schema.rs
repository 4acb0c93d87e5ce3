//! Reading config text into the raw schema ([`RawConfig`]), reporting every
//! problem at once (pure).
//!
//! serde stops at the first error, so a file with a typo in one role and a
//! wrong type in another took one `imdsd check` per problem. Here every
//! syntax error is collected (the parser recovers), then every table and
//! every key is checked on its own: an unknown key names the table and the
//! nearest known key, and a value of the wrong type is reported at the
//! value. Only a file with no problem is deserialized as a whole.

use std::ops::Range;

use serde::Deserialize as _;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Diagnostic;
use super::raw::{
    RawAdmin, RawConfig, RawContainer, RawDaemon, RawLimits, RawListener, RawProfiles,
    RawRole, RawSts,
};
use super::suggest;

/// What reading found.
#[derive(Debug)]
pub(crate) struct Schema {
    /// The file, without the keys that have problems (`None` after a
    /// syntax error): what can still be checked for meaning.
    pub(crate) raw: Option<RawConfig>,
    /// Every syntax and schema problem; the file is invalid if any.
    pub(crate) problems: Vec<Diagnostic>,
    /// The tables that had problems (key and body spans): a semantic check
    /// there would only echo them ("role_arn is required" after a
    /// `role_arn` of the wrong type).
    tainted: Vec<Range<usize>>,
}

impl Schema {
    /// Whether `d` is about a table that already has a schema problem.
    pub(crate) fn echoes(&self, d: &Diagnostic) -> bool {
        d.span.as_ref().is_some_and(|span| {
            self.tainted
                .iter()
                .any(|t| t.start <= span.start && span.end <= t.end)
        })
    }
}

/// Reads `text`: the raw config (without the keys that have problems), and
/// every problem found.
pub(crate) fn read(text: &str) -> Schema {
    let (mut doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let problems = syntax.iter().map(diagnostic).collect();
        return Schema {
            raw: None,
            problems,
            tainted: vec![],
        };
    }
    let mut found = Found::default();
    check_document(&mut doc, &mut found);
    // Tables are visited in key order; report in file order.
    found
        .problems
        .sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    match RawConfig::deserialize(doc.into_deserializer()) {
        Ok(raw) => Schema {
            raw: Some(raw),
            problems: found.problems,
            tainted: found.tainted,
        },
        // Not expected once the bad keys are gone; reported all the same.
        Err(e) => Schema {
            raw: None,
            problems: vec![diagnostic(&e)],
            tainted: vec![],
        },
    }
}

fn diagnostic(e: &toml::de::Error) -> Diagnostic {
    Diagnostic::error(e.span(), e.message().trim_end())
}

/// Problems, and the spans of the tables they are in.
#[derive(Default)]
struct Found {
    problems: Vec<Diagnostic>,
    tainted: Vec<Range<usize>>,
}

impl Found {
    fn problem(&mut self, d: Diagnostic, table: &[Range<usize>]) {
        self.problems.push(d);
        self.tainted.extend(table.iter().cloned());
    }
}

/// The top-level tables, each by its own schema. Entries of the wrong
/// shape are removed.
fn check_document(doc: &mut Spanned<DeTable<'_>>, found: &mut Found) {
    let known = fields::<RawConfig>();
    let mut bad = Vec::new();
    for (key, value) in doc.get_mut().iter_mut() {
        let ok = match key.get_ref().as_ref() {
            "sts" => check_table::<RawSts>(value, "sts", found),
            "admin" => check_table::<RawAdmin>(value, "admin", found),
            "daemon" => check_table::<RawDaemon>(value, "daemon", found),
            "limits" => check_table::<RawLimits>(value, "limits", found),
            "profiles" => check_table::<RawProfiles>(value, "profiles", found),
            "imds" => check_array::<RawListener>(value, "imds", found),
            "container" => check_array::<RawContainer>(value, "container", found),
            "roles" => check_roles(value, found),
            _ => {
                found.problem(unknown_key(key, "the top level", &known), &[]);
                false
            }
        };
        if !ok {
            bad.push(key.clone());
        }
    }
    for key in bad {
        doc.get_mut().remove(&key);
    }
}

/// `[roles.NAME]` tables, each a role. False if it is not a table.
fn check_roles(value: &mut Spanned<DeValue<'_>>, found: &mut Found) -> bool {
    let span = value.span();
    let DeValue::Table(roles) = value.get_mut() else {
        found.problem(not_a_table(span, "roles", "[roles.NAME] tables"), &[]);
        return false;
    };
    let mut bad = Vec::new();
    for (name, role) in roles.iter_mut() {
        let path = format!("roles.{}", name.get_ref());
        let tainted = found.tainted.len();
        if !check_table::<RawRole>(role, &path, found) {
            bad.push(name.clone());
        }
        if found.tainted.len() > tainted {
            found.tainted.push(name.span());
        }
    }
    for name in bad {
        roles.remove(&name);
    }
    true
}

/// `[[NAME]]` tables, each by `T`'s schema. False if it is not an array.
fn check_array<T: DeserializeOwned>(
    value: &mut Spanned<DeValue<'_>>,
    name: &str,
    found: &mut Found,
) -> bool {
    let span = value.span();
    let DeValue::Array(items) = value.get_mut() else {
        let expected = format!("[[{name}]] tables");
        found.problem(not_a_table(span, name, &expected), &[]);
        return false;
    };
    let mut ok = true;
    for (i, item) in items.iter_mut().enumerate() {
        ok &= check_table::<T>(item, &format!("{name}[{i}]"), found);
    }
    // An item that is not a table cannot be read as one: drop the list.
    ok
}

/// Every key of the table at `path` (`sts`, `roles.dev`, `imds[0]`): known
/// to `T`, and of the type `T` wants. Keys with a problem are removed; a
/// removed value taints its table (its absence may look like a missing
/// key), an unknown key does not. False if it is not a table at all.
fn check_table<T: DeserializeOwned>(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    found: &mut Found,
) -> bool {
    let span = value.span();
    let place = if path.ends_with(']') {
        path.to_string()
    } else {
        format!("[{path}]")
    };
    let DeValue::Table(table) = value.get_mut() else {
        found.problem(not_a_table(span, &place, "a table"), &[]);
        return false;
    };
    // A `[header]` table's span is its header: extend it over its keys.
    let end = table
        .values()
        .map(|v| v.span().end)
        .fold(span.end, usize::max);
    let extent = span.start..end;
    let known = fields::<T>();
    let mut bad = Vec::new();
    for (key, item) in table.iter() {
        if !known.contains(&key.get_ref().as_ref()) {
            found.problem(unknown_key(key, &place, &known), &[]);
            bad.push(key.clone());
        } else if let Some(problem) = type_problem::<T>(path, key, item, span.clone()) {
            found.problem(problem, std::slice::from_ref(&extent));
            bad.push(key.clone());
        }
    }
    for key in bad {
        table.remove(&key);
    }
    true
}

/// Why `key = item` alone does not fit `T`, if it does not.
fn type_problem<T: DeserializeOwned>(
    path: &str,
    key: &Spanned<toml::de::DeString<'_>>,
    item: &Spanned<DeValue<'_>>,
    table_span: Range<usize>,
) -> Option<Diagnostic> {
    let mut alone = DeTable::new();
    alone.insert(key.clone(), item.clone());
    let e = T::deserialize(Spanned::new(table_span, alone).into_deserializer()).err()?;
    let span = e.span().unwrap_or_else(|| item.span());
    let message = format!("{path}.{}: {}", key.get_ref(), e.message().trim_end());
    Some(Diagnostic::error(Some(span), message))
}

fn unknown_key(
    key: &Spanned<toml::de::DeString<'_>>,
    place: &str,
    known: &[&'static str],
) -> Diagnostic {
    let name = key.get_ref().as_ref();
    let hint = suggest::hint(name, known.iter().copied());
    let message = if hint.is_empty() {
        format!(
            "unknown key `{name}` in {place} (known: {})",
            known.join(", ")
        )
    } else {
        format!("unknown key `{name}` in {place}{hint}")
    };
    Diagnostic::error(Some(key.span()), message)
}

fn not_a_table(span: Range<usize>, place: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(Some(span), format!("{place}: expected {expected}"))
}

/// The keys `T`'s schema knows, as serde's derive lists them.
fn fields<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut fields = Vec::new();
    let _ = T::deserialize(introspect::Fields(&mut fields));
    fields
}

/// A deserializer that only records the field names a derived
/// `Deserialize` asks for (the struct's keys, `rename`s applied).
mod introspect {
    use serde::de::{self, Visitor};

    pub(super) struct Fields<'a>(pub(super) &'a mut Vec<&'static str>);

    #[derive(Debug)]
    pub(super) struct Done;

    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }

    impl std::error::Error for Done {}

    impl de::Error for Done {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Done
        }
    }

    impl<'de> de::Deserializer<'de> for Fields<'_> {
        type Error = Done;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Done> {
            self.0.extend_from_slice(fields);
            Err(Done)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        read(text).problems.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn every_schema_problem_is_reported_in_one_pass() {
        let text = "[sts]\ntimeout = 5\n\
            [roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsesion_name = \"x\"\nduration = 3600\n\
            [roles.ops]\npolicy_arns = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"\n\
            [[imds]]\nlisten = 80\n\
            [limit]\n";
        let got = messages(text);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert!(
            got[0]
                .starts_with("sts.timeout: invalid type: integer `5`, expected a string"),
            "{got:#?}"
        );
        assert_eq!(
            got[1],
            "unknown key `sesion_name` in [roles.dev]; did you mean `session_name`?"
        );
        assert!(
            got[2].starts_with("roles.dev.duration: invalid type: integer"),
            "{got:#?}"
        );
        assert!(
            got[3].starts_with("roles.ops.policy_arns: invalid type: string"),
            "{got:#?}"
        );
        assert!(
            got[4].starts_with("imds[0].listen: invalid type: integer"),
            "{got:#?}"
        );
        assert_eq!(
            got[5],
            "unknown key `limit` in the top level; did you mean `limits`?"
        );
    }

    #[test]
    fn problems_point_at_the_key_or_the_value() {
        let text = "[roles.dev]\nrolearn = \"x\"\nduration = 3600\n";
        let diags = read(text).problems;
        let at = |d: &Diagnostic| &text[d.span.clone().unwrap()];
        assert_eq!(at(&diags[0]), "rolearn");
        assert_eq!(at(&diags[1]), "3600");
    }

    #[test]
    fn an_unknown_key_with_no_near_name_lists_the_known_ones() {
        assert_eq!(
            messages("[admin]\nport = 1\n"),
            ["unknown key `port` in [admin] (known: listen, allow_non_loopback)"]
        );
    }

    #[test]
    fn tables_of_the_wrong_shape_are_named() {
        assert_eq!(
            messages("roles = 1\n"),
            ["roles: expected [roles.NAME] tables"]
        );
        assert_eq!(messages("imds = 1\n"), ["imds: expected [[imds]] tables"]);
        assert_eq!(messages("sts = \"x\"\n"), ["[sts]: expected a table"]);
    }

    #[test]
    fn every_syntax_error_is_reported_and_nothing_else() {
        let read = read("[sts\nregion = \"a\"\n[roles.x]\nk = \n");
        assert!(read.raw.is_none());
        assert!(read.problems.len() >= 2, "{:#?}", read.problems);
    }

    #[test]
    fn keys_with_problems_are_left_out_and_their_tables_marked() {
        let text = "[roles.dev]\nduration = 3600\nprofile = \"p\"\n[roles.ok]\nprofile = \"q\"\n";
        let read = read(text);
        let raw = read.raw.as_ref().unwrap();
        let dev = raw
            .roles
            .iter()
            .find(|(k, _)| k.get_ref() == "dev")
            .unwrap()
            .1;
        assert!(dev.get_ref().duration.is_none() && dev.get_ref().profile.is_some());
        let inside_dev = Diagnostic::error(
            Some(text.find("profile").unwrap()..text.find("profile").unwrap() + 7),
            "x",
        );
        let inside_ok = Diagnostic::error(
            Some(text.rfind("profile").unwrap()..text.rfind("profile").unwrap() + 7),
            "x",
        );
        assert!(read.echoes(&inside_dev));
        assert!(!read.echoes(&inside_ok));
    }

    #[test]
    fn every_top_level_table_is_known() {
        let text = "[sts]\nregion = \"eu-west-1\"\n[admin]\nlisten = \"127.0.0.1:1\"\n\
            [daemon]\naudit_log = \"stderr\"\n[limits]\nmax_connections = 10\n\
            [roles.dev]\nprofile = \"p\"\n[[imds]]\nrole = \"dev\"\n\
            [[container]]\ntoken_dir = \"/run/t\"\n";
        let read = read(text);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let raw = read.raw.unwrap();
        assert_eq!(raw.container.len(), 1);
        assert!(raw.daemon.is_some() && raw.limits.is_some());
    }

    #[test]
    fn a_list_with_an_item_that_is_not_a_table_is_left_out() {
        let read = read("imds = [{ role = \"dev\" }, 5]\n[roles.dev]\nprofile = \"p\"\n");
        let messages: Vec<&str> =
            read.problems.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["imds[1]: expected a table"]);
        assert!(read.raw.unwrap().imds.is_empty());
    }

    #[test]
    fn a_role_with_a_removed_key_has_its_name_marked_too() {
        // In inline tables the name stands outside the table's own span.
        let text = "[roles]\ndev = { duration = 3600 }\nok = { profile = \"q\" }\n";
        let read = read(text);
        let name = |role: &str| {
            let at = text.find(&format!("{role} = ")).unwrap();
            Diagnostic::error(Some(at..at + role.len()), "x")
        };
        assert!(read.echoes(&name("dev")));
        assert!(!read.echoes(&name("ok")));
    }

    #[test]
    fn a_clean_file_reads_as_a_whole() {
        let read = read("[roles.dev]\nprofile = \"p\"\n[[imds]]\nrole = \"dev\"\n");
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let raw = read.raw.unwrap();
        assert_eq!(raw.imds.len(), 1);
        assert!(raw.roles.keys().any(|k| k.get_ref() == "dev"));
    }

    #[test]
    fn introspection_lists_a_tables_keys() {
        assert_eq!(fields::<RawSts>(), ["region", "endpoint", "timeout"]);
        assert!(fields::<RawRole>().contains(&"type"));
        assert_eq!(
            fields::<RawConfig>(),
            [
                "imds",
                "container",
                "sts",
                "roles",
                "admin",
                "daemon",
                "limits",
                "profiles"
            ]
        );
    }
}
