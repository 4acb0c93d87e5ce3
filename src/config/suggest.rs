//! "Did you mean …?" for a misspelt key, role or profile name (pure).

/// The candidate closest to `word`, if one is close enough to be the
/// likely intent: a few typos away (transposed letters count as one), or
/// sharing most of its letters in order (Jaro-Winkler, as clap suggests
/// subcommands; it catches a dropped word part like `rolearn`).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typos = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .filter(|c| {
            strsim::damerau_levenshtein(word, c) <= typos
                || strsim::jaro_winkler(word, c) >= 0.85
        })
        .max_by(|a, b| {
            let score = |c: &str| strsim::normalized_damerau_levenshtein(word, c);
            score(a).total_cmp(&score(b))
        })
}

/// `; did you mean `X`?` when a candidate is close, else nothing.
pub(crate) fn hint<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_only_when_it_is_near() {
        let keys = ["session_name", "source", "role_arn", "source_identity"];
        assert_eq!(closest("sesion_name", keys), Some("session_name"));
        assert_eq!(closest("role_ann", keys), Some("role_arn"));
        assert_eq!(closest("sourc", keys), Some("source"));
        assert_eq!(closest("listen", keys), None);
        assert_eq!(closest("dve", ["dev", "default", "base"]), Some("dev"));
        assert_eq!(closest("ops", ["dev", "default", "base"]), None);
        assert_eq!(hint("rolearn", keys), "; did you mean `role_arn`?");
        assert_eq!(hint("xyz", keys), "");
    }

    #[test]
    fn longer_words_may_be_a_typo_per_three_letters_away() {
        // Three typos in a nine-letter word, too far apart for the
        // Jaro-Winkler route: only the typo budget can find it.
        let (word, key) = ("xbcxefxhi", "abcdefghi");
        assert_eq!(strsim::damerau_levenshtein(word, key), 3);
        assert!(strsim::jaro_winkler(word, key) < 0.85);
        assert_eq!(closest(word, [key]), Some(key));
        assert_eq!(closest("xbcxefxhx", [key]), None, "four typos");
    }
}
