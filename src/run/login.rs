//! `imdsd login ROLE`: opens the AWS console signed in as the role, with
//! its current session credentials, through the AWS federation endpoint
//! (`getSigninToken`, then the `login` URL), as `aws-vault login` does.
//!
//! The credentials go to the federation endpoint in a POST body, never in
//! a URL; the URL opened (or printed with `--print`) carries only the
//! sign-in token, which is good for one sign-in within 15 minutes.
//! `IMDSD_FEDERATION_ENDPOINT` replaces the partition's endpoint (tests
//! point it at a local stand-in).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::console::{self, ConsoleError, Partition};
use super::role::{current_thread_runtime, role_credentials};
use super::{RunError, print};
use crate::environment::Environment;
use crate::secret::Secret;

/// How long the federation endpoint may take.
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// What `imdsd login` was asked for.
pub(crate) struct LoginRequest {
    pub(crate) socket: Option<PathBuf>,
    pub(crate) role: String,
    pub(crate) destination: Option<String>,
    /// Print the URL instead of opening it.
    pub(crate) print: bool,
}

/// `imdsd login ROLE [--destination URL] [--print]`.
pub(super) fn login(request: LoginRequest, env: &Environment) -> Result<(), RunError> {
    let role = request.role.as_str();
    let (credentials, region) = role_credentials(request.socket.clone(), role, env)?;
    let region = if region.is_empty() {
        "us-east-1".to_string()
    } else {
        region
    };
    let partition = Partition::of_region(&region);
    let endpoint = federation_endpoint(partition, env)?;
    let destination = match &request.destination {
        Some(text) => console::http_url(text).ok_or_else(|| {
            console_error(role, ConsoleError::BadDestination(text.clone()))
        })?,
        None => console::http_url(&partition.console_home(&region))
            .ok_or_else(|| RunError::Role(format!("no console for region {region}")))?,
    };
    let session =
        console::session_document(&credentials).map_err(|e| console_error(role, e))?;
    drop(credentials);
    let token =
        current_thread_runtime()?.block_on(signin_token(&endpoint, &session, role))?;
    let url = console::login_url(&endpoint, &destination, &token);
    if request.print {
        print(&format!("{}\n", url.as_str()));
        return Ok(());
    }
    open_in_browser(&url)
}

/// The partition's federation endpoint, or `IMDSD_FEDERATION_ENDPOINT`.
fn federation_endpoint(partition: Partition, env: &Environment) -> Result<Url, RunError> {
    let text = env
        .get("IMDSD_FEDERATION_ENDPOINT")
        .unwrap_or(partition.federation_endpoint());
    console::http_url(text).ok_or_else(|| {
        RunError::Usage(format!(
            "IMDSD_FEDERATION_ENDPOINT: {}",
            ConsoleError::BadEndpoint(text.to_string())
        ))
    })
}

fn console_error(role: &str, e: ConsoleError) -> RunError {
    RunError::Role(format!("role `{role}`: {e}"))
}

/// Asks the federation endpoint for a sign-in token for `session`.
async fn signin_token(
    endpoint: &Url,
    session: &str,
    role: &str,
) -> Result<Secret, RunError> {
    let http = reqwest::Client::builder()
        .timeout(FEDERATION_TIMEOUT)
        .build()
        .map_err(|e| RunError::Role(format!("cannot build the HTTP client: {e}")))?;
    let form = [("Action", "getSigninToken"), ("Session", session)];
    let answer = http
        .post(endpoint.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            RunError::Role(format!(
                "the federation endpoint {endpoint}: {}",
                e.without_url()
            ))
        })?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(RunError::Role(refused(role, endpoint, status.as_u16())));
    }
    console::signin_token(&body).map_err(|e| console_error(role, e))
}

/// What a refused `getSigninToken` means and what would work.
fn refused(role: &str, endpoint: &Url, status: u16) -> String {
    format!(
        "role `{role}`: the federation endpoint {endpoint} refused its credentials (HTTP \
         {status}). Console sign-in takes credentials from AssumeRole (a `role_arn`), web \
         identity, SAML or IAM Identity Center; a session made with GetSessionToken from \
         an IAM user's long-term keys (a `type = \"session_token\"` role or a profile with \
         only keys) cannot sign in: log in with a role that one of those assumes instead"
    )
}

/// Opens `url` with `xdg-open`; when there is none, says to use `--print`.
fn open_in_browser(url: &str) -> Result<(), RunError> {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .status();
    match opened {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(RunError::Role(format!(
            "xdg-open failed ({status}); `imdsd login --print` prints the URL instead"
        ))),
        Err(e) => Err(RunError::Role(format!(
            "cannot run xdg-open: {e}; `imdsd login --print` prints the URL instead"
        ))),
    }
}
