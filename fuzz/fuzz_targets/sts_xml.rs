//! STS's XML answers: the credentials of a 200 and the `ErrorResponse` of
//! anything else. The first byte picks the action (AssumeRole, with web
//! identity, with SAML, GetSessionToken); the rest is the body.
//!
//! Invariants: parsed credentials have all four fields non-empty, and come
//! from a document whose one root element is `<{action}Response>` (nothing
//! but the prolog, comments and whitespace around it); the `Debug` of what
//! was parsed never shows the secret key or session token; an error never
//! quotes the body's secret key or session token (the text of any element
//! so named), except a bad `<Expiration>`, which the error names by
//! design; a parsed error has a non-empty code.
#![no_main]

use imdsd::fuzzing;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let action = fuzzing::STS_ACTIONS[usize::from(pick) % fuzzing::STS_ACTIONS.len()];
    match fuzzing::sts_credentials(action, body) {
        Ok(p) => {
            assert!(!p.access_key_id.is_empty() && !p.secret_access_key.is_empty());
            assert!(p.session_token.as_deref().is_some_and(|t| !t.is_empty()));
            assert!(p.expiration.is_some());
            assert_eq!(
                root_elements(body),
                vec![format!("{action}Response")],
                "{body:?}"
            );
            for secret in [Some(&p.secret_access_key), p.session_token.as_ref()]
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 4 && body.matches(s.as_str()).count() == 1)
            {
                let show = |body: &str| match fuzzing::sts_credentials(action, body) {
                    Ok(p) => p.debug,
                    Err(_) => String::new(),
                };
                assert!(!common::leaks(secret, body, &p.debug, show), "{}", p.debug);
            }
        }
        Err((display, debug)) => {
            if display.starts_with("<Expiration>") {
                return;
            }
            let shown = display.clone() + &debug;
            let show = |body: &str| match fuzzing::sts_credentials(action, body) {
                Ok(_) => String::new(),
                Err((display, debug)) => display + &debug,
            };
            for secret in element_texts(body, &["SecretAccessKey", "SessionToken"]) {
                if secret.len() >= 4 && body.matches(&secret).count() == 1 {
                    assert!(!common::leaks(&secret, body, &shown, show), "{display}");
                }
            }
        }
    }
    if let Some((code, _, _)) = fuzzing::sts_error(body) {
        assert!(!code.is_empty());
    }
});

/// The local names of the top-level elements, by a scan independent of the
/// parser: tags outside comments, CDATA, processing instructions and the
/// doctype, tracked by depth.
fn root_elements(body: &str) -> Vec<String> {
    let mut roots = Vec::new();
    let mut depth = 0usize;
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let skip = |end: &str, rest: &str| rest.find(end).map(|j| j + end.len());
        let consumed = if rest.starts_with("<!--") {
            skip("-->", rest)
        } else if rest.starts_with("<![CDATA[") {
            skip("]]>", rest)
        } else if rest.starts_with("<?") {
            skip("?>", rest)
        } else if rest.starts_with("<!") {
            skip(">", rest)
        } else if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
            skip(">", rest)
        } else {
            let end = tag_end(rest);
            let tag = &rest[1..end.unwrap_or(rest.len())];
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
                .collect();
            if depth == 0 {
                roots.push(name.rsplit(':').next().unwrap_or_default().to_string());
            }
            // XML's empty-element tag ends in `/>`, nothing between.
            if !tag.ends_with('/') {
                depth += 1;
            }
            end.map(|e| e + 1)
        };
        match consumed {
            Some(n) => rest = &rest[n..],
            None => break,
        }
    }
    roots
}

/// Where a start tag ends, outside quoted attribute values.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in tag.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The raw text of every element with one of `names` (by a plain scan).
fn element_texts(body: &str, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let mut rest = body;
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let end = rest.find(&close).unwrap_or(rest.len());
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}
