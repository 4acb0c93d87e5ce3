//! A fake STS for the integration tests: a real HTTP server on 127.0.0.1
//! that checks the SigV4 signature of every request it receives and
//! answers from a script (success, STS errors, 5xx, hangs, bad XML).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use imdsd::{Clock, ManualClock};
use tokio::net::TcpListener;

pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const REGION: &str = "us-east-1";

/// What the fake answers to one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Credentials valid for the requested DurationSeconds.
    Issue,
    /// Credentials with this lifetime, whatever was asked.
    IssueFor(TimeDelta),
    /// An STS error document.
    Error { status: u16, code: &'static str },
    /// A bare status with a non-XML body (a proxy's 502 page, say).
    Status(u16),
    /// 200 with this body.
    Body(&'static str),
    /// Never answers (until the client gives up).
    Hang,
    /// Answers with `Issue` after a delay.
    Slow(Duration),
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub params: Vec<(String, String)>,
    pub signature_ok: bool,
    pub signed: bool,
    /// The region of the signature's credential scope.
    pub region: Option<String>,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `seen` should carry `param`: it does, or it is a request that
/// needs it (an MFA serial goes with its code; a web-identity call with
/// its token). A required parameter that is missing fails like a wrong
/// one.
fn expects(seen: &Seen, param: &str) -> bool {
    seen.param(param).is_some()
        || match param {
            "TokenCode" => seen.param("SerialNumber").is_some(),
            "WebIdentityToken" => {
                seen.param("Action") == Some("AssumeRoleWithWebIdentity")
            }
            _ => false,
        }
}

/// A parameter the fake insists on, and what it answers otherwise (how
/// STS treats a wrong or missing MFA code, or an expired web-identity
/// token).
#[derive(Debug, Clone)]
struct Requirement {
    param: &'static str,
    value: String,
    status: u16,
    code: &'static str,
}

#[derive(Default)]
struct State {
    requirements: Vec<Requirement>,
    sso_token: Option<String>,
    /// The refresh token SSO-OIDC CreateToken accepts.
    sso_refresh: Option<String>,
    script: VecDeque<Answer>,
    default: Option<Answer>,
    seen: Vec<Seen>,
    issued: u64,
}

/// Handle to a running fake STS.
#[derive(Clone)]
pub struct FakeSts {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    clock: Arc<ManualClock>,
}

impl FakeSts {
    pub async fn start(clock: Arc<ManualClock>) -> FakeSts {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            default: Some(Answer::Issue),
            ..State::default()
        }));
        let fake = FakeSts { addr, state, clock };
        let server = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.answer(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        fake
    }

    /// The clock the fake stamps `Expiration` with.
    pub fn clock(&self) -> &Arc<ManualClock> {
        &self.clock
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with these, then with the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// The answer once the script runs out.
    pub fn set_default(&self, answer: Answer) {
        self.state.lock().unwrap().default = Some(answer);
    }

    /// From now on, requests carrying `param`, or needing it (see
    /// [`expects`]), must carry `value`; others get the STS error `code`.
    pub fn require(
        &self,
        param: &'static str,
        value: &str,
        status: u16,
        code: &'static str,
    ) {
        let mut st = self.state.lock().unwrap();
        st.requirements.retain(|r| r.param != param);
        st.requirements.push(Requirement {
            param,
            value: value.into(),
            status,
            code,
        });
    }

    /// The SSO portal accepts this bearer token (and no other).
    pub fn accept_sso_token(&self, token: &str) {
        self.state.lock().unwrap().sso_token = Some(token.into());
    }

    /// SSO-OIDC CreateToken accepts this refresh token (and no other).
    pub fn accept_sso_refresh(&self, refresh_token: &str) {
        self.state.lock().unwrap().sso_refresh = Some(refresh_token.into());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    /// The access key id of the `n`th issued set (1-based).
    pub fn issued_key(n: u64) -> String {
        format!("ASIAFAKE{n:012}")
    }

    pub fn issued_secret(n: u64) -> String {
        format!("fake-secret-{n}-{}", "s".repeat(24))
    }

    /// The session token of the `n`th issued set, for the role named
    /// `role` (the last part of the RoleArn asked for).
    pub fn issued_token(n: u64, role: &str) -> String {
        format!("fake-session-token-{n}-role-{role}-{}", "t".repeat(64))
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() == "/federation/credentials" {
            return self.sso(&req);
        }
        if req.uri().path() == "/token" {
            return self.create_token(req).await;
        }
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let seen = Seen {
            params: url::form_urlencoded::parse(&body).into_owned().collect(),
            signature_ok: signature_ok(&parts, &body, self.addr),
            signed: parts.headers.contains_key("authorization"),
            region: scope_region(&parts),
        };
        let unsigned_action = matches!(
            seen.param("Action"),
            Some("AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML")
        );
        let sig_ok = seen.signature_ok || (unsigned_action && !seen.signed);
        let duration = seen
            .param("DurationSeconds")
            .and_then(|d| d.parse().ok())
            .unwrap_or(3600);
        let action = seen.param("Action").unwrap_or("AssumeRole").to_string();
        let role = seen
            .param("RoleArn")
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or("none")
            .to_string();
        let answer = {
            let mut st = self.state.lock().unwrap();
            let unmet = st
                .requirements
                .iter()
                .find(|r| {
                    expects(&seen, r.param) && seen.param(r.param) != Some(&r.value)
                })
                .cloned();
            st.seen.push(seen);
            if let Some(r) = unmet {
                return error(r.status, r.code);
            }
            st.script
                .pop_front()
                .or(st.default.clone())
                .unwrap_or(Answer::Issue)
        };
        if !sig_ok {
            return error(403, "SignatureDoesNotMatch");
        }
        match answer {
            Answer::Issue => self.issue(&action, &role, TimeDelta::seconds(duration)),
            Answer::IssueFor(lifetime) => self.issue(&action, &role, lifetime),
            Answer::Error { status, code } => error(status, code),
            Answer::Status(status) => {
                respond(status, "<html><body>Bad Gateway</body></html>")
            }
            Answer::Body(body) => respond(200, body),
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                respond(500, "")
            }
            Answer::Slow(delay) => {
                tokio::time::sleep(delay).await;
                self.issue(&action, &role, TimeDelta::seconds(duration))
            }
        }
    }

    /// SSO-OIDC CreateToken, grant type `refresh_token`: a new access token
    /// (which the portal then accepts instead of the old one) and a rotated
    /// refresh token.
    async fn create_token(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Response<Full<Bytes>> {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = |k: &str| asked[k].as_str().unwrap_or_default().to_string();
        let mut st = self.state.lock().unwrap();
        st.seen.push(Seen {
            params: vec![
                ("Action".into(), "CreateToken".into()),
                ("grantType".into(), text("grantType")),
                ("clientId".into(), text("clientId")),
            ],
            signature_ok: false,
            signed: false,
            region: None,
        });
        let accepted = st.sso_refresh.clone();
        if text("grantType") != "refresh_token"
            || accepted.as_deref() != Some(&*text("refreshToken"))
        {
            return respond(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#,
            );
        }
        st.issued += 1;
        let n = st.issued;
        st.sso_token = Some(format!("renewed-access-{n}"));
        st.sso_refresh = Some(format!("renewed-refresh-{n}"));
        respond(
            200,
            &format!(
                r#"{{"accessToken":"renewed-access-{n}","expiresIn":3600,"refreshToken":"renewed-refresh-{n}","tokenType":"Bearer"}}"#
            ),
        )
    }

    /// The SSO portal's GetRoleCredentials.
    fn sso(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let token = req
            .headers()
            .get("x-amz-sso_bearer_token")
            .and_then(|v| v.to_str().ok());
        let accepted = self.state.lock().unwrap().sso_token.clone();
        if token.is_none() || token != accepted.as_deref() {
            return respond(401, r#"{"message":"Session token not found or invalid"}"#);
        }
        let query = req.uri().query().unwrap_or_default();
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let role = params
            .iter()
            .find(|(k, _)| k == "role_name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let n = {
            let mut st = self.state.lock().unwrap();
            st.issued += 1;
            st.seen.push(Seen {
                params,
                signature_ok: false,
                signed: false,
                region: None,
            });
            st.issued
        };
        let expiration = (self.clock.now() + TimeDelta::hours(1)).timestamp_millis();
        respond(
            200,
            &format!(
                r#"{{"roleCredentials":{{"accessKeyId":"{}","secretAccessKey":"{}","sessionToken":"{}","expiration":{expiration}}}}}"#,
                Self::issued_key(n),
                Self::issued_secret(n),
                Self::issued_token(n, &role),
            ),
        )
    }

    fn issue(
        &self,
        action: &str,
        role: &str,
        lifetime: TimeDelta,
    ) -> Response<Full<Bytes>> {
        let n = {
            let mut st = self.state.lock().unwrap();
            st.issued += 1;
            st.issued
        };
        let expiration: DateTime<Utc> = self.clock.now() + lifetime;
        let body = format!(
            r#"<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{action}Result>
    <AssumedRoleUser><AssumedRoleId>AROAFAKE:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/dev/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{}</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
  </{action}Result>
  <ResponseMetadata><RequestId>req-{n}</RequestId></ResponseMetadata>
</{action}Response>"#,
            Self::issued_key(n),
            Self::issued_secret(n),
            Self::issued_token(n, role),
            expiration.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        );
        respond(200, &body)
    }
}

fn respond(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "text/xml".parse().unwrap());
    r
}

fn error(status: u16, code: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error><Type>Sender</Type><Code>{code}</Code><Message>fake {code}</Message></Error>\n  <RequestId>err-1</RequestId>\n</ErrorResponse>"
    );
    respond(status, &body)
}

/// `REGION` in `Authorization: ... Credential=KEY/DATE/REGION/sts/...`.
fn scope_region(parts: &http::request::Parts) -> Option<String> {
    let auth = parts.headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?;
    Some(scope.split('/').nth(2)?.to_string())
}

/// Recomputes the SigV4 signature with the known secret and compares, for
/// the region the request names (tests that care check [`Seen::region`]).
fn signature_ok(parts: &http::request::Parts, body: &[u8], addr: SocketAddr) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(auth), Some(date)) = (header("authorization"), header("x-amz-date")) else {
        return false;
    };
    // Long-term source keys, or a set this fake issued (role chaining).
    let Some(key_id) = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
    else {
        return false;
    };
    let secret = if key_id == ACCESS_KEY_ID {
        SECRET_KEY.to_string()
    } else if let Some(n) = key_id.strip_prefix("ASIAFAKE").and_then(|n| n.parse().ok()) {
        if header("x-amz-security-token").is_none() {
            return false;
        }
        FakeSts::issued_secret(n)
    } else {
        return false;
    };
    let Some(region) = scope_region(parts) else {
        return false;
    };
    let expected_scope = format!(
        "Credential={key_id}/{}/{region}/sts/aws4_request",
        &date[..8]
    );
    if !auth.contains(&expected_scope) {
        return false;
    }
    let Ok(time) = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ") else {
        return false;
    };
    let time: SystemTime = time.and_utc().into();
    let identity = aws_credential_types::Credentials::new(
        key_id,
        secret,
        header("x-amz-security-token").map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = header("host").unwrap_or_default().to_string();
    let content_type = header("content-type").unwrap_or_default().to_string();
    let headers = [
        ("host", host.as_str()),
        ("content-type", content_type.as_str()),
    ];
    let url = format!("http://{addr}/");
    let Ok(signable) = SignableRequest::new(
        "POST",
        &url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    ) else {
        return false;
    };
    let Ok(signed) = sign(signable, &params) else {
        return false;
    };
    let (instructions, _) = signed.into_parts();
    instructions
        .headers()
        .any(|(name, value)| name == "authorization" && value == auth)
}
