//! Routing a container-credentials request: `GET /role/NAME` is the one
//! thing served. Pure. Empty segments and the query string are ignored, as
//! for IMDS.

use http::Method;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `GET`/`HEAD /role/NAME`.
    Credentials(&'a str),
    /// `/role/NAME` with another method.
    MethodNotAllowed,
    NotFound,
}

/// Routes `method` on `path` (without query).
pub(crate) fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let role = match (segs.next(), segs.next(), segs.next()) {
        (Some("role"), Some(role), None) => role,
        _ => return Route::NotFound,
    };
    if *method == Method::GET || *method == Method::HEAD {
        Route::Credentials(role)
    } else {
        Route::MethodNotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_paths_with_either_slash_form() {
        for p in ["/role/dev", "/role/dev/", "//role//dev"] {
            assert_eq!(route(&Method::GET, p), Route::Credentials("dev"), "{p}");
        }
        assert_eq!(
            route(&Method::HEAD, "/role/a.b@c"),
            Route::Credentials("a.b@c")
        );
    }

    #[test]
    fn other_paths_are_not_found_and_writes_not_allowed() {
        for p in [
            "/",
            "/role",
            "/role/",
            "/role/dev/extra",
            "/roles/dev",
            "/v2/credentials/x",
        ] {
            assert_eq!(route(&Method::GET, p), Route::NotFound, "{p}");
        }
        assert_eq!(route(&Method::POST, "/role/dev"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::DELETE, "/role/dev"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::POST, "/elsewhere"), Route::NotFound);
    }
}
