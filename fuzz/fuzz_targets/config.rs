//! The role file: TOML parsing, the schema check and validation (the code
//! `imdsd check` and every reload run), and rendering each diagnostic with
//! its line and column, in an environment that holds long-term keys.
//!
//! Invariants: a config comes out exactly when no diagnostic is an error;
//! every span lies inside the text; neither the diagnostics nor the
//! config's `Debug` ever show the environment's secret key or session
//! token.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &str = "ENV/SECRET+KEY+wJalrXUtnFEMI";
const TOKEN: &str = "ENV/SESSION+TOKEN+IQoJb3JpZ2luX2Vj";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains(SECRET) || text.contains(TOKEN) {
        return;
    }
    let env = [
        ("HOME", "/nonexistent/imdsd-fuzz"),
        ("AWS_ACCESS_KEY_ID", "AKIAFUZZENVIRONMENT"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
        ("AWS_REGION", "eu-west-1"),
    ];
    let out = imdsd::fuzzing::config(text, &env);
    let errors = out
        .diagnostics
        .iter()
        .filter(|(error, _, _)| *error)
        .count();
    assert_eq!(out.valid, errors == 0, "{:?}", out.diagnostics);
    assert_eq!(out.valid, out.debug.is_some());
    for (_, span, rendered) in &out.diagnostics {
        if let Some(span) = span {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{span:?} in {}",
                text.len()
            );
        }
        assert!(
            !rendered.contains(SECRET) && !rendered.contains(TOKEN),
            "{rendered}"
        );
    }
    if let Some(debug) = &out.debug {
        assert!(!debug.contains(SECRET) && !debug.contains(TOKEN));
    }
});
