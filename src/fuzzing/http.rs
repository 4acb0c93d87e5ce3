//! Raw request bytes through the real IMDS and container endpoints.
//!
//! Each endpoint is built once, as `app` builds it for a listener, around a
//! role slot holding fake credentials with recognizable secrets, and a
//! clock that never moves. A fuzz input is parsed with `httparse` (the
//! parser hyper uses) into an `http::Request`, as hyper would hand it to
//! the server, and answered by the endpoint's `respond`, the function the
//! server calls for every request. Input hyper itself would refuse (bad
//! syntax, an incomplete head, more than 100 headers) gets `None`.
//!
//! Tokens cannot be guessed, so markers in the input are replaced before
//! parsing: [`VALID_TOKEN_MARK`] by a valid IMDSv2 token,
//! [`EXPIRED_TOKEN_MARK`] by an expired one, [`FOREIGN_TOKEN_MARK`] by one
//! signed with another key, and [`container_mark`]s by a container role's
//! token. The fuzzer then explores the authorized paths too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub use ::http::{HeaderMap, Method, StatusCode, Uri};
use ::http::{HeaderName, HeaderValue, Request, Version};
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;

use crate::audit::Audit;
use crate::clock::{ManualClock, SharedClock};
use crate::container::endpoint::{Container, ServedRole};
use crate::container::tokens::RoleToken;
use crate::credentials::Credentials;
use crate::endpoint::{Endpoint, EndpointSpec};
use crate::imds::endpoint::{Imds, ImdsSpec};
use crate::imds::token::TokenKey;
use crate::metrics::Metrics;
use crate::refresh::slot::RoleSlot;
use crate::refresh::store::{Served, Snapshot};
use crate::secret::Secret;
use crate::server::guard::HostAllowList;
use crate::server::{Client, HttpResponse};

/// The IMDS listener's address: port 80, so `Host: 169.254.169.254` and
/// `Host: localhost` are accepted as on EC2.
pub const IMDS_LISTEN: &str = "169.254.169.254:80";
/// The container listener's address.
pub const CONTAINER_LISTEN: &str = "127.0.0.1:16926";
/// The IMDS listener's role.
pub const IMDS_ROLE: &str = "dev";
/// The container listener's roles.
pub const CONTAINER_ROLES: [&str; 2] = ["dev", "ops"];

/// Replaced by a valid IMDSv2 token.
pub const VALID_TOKEN_MARK: &[u8] = b"@T@";
/// Replaced by an IMDSv2 token that has expired.
pub const EXPIRED_TOKEN_MARK: &[u8] = b"@E@";
/// Replaced by a well-formed IMDSv2 token signed with another key.
pub const FOREIGN_TOKEN_MARK: &[u8] = b"@F@";

/// The marker replaced by container role `i`'s token: `@0@`, `@1@`.
pub fn container_mark(i: usize) -> Vec<u8> {
    format!("@{i}@").into_bytes()
}

/// The fixed time every request is answered at.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("in range")
}

/// The secrets a role's credentials hold: the secret key, the session
/// token. The fuzz input never contains them (they hold a byte no marker
/// or dictionary word has); an answer that does carries credentials.
pub fn secrets(role: &str) -> [String; 2] {
    [
        format!("{role}/SECRET+KEY+{}", "s3cr3t".repeat(4)),
        format!("{role}/SESSION+TOKEN+{}", "t0k3n".repeat(8)),
    ]
}

/// The access key id of a role's credentials.
pub fn access_key_id(role: &str) -> String {
    format!("ASIAFUZZ{}", role.to_ascii_uppercase())
}

/// The valid IMDSv2 token the markers stand for.
pub fn valid_imds_token() -> &'static str {
    &FIXTURE.valid
}

/// Container role `i`'s token.
pub fn container_token(i: usize) -> &'static str {
    &FIXTURE.container_tokens[i]
}

/// One request and what the endpoint answered.
pub struct Exchange {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub status: StatusCode,
    pub response_headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Exchange {
    /// Asserts what every answer carrying credentials needs: exactly one
    /// `Host`, naming one of `hosts`, and an absolute-form target (if any)
    /// naming one too.
    pub fn assert_names_this_listener(&self, hosts: &[&str]) {
        let found: Vec<_> = self.headers.get_all("host").iter().collect();
        assert_eq!(found.len(), 1, "credentials without exactly one Host");
        let host = found[0]
            .to_str()
            .expect("an ASCII Host")
            .to_ascii_lowercase();
        assert!(
            hosts.contains(&host.as_str()),
            "credentials for Host {host}"
        );
        if let Some(authority) = self.uri.authority() {
            let authority = authority.as_str().to_ascii_lowercase();
            assert!(
                hosts.contains(&authority.as_str()),
                "target names {authority}"
            );
        }
    }
}

/// Answers `input` (markers replaced) with the IMDS endpoint.
pub fn imds(input: &[u8]) -> Option<Exchange> {
    let f = &*FIXTURE;
    exchange(input, |req| {
        f.runtime.block_on(f.imds.respond(req, &f.client))
    })
}

/// Answers `input` (markers replaced) with the container endpoint.
pub fn container(input: &[u8]) -> Option<Exchange> {
    let f = &*FIXTURE;
    exchange(input, |req| {
        f.runtime.block_on(f.container.respond(req, &f.client))
    })
}

fn exchange(
    input: &[u8],
    respond: impl FnOnce(Request<()>) -> HttpResponse,
) -> Option<Exchange> {
    let bytes = replace_marks(input);
    let req = parse(&bytes)?;
    let (method, uri, headers) = (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    );
    let response = respond(req);
    let (parts, body) = response.into_parts();
    let body = FIXTURE
        .runtime
        .block_on(body.collect())
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    Some(Exchange {
        method,
        uri,
        headers,
        status: parts.status,
        response_headers: parts.headers,
        body,
    })
}

/// One request head, as hyper's server would build the request.
fn parse(bytes: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(bytes), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let version = match req.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut builder = Request::builder()
        .method(Method::from_bytes(req.method?.as_bytes()).ok()?)
        .uri(Uri::try_from(req.path?).ok()?)
        .version(version);
    let map = builder.headers_mut()?;
    for h in req.headers.iter() {
        map.append(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    builder.body(()).ok()
}

pub(super) fn replace_marks(input: &[u8]) -> Vec<u8> {
    let f = &*FIXTURE;
    let mut marks: Vec<(Vec<u8>, &str)> = vec![
        (VALID_TOKEN_MARK.to_vec(), &f.valid),
        (EXPIRED_TOKEN_MARK.to_vec(), &f.expired),
        (FOREIGN_TOKEN_MARK.to_vec(), &f.foreign),
    ];
    for (i, token) in f.container_tokens.iter().enumerate() {
        marks.push((container_mark(i), token));
    }
    let mut out = Vec::with_capacity(input.len() + 64);
    let mut rest = input;
    'outer: while let Some((&first, tail)) = rest.split_first() {
        if first == b'@' {
            for (mark, token) in &marks {
                if rest.starts_with(mark) {
                    out.extend_from_slice(token.as_bytes());
                    rest = &rest[mark.len()..];
                    continue 'outer;
                }
            }
        }
        out.push(first);
        rest = tail;
    }
    out
}

// === the fixture ===

pub(super) struct Fixture {
    runtime: tokio::runtime::Runtime,
    /// For [`super::stream`]: its clock moves only when every task waits,
    /// so the loop's pauses and timeouts cost no real time.
    pub(super) paused: tokio::runtime::Runtime,
    pub(super) imds: Endpoint<Imds>,
    pub(super) container: Endpoint<Container>,
    pub(super) client: Client,
    valid: String,
    expired: String,
    foreign: String,
    container_tokens: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

/// The endpoints every input is answered by, built on first use.
pub(super) fn fixture() -> &'static Fixture {
    &FIXTURE
}

impl Fixture {
    fn new() -> Self {
        let clock: SharedClock = ManualClock::new(now());
        let key = Arc::new(TokenKey::new(&[0x5a; 32]));
        let metrics = Metrics::default();
        let audit = Audit::start(None);
        let imds_addr: SocketAddr = IMDS_LISTEN.parse().expect("an address");
        let container_addr: SocketAddr = CONTAINER_LISTEN.parse().expect("an address");
        let spec = |listener: SocketAddr| EndpointSpec {
            allow_uids: None,
            clock: clock.clone(),
            wait_limit: Duration::ZERO,
            stats: Arc::new(metrics.listener_stats(listener.to_string())),
            listener,
            audit: audit.clone(),
        };
        let imds = Imds::new(ImdsSpec {
            role: slot(IMDS_ROLE),
            role_arn: "arn:aws:iam::123456789012:role/dev".into(),
            allow_v1: false,
            hosts: HostAllowList::for_listener(imds_addr),
            key: key.clone(),
            started: now(),
            region: "eu-west-1".into(),
            instance_id: "i-0123456789abcdef0".into(),
            previous: None,
        });
        let imds = Endpoint::new(spec(imds_addr), imds);
        let container_tokens: Vec<String> = CONTAINER_ROLES
            .iter()
            .map(|r| format!("{r}-container-token-{}", "Zq9".repeat(12)))
            .collect();
        let container = Container::new(
            container_roles(&container_tokens),
            HostAllowList::for_listener(container_addr),
        );
        let container = Endpoint::new(spec(container_addr), container);
        Fixture {
            runtime: runtime(false),
            paused: runtime(true),
            imds,
            container,
            client: Client::known("127.0.0.1:40000".parse().expect("an address"), None),
            valid: key.mint(now(), 21_600),
            expired: key.mint(now() - TimeDelta::hours(7), 21_600),
            foreign: TokenKey::new(&[0xa5; 32]).mint(now(), 21_600),
            container_tokens,
        }
    }
}

/// A single-threaded runtime, its clock paused or not.
fn runtime(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .expect("a runtime")
}

/// The container listener's roles, each with its token.
fn container_roles(tokens: &[String]) -> BTreeMap<String, ServedRole> {
    CONTAINER_ROLES
        .iter()
        .zip(tokens)
        .map(|(r, t)| {
            let role = ServedRole {
                slot: slot(r),
                token: RoleToken::new(Secret::new(t)),
            };
            (r.to_string(), role)
        })
        .collect()
}

/// A role slot serving fake credentials good for another six hours.
fn slot(role: &str) -> Arc<RoleSlot> {
    let [secret, token] = secrets(role);
    let creds = Credentials {
        access_key_id: access_key_id(role),
        secret_access_key: Secret::new(secret),
        session_token: Some(Secret::new(token)),
        expiration: Some(now() + TimeDelta::hours(6)),
    };
    let slot = RoleSlot::new(role);
    slot.publish(Snapshot {
        served: Served::render(
            &creds,
            Some(format!(
                "arn:aws:sts::123456789012:assumed-role/{role}/fuzz"
            )),
            now() - TimeDelta::minutes(5),
        )
        .map(Arc::new),
        attempt: 1,
        ..Default::default()
    });
    slot
}
