//! Console sign-in (`imdsd login`), the pure part: which federation
//! endpoint and console a region's partition uses, the session document
//! the federation endpoint takes, its answer, and the sign-in URL (pure).
//!
//! The URL carries only the short-lived sign-in token the federation
//! endpoint returns (valid 15 minutes, for one sign-in), never the session
//! credentials: those go to the federation endpoint in a POST body.

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::credentials::Credentials;
use crate::secret::Secret;

/// The AWS partitions, each with its own sign-in and console hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partition {
    Aws,
    UsGov,
    China,
}

impl Partition {
    /// The partition a region belongs to.
    pub(crate) fn of_region(region: &str) -> Partition {
        if region.starts_with("us-gov-") {
            Partition::UsGov
        } else if region.starts_with("cn-") {
            Partition::China
        } else {
            Partition::Aws
        }
    }

    /// The federation endpoint (`getSigninToken`, `login`).
    pub(crate) fn federation_endpoint(self) -> &'static str {
        match self {
            Partition::Aws => "https://signin.aws.amazon.com/federation",
            Partition::UsGov => "https://signin.amazonaws-us-gov.com/federation",
            Partition::China => "https://signin.amazonaws.cn/federation",
        }
    }

    /// The console home of `region`.
    pub(crate) fn console_home(self, region: &str) -> String {
        match self {
            Partition::Aws => {
                format!(
                    "https://{region}.console.aws.amazon.com/console/home?region={region}"
                )
            }
            Partition::UsGov => {
                format!(
                    "https://console.amazonaws-us-gov.com/console/home?region={region}"
                )
            }
            Partition::China => {
                format!("https://console.amazonaws.cn/console/home?region={region}")
            }
        }
    }
}

/// Why there is no sign-in URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ConsoleError {
    #[error(
        "these credentials have no session token: console sign-in needs temporary role credentials"
    )]
    NoSessionToken,
    #[error("the federation endpoint's answer holds no SigninToken")]
    NoSigninToken,
    #[error("the federation endpoint {0} is not an http(s) URL")]
    BadEndpoint(String),
    #[error("--destination {0} is not an http(s) URL")]
    BadDestination(String),
}

/// The `Session` form field of `getSigninToken`: the credentials as JSON
/// (wiped from memory when dropped).
pub(crate) fn session_document(
    credentials: &Credentials,
) -> Result<Zeroizing<String>, ConsoleError> {
    let token = credentials
        .session_token
        .as_ref()
        .ok_or(ConsoleError::NoSessionToken)?;
    let document = serde_json::json!({
        "sessionId": credentials.access_key_id,
        "sessionKey": credentials.secret_access_key.expose(),
        "sessionToken": token.expose(),
    });
    Ok(Zeroizing::new(document.to_string()))
}

#[derive(Deserialize)]
struct SigninAnswer {
    #[serde(rename = "SigninToken")]
    signin_token: Option<String>,
}

/// The sign-in token in the federation endpoint's JSON answer.
pub(crate) fn signin_token(body: &str) -> Result<Secret, ConsoleError> {
    serde_json::from_str::<SigninAnswer>(body)
        .ok()
        .and_then(|a| a.signin_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or(ConsoleError::NoSigninToken)
}

/// Checks an `http(s)` URL given for the endpoint or the destination.
pub(crate) fn http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
}

/// The URL that signs the browser in and lands on `destination`.
pub(crate) fn login_url(
    endpoint: &Url,
    destination: &Url,
    token: &Secret,
) -> Zeroizing<String> {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .clear()
        .append_pair("Action", "login")
        .append_pair("Issuer", "imdsd")
        .append_pair("Destination", destination.as_str())
        .append_pair("SigninToken", token.expose());
    Zeroizing::new(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("wJalr/secret+key"),
            session_token: token.map(Secret::new),
            expiration: None,
        }
    }

    #[test]
    fn each_partition_has_its_signin_host_and_console() {
        let cases = [
            (
                "eu-west-1",
                Partition::Aws,
                "https://signin.aws.amazon.com/federation",
            ),
            (
                "us-gov-west-1",
                Partition::UsGov,
                "https://signin.amazonaws-us-gov.com/federation",
            ),
            (
                "cn-north-1",
                Partition::China,
                "https://signin.amazonaws.cn/federation",
            ),
        ];
        for (region, partition, endpoint) in cases {
            assert_eq!(Partition::of_region(region), partition, "{region}");
            assert_eq!(partition.federation_endpoint(), endpoint);
        }
        assert_eq!(
            Partition::Aws.console_home("eu-west-1"),
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(
            Partition::UsGov.console_home("us-gov-east-1"),
            "https://console.amazonaws-us-gov.com/console/home?region=us-gov-east-1"
        );
        assert_eq!(
            Partition::China.console_home("cn-northwest-1"),
            "https://console.amazonaws.cn/console/home?region=cn-northwest-1"
        );
    }

    #[test]
    fn the_session_document_holds_the_three_values_and_needs_a_token() {
        let doc = session_document(&credentials(Some("tok/en+="))).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["sessionId"], "ASIAEXAMPLE");
        assert_eq!(parsed["sessionKey"], "wJalr/secret+key");
        assert_eq!(parsed["sessionToken"], "tok/en+=");
        assert_eq!(
            session_document(&credentials(None)).unwrap_err(),
            ConsoleError::NoSessionToken
        );
    }

    #[test]
    fn the_signin_token_is_read_from_the_answer_or_its_absence_said() {
        assert_eq!(
            signin_token(r#"{"SigninToken":"abc"}"#).unwrap().expose(),
            "abc"
        );
        for bad in [
            "",
            "{}",
            r#"{"SigninToken":""}"#,
            "<html>",
            r#"{"SigninToken":7}"#,
        ] {
            assert_eq!(
                signin_token(bad).unwrap_err(),
                ConsoleError::NoSigninToken,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_login_url_carries_the_destination_and_the_signin_token_only() {
        let endpoint = http_url("https://signin.aws.amazon.com/federation").unwrap();
        let destination = http_url(&Partition::Aws.console_home("eu-west-1")).unwrap();
        let url = login_url(&endpoint, &destination, &Secret::new("T0k+/="));
        let parsed = Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("Action".into(), "login".into()),
                ("Issuer".into(), "imdsd".into()),
                ("Destination".into(), destination.to_string()),
                ("SigninToken".into(), "T0k+/=".into()),
            ]
        );
        assert!(url.starts_with("https://signin.aws.amazon.com/federation?"));
        assert!(!url.contains("wJalr"), "no secret key in the URL");
    }

    #[test]
    fn only_http_urls_with_a_host_are_endpoints_or_destinations() {
        assert!(http_url("https://console.aws.amazon.com/s3").is_some());
        assert!(http_url("http://127.0.0.1:8080/federation").is_some());
        for bad in [
            "console.aws.amazon.com",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "",
        ] {
            assert!(http_url(bad).is_none(), "{bad}");
        }
    }
}
