//! The calls `imdsd rotate` makes with a long-term key: IAM's GetUser,
//! CreateAccessKey and DeleteAccessKey, and STS's GetCallerIdentity to
//! check a new key. awsQuery POSTs signed with `aws-sigv4`
//! ([`crate::sts::sign_form`], as every STS call), answers read by
//! [`crate::sts::xml`].
//!
//! IAM is global: one endpoint per partition (`iam.amazonaws.com`, signed
//! for us-east-1), or `AWS_ENDPOINT_URL_IAM` (then `AWS_ENDPOINT_URL`) as
//! in the SDKs, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`; plain
//! `http` only to a loopback host. No error holds a secret.

use std::time::{Duration, SystemTime};

use reqwest::header::CONTENT_TYPE;

use crate::clock::SharedClock;
use crate::config::StsConfig;
use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;
use crate::sts::xml::{self, XmlError};
use crate::sts::{FORM_CONTENT_TYPE, Query, Target, sign_form};

/// IAM's API version.
const API_VERSION: &str = "2010-05-08";
/// Largest answer read.
const MAX_BODY: usize = 256 * 1024;

/// Why an IAM (or GetCallerIdentity) call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IamError {
    #[error("{action}: {code}: {message}")]
    Service {
        action: &'static str,
        code: String,
        message: String,
    },
    #[error("{action}: HTTP {status} from {endpoint}")]
    Http {
        action: &'static str,
        status: u16,
        endpoint: String,
    },
    #[error("{action}: cannot reach {endpoint}: {reason}")]
    Transport {
        action: &'static str,
        endpoint: String,
        reason: String,
    },
    #[error("{action}: the answer is not understood: {source}")]
    Malformed {
        action: &'static str,
        #[source]
        source: XmlError,
    },
    #[error("{action}: cannot sign the request: {reason}")]
    Signing {
        action: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Endpoint(String),
}

impl IamError {
    /// The AWS error code, for a service's refusal.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            IamError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The IAM endpoint and the region it is signed for (pure).
pub(crate) fn iam_endpoint(env: &Environment, region: &str) -> (String, &'static str) {
    let (default, signing) = if region.starts_with("cn-") {
        ("https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1")
    } else if region.starts_with("us-gov-") {
        ("https://iam.us-gov.amazonaws.com", "us-gov-west-1")
    } else {
        ("https://iam.amazonaws.com", "us-east-1")
    };
    let ignored = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = (!ignored)
        .then(|| env.first_of(&["AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"]))
        .flatten()
        .filter(|v| !v.is_empty());
    (configured.unwrap_or(default).to_string(), signing)
}

/// Checks a URL: `https`, or `http` to a loopback host.
fn endpoint_url(text: &str) -> Result<reqwest::Url, IamError> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        IamError::Endpoint(format!("endpoint `{text}` is not a URL: {e}"))
    })?;
    let loopback = url.host().is_some_and(crate::addr::is_loopback_host);
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(IamError::Endpoint(format!(
            "endpoint `{text}`: use https (plain http only to a loopback host)"
        ))),
    }
}

/// A client for IAM and STS's GetCallerIdentity.
pub(crate) struct Iam {
    http: reqwest::Client,
    iam: (reqwest::Url, &'static str),
    sts: (reqwest::Url, String),
    clock: SharedClock,
}

impl Iam {
    pub(crate) fn new(
        env: &Environment,
        sts: &StsConfig,
        clock: SharedClock,
    ) -> Result<Iam, IamError> {
        let (iam, signing) = iam_endpoint(env, &sts.region);
        let iam = endpoint_url(&iam)?;
        let sts_url = endpoint_url(&sts.endpoint)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(sts.timeout.max(Duration::from_secs(10)))
            .user_agent(concat!("imdsd/", env!("CARGO_PKG_VERSION")));
        if [&iam, &sts_url]
            .iter()
            .all(|u| u.host().is_some_and(crate::addr::is_loopback_host))
        {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| {
            IamError::Endpoint(format!("cannot build the HTTPS client: {e}"))
        })?;
        Ok(Iam {
            http,
            iam: (iam, signing),
            sts: (sts_url, sts.region.clone()),
            clock,
        })
    }

    /// The IAM user the key belongs to (GetUser with no name).
    pub(crate) async fn user_name(&self, key: &Credentials) -> Result<String, IamError> {
        let query = Query::for_api("GetUser", API_VERSION);
        let found = self.iam_call(&query, key, &["User/UserName"]).await?;
        Ok(found[0].to_string())
    }

    /// A new access key for `user`, made with `key`.
    pub(crate) async fn create_access_key(
        &self,
        key: &Credentials,
        user: &str,
    ) -> Result<Credentials, IamError> {
        let query =
            Query::for_api("CreateAccessKey", API_VERSION).param("UserName", user);
        let paths = ["AccessKey/AccessKeyId", "AccessKey/SecretAccessKey"];
        let found = self.iam_call(&query, key, &paths).await?;
        Ok(Credentials {
            access_key_id: found[0].to_string(),
            secret_access_key: Secret::new(found[1].as_str()),
            session_token: None,
            expiration: None,
        })
    }

    /// Deletes `user`'s access key `id`, signed with `key`.
    pub(crate) async fn delete_access_key(
        &self,
        key: &Credentials,
        user: &str,
        id: &str,
    ) -> Result<(), IamError> {
        let query = Query::for_api("DeleteAccessKey", API_VERSION)
            .param("UserName", user)
            .param("AccessKeyId", id);
        self.iam_call(&query, key, &[]).await.map(drop)
    }

    /// Who `key` is (STS GetCallerIdentity): its ARN.
    pub(crate) async fn caller_arn(&self, key: &Credentials) -> Result<String, IamError> {
        let query = Query::new("GetCallerIdentity");
        let (url, region) = (&self.sts.0, self.sts.1.as_str());
        let target = Target {
            service: "sts",
            region,
            endpoint: url,
        };
        let found = self.call(&target, &query, key, &["Arn"]).await?;
        Ok(found[0].to_string())
    }

    async fn iam_call(
        &self,
        query: &Query,
        key: &Credentials,
        paths: &[&'static str],
    ) -> Result<Vec<zeroize::Zeroizing<String>>, IamError> {
        let target = Target {
            service: "iam",
            region: self.iam.1,
            endpoint: &self.iam.0,
        };
        self.call(&target, query, key, paths).await
    }

    async fn call(
        &self,
        target: &Target<'_>,
        query: &Query,
        key: &Credentials,
        paths: &[&'static str],
    ) -> Result<Vec<zeroize::Zeroizing<String>>, IamError> {
        let action = query.action;
        let body = query.body().into_bytes();
        let time: SystemTime = self.clock.now().into();
        let headers = sign_form(target, time, &body, key)
            .map_err(|reason| IamError::Signing { action, reason })?;
        let endpoint = target.endpoint.to_string();
        let transport = |e: reqwest::Error| IamError::Transport {
            action,
            endpoint: endpoint.clone(),
            reason: crate::sts::error_chain(&e),
        };
        let mut request = self
            .http
            .post(target.endpoint.clone())
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let text = crate::read::body(response, MAX_BODY)
            .await
            .map_err(transport)?;
        let text = zeroize::Zeroizing::new(text);
        if status != 200 {
            return Err(match xml::parse_error(&text) {
                Some(e) => IamError::Service {
                    action,
                    code: e.code,
                    message: e.message,
                },
                None => IamError::Http {
                    action,
                    status,
                    endpoint,
                },
            });
        }
        xml::parse_result(action, &text, paths)
            .map_err(|source| IamError::Malformed { action, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iam_endpoint_follows_the_partition_and_the_sdk_variables() {
        let none = Environment::default();
        assert_eq!(
            iam_endpoint(&none, "eu-west-1"),
            ("https://iam.amazonaws.com".to_string(), "us-east-1")
        );
        assert_eq!(iam_endpoint(&none, "cn-northwest-1").1, "cn-north-1");
        assert_eq!(
            iam_endpoint(&none, "us-gov-east-1").0,
            "https://iam.us-gov.amazonaws.com"
        );
        let env = Environment::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:2"),
        ]);
        assert_eq!(iam_endpoint(&env, "us-east-1").0, "http://127.0.0.1:2");
        let env = Environment::from_pairs([
            ("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(
            iam_endpoint(&env, "us-east-1").0,
            "https://iam.amazonaws.com"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(endpoint_url("http://127.0.0.1:5000").is_ok());
        assert!(endpoint_url("https://iam.amazonaws.com").is_ok());
        let err = endpoint_url("http://iam.example.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain http only to a loopback host"), "{err}");
    }
}
