//! What can go wrong calling STS, and whether trying again can help.
//!
//! Classification follows the SDKs' standard retry rules (botocore
//! `retries/standard.py`, Go `aws/retry/standard.go`): throttling, 5xx,
//! network errors and STS's `IDPCommunicationError` are transient; anything
//! else (`AccessDenied`, `InvalidClientTokenId`, `ExpiredToken`, bad input)
//! will fail the same way until something changes, so it is retried slowly.

use super::xml::XmlError;

/// Whether an error is worth a quick retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Likely to succeed soon: retry with exponential backoff.
    Transient,
    /// Will keep failing until config, keys or permissions change: retry
    /// slowly so a fix is picked up without a restart.
    Permanent,
}

/// A failed STS call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StsError {
    #[error("STS {action} returned {code} (HTTP {status}): {message}{}", request_id_suffix(.request_id))]
    Service {
        action: &'static str,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("STS {action} returned HTTP {status} without an STS error document")]
    Http { action: &'static str, status: u16 },
    #[error("STS {action} could not be reached at {endpoint}: {reason}")]
    Transport {
        action: &'static str,
        endpoint: String,
        reason: String,
        timed_out: bool,
    },
    #[error(
        "STS {action} answered 200 with a body that is not valid credentials: {source}"
    )]
    Malformed {
        action: &'static str,
        #[source]
        source: XmlError,
    },
    #[error(
        "STS {action} answered with credentials that expired already at {expiration}"
    )]
    AlreadyExpired {
        action: &'static str,
        expiration: String,
    },
    #[error("could not sign the STS {action} request: {reason}")]
    Signing {
        action: &'static str,
        reason: String,
    },
}

fn request_id_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
];

const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    // STS retries this on every operation: the identity provider was
    // briefly unreachable.
    "IDPCommunicationError",
];

/// Pure classification of an STS error code and HTTP status.
pub(crate) fn classify(status: u16, code: &str) -> Retry {
    let transient = status >= 500
        || status == 429
        || THROTTLING_CODES.contains(&code)
        || TRANSIENT_CODES.contains(&code);
    if transient {
        Retry::Transient
    } else {
        Retry::Permanent
    }
}

impl StsError {
    pub(crate) fn retry(&self) -> Retry {
        match self {
            // A web-identity token can be briefly unknown to STS right
            // after it is minted; the Go SDK retries this too.
            StsError::Service {
                action: "AssumeRoleWithWebIdentity",
                code,
                ..
            } if code == "InvalidIdentityToken" => Retry::Transient,
            StsError::Service { status, code, .. } => classify(*status, code),
            StsError::Http { status, .. } => classify(*status, ""),
            StsError::Transport { .. } | StsError::Malformed { .. } => Retry::Transient,
            StsError::AlreadyExpired { .. } => Retry::Transient,
            StsError::Signing { .. } => Retry::Permanent,
        }
    }

    /// A short machine-readable code: STS's own, or one of ours.
    pub(crate) fn code(&self) -> &str {
        match self {
            StsError::Service { code, .. } => code,
            StsError::Http { .. } => "HttpError",
            StsError::Transport {
                timed_out: true, ..
            } => "Timeout",
            StsError::Transport { .. } => "NetworkError",
            StsError::Malformed { .. } => "MalformedResponse",
            StsError::AlreadyExpired { .. } => "ExpiredCredentialsIssued",
            StsError::Signing { .. } => "SigningError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_the_sdks() {
        assert_eq!(classify(400, "Throttling"), Retry::Transient);
        assert_eq!(classify(400, "IDPCommunicationError"), Retry::Transient);
        assert_eq!(classify(500, "InternalFailure"), Retry::Transient);
        assert_eq!(classify(503, ""), Retry::Transient);
        assert_eq!(classify(429, ""), Retry::Transient);
        assert_eq!(classify(403, "AccessDenied"), Retry::Permanent);
        assert_eq!(classify(403, "InvalidClientTokenId"), Retry::Permanent);
        assert_eq!(classify(400, "ExpiredToken"), Retry::Permanent);
        assert_eq!(classify(400, "ValidationError"), Retry::Permanent);
    }

    #[test]
    fn messages_name_the_action_code_and_request_id() {
        let e = StsError::Service {
            action: "AssumeRole",
            status: 403,
            code: "AccessDenied".into(),
            message: "not authorized".into(),
            request_id: Some("r-1".into()),
        };
        assert_eq!(
            e.to_string(),
            "STS AssumeRole returned AccessDenied (HTTP 403): not authorized (request id r-1)"
        );
        assert_eq!(e.code(), "AccessDenied");
        assert_eq!(e.retry(), Retry::Permanent);
    }

    #[test]
    fn an_unknown_web_identity_token_is_retried_only_for_web_identity() {
        let err = |action, code: &str| StsError::Service {
            action,
            status: 400,
            code: code.into(),
            message: String::new(),
            request_id: None,
        };
        // Freshly minted tokens can be briefly unknown to STS.
        let fresh = err("AssumeRoleWithWebIdentity", "InvalidIdentityToken");
        assert_eq!(fresh.retry(), Retry::Transient);
        let other = err("AssumeRoleWithWebIdentity", "ExpiredTokenException");
        assert_eq!(other.retry(), Retry::Permanent);
        let saml = err("AssumeRoleWithSAML", "InvalidIdentityToken");
        assert_eq!(saml.retry(), Retry::Permanent);
    }
}
