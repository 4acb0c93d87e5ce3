//! Routing an IMDS request: method and path → what to answer.
//!
//! Pure and allocation-free. Paths are compared segment by segment with
//! empty segments skipped, so `//latest/...` (Java with a trailing-slash
//! endpoint) and `.../availability-zone/` (botocore) route like the plain
//! path. The query string is ignored, as real IMDS does.

use http::Method;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `PUT /latest/api/token`.
    Token,
    /// `OPTIONS /latest/api/token`.
    TokenOptions,
    /// Any other method on the token path.
    TokenMethodNotAllowed,
    /// A directory listing with this body.
    Listing(&'static str),
    /// `iam/security-credentials/`: the role name.
    RoleName,
    /// `iam/security-credentials/<role>`.
    Credentials(&'a str),
    IamInfo,
    InstanceId,
    AvailabilityZone,
    Region,
    IdentityDocument,
    /// A known path asked for with a method other than GET or HEAD.
    MethodNotAllowed,
    NotFound,
}

impl Route<'_> {
    /// Whether the route serves metadata, and so needs a token when
    /// IMDSv1 is off.
    pub(crate) fn needs_token(&self) -> bool {
        !matches!(
            self,
            Route::Token
                | Route::TokenOptions
                | Route::TokenMethodNotAllowed
                | Route::MethodNotAllowed
        )
    }
}

const MAX_SEGMENTS: usize = 6;

/// Routes `method` on `path` (without query).
pub(crate) fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let mut segs = [""; MAX_SEGMENTS];
    let mut n = 0;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if n == MAX_SEGMENTS {
            return Route::NotFound;
        }
        segs[n] = seg;
        n += 1;
    }
    let segs = &segs[..n];
    if segs == ["latest", "api", "token"] {
        return match *method {
            Method::PUT => Route::Token,
            Method::OPTIONS => Route::TokenOptions,
            _ => Route::TokenMethodNotAllowed,
        };
    }
    let found = route_get(segs);
    let readable = *method == Method::GET || *method == Method::HEAD;
    match found {
        Route::NotFound => Route::NotFound,
        _ if !readable => Route::MethodNotAllowed,
        found => found,
    }
}

fn route_get<'a>(segs: &[&'a str]) -> Route<'a> {
    match segs {
        [] => Route::Listing("latest\n"),
        ["latest"] => Route::Listing("dynamic\nmeta-data\n"),
        ["latest", "meta-data"] => Route::Listing("iam/\ninstance-id\nplacement/\n"),
        ["latest", "meta-data", "iam"] => Route::Listing("info\nsecurity-credentials/"),
        ["latest", "meta-data", "iam", "info"] => Route::IamInfo,
        ["latest", "meta-data", "iam", "security-credentials"] => Route::RoleName,
        ["latest", "meta-data", "iam", "security-credentials", role] => {
            Route::Credentials(role)
        }
        ["latest", "meta-data", "instance-id"] => Route::InstanceId,
        ["latest", "meta-data", "placement"] => {
            Route::Listing("availability-zone\nregion")
        }
        ["latest", "meta-data", "placement", "availability-zone"] => {
            Route::AvailabilityZone
        }
        ["latest", "meta-data", "placement", "region"] => Route::Region,
        ["latest", "dynamic"] => Route::Listing("instance-identity/"),
        ["latest", "dynamic", "instance-identity"] => Route::Listing("document"),
        ["latest", "dynamic", "instance-identity", "document"] => Route::IdentityDocument,
        // The extended credentials path (with AccountId) is not served:
        // 404 makes Java and Ruby fall back to the legacy path; anything
        // else would make them fail.
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_path_by_method() {
        assert_eq!(route(&Method::PUT, "/latest/api/token"), Route::Token);
        assert_eq!(route(&Method::PUT, "//latest/api/token/"), Route::Token);
        assert_eq!(
            route(&Method::GET, "/latest/api/token"),
            Route::TokenMethodNotAllowed
        );
        assert_eq!(
            route(&Method::POST, "/latest/api/token"),
            Route::TokenMethodNotAllowed
        );
        assert_eq!(
            route(&Method::OPTIONS, "/latest/api/token"),
            Route::TokenOptions
        );
    }

    #[test]
    fn both_slash_forms_and_doubled_slashes_route_alike() {
        for p in [
            "/latest/meta-data/iam/security-credentials",
            "/latest/meta-data/iam/security-credentials/",
            "//latest/meta-data/iam/security-credentials/",
            "/latest//meta-data/iam/security-credentials",
        ] {
            assert_eq!(route(&Method::GET, p), Route::RoleName, "{p}");
        }
        for p in [
            "/latest/meta-data/iam/security-credentials/dev",
            "//latest/meta-data/iam/security-credentials/dev/",
        ] {
            assert_eq!(route(&Method::GET, p), Route::Credentials("dev"), "{p}");
        }
        for p in [
            "/latest/meta-data/placement/availability-zone",
            "/latest/meta-data/placement/availability-zone/",
        ] {
            assert_eq!(route(&Method::GET, p), Route::AvailabilityZone);
        }
    }

    #[test]
    fn metadata_paths() {
        assert_eq!(
            route(&Method::GET, "/latest/meta-data/iam/info"),
            Route::IamInfo
        );
        assert_eq!(
            route(&Method::GET, "/latest/meta-data/instance-id/"),
            Route::InstanceId
        );
        assert_eq!(
            route(&Method::GET, "/latest/meta-data/placement/region"),
            Route::Region
        );
        assert_eq!(
            route(&Method::HEAD, "/latest/dynamic/instance-identity/document"),
            Route::IdentityDocument
        );
        assert_eq!(
            route(&Method::GET, "/latest/meta-data/iam"),
            Route::Listing("info\nsecurity-credentials/")
        );
    }

    #[test]
    fn unknown_and_extended_paths_are_404() {
        for p in [
            "/latest/meta-data/iam/security-credentials-extended/",
            "/latest/meta-data/iam/security-credentials-extended/dev",
            "/latest/meta-data/iam/security-credentials/dev/extra",
            "/latest/user-data",
            "/a/b/c/d/e/f/g/h",
            "/latest/api",
        ] {
            assert_eq!(route(&Method::GET, p), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn writes_to_metadata_paths_are_not_allowed() {
        assert_eq!(
            route(&Method::POST, "/latest/meta-data/iam/info"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(
                &Method::DELETE,
                "/latest/meta-data/iam/security-credentials/x"
            ),
            Route::MethodNotAllowed
        );
        assert!(!Route::MethodNotAllowed.needs_token());
        assert!(Route::RoleName.needs_token());
    }

    #[test]
    fn every_directory_lists_its_children_as_real_imds_does() {
        for (path, body) in [
            ("/", "latest\n"),
            ("/latest", "dynamic\nmeta-data\n"),
            ("/latest/meta-data/", "iam/\ninstance-id\nplacement/\n"),
            ("/latest/meta-data/iam", "info\nsecurity-credentials/"),
            ("/latest/meta-data/placement", "availability-zone\nregion"),
            ("/latest/dynamic", "instance-identity/"),
            ("/latest/dynamic/instance-identity/", "document"),
        ] {
            assert_eq!(route(&Method::GET, path), Route::Listing(body), "{path}");
        }
    }

    #[test]
    fn an_unknown_path_is_404_whatever_the_method() {
        // Not 405: a write to a path that does not exist is still "not found".
        for method in [Method::POST, Method::DELETE, Method::PUT] {
            assert_eq!(route(&method, "/latest/user-data"), Route::NotFound);
        }
    }
}
