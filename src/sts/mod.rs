//! The daemon's STS client: awsQuery requests, SigV4-signed with the
//! `aws-sigv4` crate, sent over HTTPS with reqwest (rustls, system trust
//! store plus `AWS_CA_BUNDLE`, `HTTPS_PROXY`/`NO_PROXY` honoured).
//!
//! - [`query`]: the form body.
//! - [`xml`]: parsing answers and error documents.
//! - [`error`]: what failed and whether retrying helps.
//!
//! Only the refresher calls this; request handlers never call STS.

pub(crate) mod error;
pub(crate) mod query;
pub(crate) mod xml;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};

pub(crate) use error::{Retry, StsError};
pub(crate) use query::Query;
pub(crate) use xml::Issued;

use crate::clock::SharedClock;
use crate::config::StsConfig;
use crate::credentials::Credentials;
use crate::environment::Environment;

/// STS calls in flight at once, across roles: a config with a thousand
/// roles starts with a thousand first fetches, and running them all at
/// once costs tens of MiB of request state and as many connections (STS
/// throttles bursts anyway).
const MAX_CONCURRENT_CALLS: usize = 16;

/// Largest STS answer read; real ones are a few KiB.
const MAX_BODY: usize = 256 * 1024;
pub(crate) const FORM_CONTENT_TYPE: &str =
    "application/x-www-form-urlencoded; charset=utf-8";

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read AWS_CA_BUNDLE {path}: {source}")]
    CaBundle {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("AWS_CA_BUNDLE {path} holds no usable PEM certificate: {reason}")]
    CaBundleParse { path: String, reason: String },
    #[error("cannot build the HTTPS client: {0}")]
    Http(String),
    #[error("STS endpoint `{0}` is not a valid URL")]
    Endpoint(String),
}

/// A client for one STS endpoint.
#[derive(Clone)]
pub(crate) struct StsClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    region: String,
    config: StsConfig,
    clock: SharedClock,
    /// Bounds the calls in flight.
    calls: Arc<Semaphore>,
}

impl std::fmt::Debug for StsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClient")
            .field("endpoint", &self.endpoint.as_str())
            .finish()
    }
}

impl StsClient {
    pub(crate) fn new(
        cfg: &StsConfig,
        env: &Environment,
        clock: SharedClock,
    ) -> Result<Self, SetupError> {
        let endpoint = reqwest::Url::parse(&cfg.endpoint)
            .map_err(|_| SetupError::Endpoint(cfg.endpoint.clone()))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(MAX_CONCURRENT_CALLS)
            .user_agent(concat!("imdsd/", env!("CARGO_PKG_VERSION")));
        // A proxy cannot usefully stand between us and a loopback STS.
        if endpoint.host().is_some_and(crate::addr::is_loopback_host) {
            builder = builder.no_proxy();
        }
        for cert in ca_bundle(env)? {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        Ok(StsClient {
            http,
            endpoint,
            region: cfg.region.clone(),
            config: cfg.clone(),
            clock,
            calls: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)),
        })
    }

    /// The settings this client was built from.
    pub(crate) fn config(&self) -> &StsConfig {
        &self.config
    }

    /// Sends `query`, signed with `signer` (or unsigned when `None`, as
    /// AssumeRoleWithWebIdentity and AssumeRoleWithSAML require), and
    /// parses the credentials it returns.
    pub(crate) async fn call(
        &self,
        query: &Query,
        signer: Option<&Credentials>,
    ) -> Result<Issued, StsError> {
        // Signed after waiting, so the signature's time is the sending time.
        let _permit = self.calls.acquire().await.expect("never closed");
        let action = query.action;
        let body = query.body().into_bytes();
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE);
        if let Some(creds) = signer {
            for (name, value) in self.signature_headers(action, &body, creds)? {
                request = request.header(name, value);
            }
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(action, &e))?;
        let status = response.status().as_u16();
        let text = crate::read::body(response, MAX_BODY)
            .await
            .map_err(|e| self.transport(action, &e))?;
        if status != 200 {
            return Err(match xml::parse_error(&text) {
                Some(e) => StsError::Service {
                    action,
                    status,
                    code: e.code,
                    message: e.message,
                    request_id: e.request_id,
                },
                None => StsError::Http { action, status },
            });
        }
        let issued = xml::parse_credentials(action, &text)
            .map_err(|source| StsError::Malformed { action, source })?;
        self.check_not_expired(action, &issued)?;
        Ok(issued)
    }

    fn check_not_expired(
        &self,
        action: &'static str,
        issued: &Issued,
    ) -> Result<(), StsError> {
        match issued.credentials.expiration {
            Some(exp) if exp <= self.clock.now() => Err(StsError::AlreadyExpired {
                action,
                expiration: exp
                    .format(crate::credentials::documents::EXPIRATION_FORMAT)
                    .to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` for session credentials) for this body.
    fn signature_headers(
        &self,
        action: &'static str,
        body: &[u8],
        creds: &Credentials,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, StsError> {
        let target = Target {
            service: "sts",
            region: &self.region,
            endpoint: &self.endpoint,
        };
        sign_form(&target, self.clock.now().into(), body, creds)
            .map_err(|reason| StsError::Signing { action, reason })
    }

    fn transport(&self, action: &'static str, e: &reqwest::Error) -> StsError {
        StsError::Transport {
            action,
            endpoint: self.endpoint.to_string(),
            reason: error_chain(e),
            timed_out: e.is_timeout(),
        }
    }
}

/// Where a signed awsQuery POST goes: the service and region it is
/// signed for, and the URL.
pub(crate) struct Target<'a> {
    pub(crate) service: &'a str,
    pub(crate) region: &'a str,
    pub(crate) endpoint: &'a reqwest::Url,
}

/// The SigV4 headers for a form `body` POSTed to `target` at `time`
/// (STS's and IAM's awsQuery calls alike).
pub(crate) fn sign_form(
    target: &Target<'_>,
    time: SystemTime,
    body: &[u8],
    creds: &Credentials,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "imdsd",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(target.region)
        .name(target.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = host_header(target.endpoint);
    let headers = [("host", host.as_str()), ("content-type", FORM_CONTENT_TYPE)];
    let signable = SignableRequest::new(
        "POST",
        target.endpoint.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions
        .headers()
        .map(|(name, value)| {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            Ok((name, value))
        })
        .collect()
}

/// The Host header reqwest will send: host, plus the port when it is not
/// the scheme's default.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `reqwest` hides the useful part (connection refused, DNS) in sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

fn ca_bundle(env: &Environment) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let Some(path) = env.get("AWS_CA_BUNDLE") else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|source| SetupError::CaBundle {
        path: path.to_string(),
        source,
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        SetupError::CaBundleParse {
            path: path.to_string(),
            reason: e.to_string(),
        }
    })?;
    if certs.is_empty() {
        return Err(SetupError::CaBundleParse {
            path: path.to_string(),
            reason: "no certificates".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_includes_non_default_ports_only() {
        let u = reqwest::Url::parse("https://sts.us-east-1.amazonaws.com").unwrap();
        assert_eq!(host_header(&u), "sts.us-east-1.amazonaws.com");
        let u = reqwest::Url::parse("http://127.0.0.1:5000/").unwrap();
        assert_eq!(host_header(&u), "127.0.0.1:5000");
    }
}
