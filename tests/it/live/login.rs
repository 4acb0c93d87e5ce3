//! `imdsd login`: the console sign-in URL, through a local stand-in for
//! the AWS federation endpoint (`IMDSD_FEDERATION_ENDPOINT`).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::role::{imdsd, started, stderr, stdout};
use super::*;

/// A federation endpoint stand-in answering every request with `status`
/// and `body`; keeps each request's form body.
struct Federation {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Federation {
    async fn start(status: u16, body: &'static str) -> Federation {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/federation", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let form = answer(stream, status, body).await;
                seen.lock().unwrap().push(form);
            }
        });
        Federation { url, bodies }
    }

    /// The one `Session` document it was sent, form-decoded.
    fn session(&self) -> serde_json::Value {
        let bodies = self.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(bodies[0].as_bytes())
                .into_owned()
                .collect();
        assert_eq!(form[0], ("Action".into(), "getSigninToken".into()));
        assert_eq!(form[1].0, "Session");
        serde_json::from_str(&form[1].1).unwrap()
    }
}

/// Reads one request (head and `Content-Length` body), answers it; the
/// body.
async fn answer(stream: tokio::net::TcpStream, status: u16, body: &str) -> String {
    let mut stream = BufReader::new(stream);
    let mut length = 0;
    let mut line = String::new();
    while stream.read_line(&mut line).await.unwrap_or(0) > 2 {
        if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut form = vec![0u8; length];
    let _ = stream.read_exact(&mut form).await;
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.get_mut().write_all(reply.as_bytes()).await;
    String::from_utf8_lossy(&form).into_owned()
}

/// The role's credentials as `credential-process` prints them.
fn served(live: &Live) -> serde_json::Value {
    let out = imdsd(live, &["credential-process", "dev"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_print_gives_a_signin_url_holding_no_credential() {
    let live = started().await;
    let federation =
        Federation::start(200, r#"{"SigninToken":"fake-signin-token"}"#).await;
    let out = imdsd(
        &live,
        &["login", "dev", "--print"],
        &[("IMDSD_FEDERATION_ENDPOINT", &federation.url)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let url = url::Url::parse(printed.trim_end()).unwrap();
    let pairs: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(pairs["Action"], "login");
    assert_eq!(pairs["SigninToken"], "fake-signin-token");
    assert_eq!(
        pairs["Destination"],
        "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"
    );
    assert!(
        printed.starts_with(&format!("{}?", federation.url)),
        "{printed}"
    );
    // The federation endpoint got the role's current session; the URL
    // holds none of it.
    let session = federation.session();
    let creds = served(&live);
    assert_eq!(session["sessionId"], creds["AccessKeyId"]);
    assert_eq!(session["sessionKey"], creds["SecretAccessKey"]);
    assert_eq!(session["sessionToken"], creds["SessionToken"]);
    for secret in ["SecretAccessKey", "SessionToken"] {
        let value = creds[secret].as_str().unwrap();
        assert!(!printed.contains(&value[..16]), "{secret} in the URL");
        let encoded: String =
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        assert!(!printed.contains(&encoded[..16]), "{secret} in the URL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_the_url_with_xdg_open_and_honours_the_destination() {
    let live = started().await;
    let federation = Federation::start(200, r#"{"SigninToken":"tok"}"#).await;
    // A stand-in xdg-open that keeps the URL it was given.
    let bin = live.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = live.dir.path().join("opened");
    let script = format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", opened.display());
    std::fs::write(bin.join("xdg-open"), script).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(bin.join("xdg-open"))
            .unwrap()
            .permissions(),
        0o755,
    );
    std::fs::set_permissions(
        bin.join("xdg-open"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = imdsd(
        &live,
        &[
            "login",
            "dev",
            "--destination",
            "https://console.aws.amazon.com/s3/home",
        ],
        &[
            ("IMDSD_FEDERATION_ENDPOINT", &federation.url),
            ("PATH", &path),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing printed: {}", stdout(&out));
    let url = url::Url::parse(&std::fs::read_to_string(&opened).unwrap()).unwrap();
    let pairs: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs["Destination"],
        "https://console.aws.amazon.com/s3/home"
    );
    assert_eq!(pairs["SigninToken"], "tok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_signin_says_what_would_work_and_leaks_nothing() {
    let live = started().await;
    let federation = Federation::start(400, "Bad Request").await;
    let out = imdsd(
        &live,
        &["login", "dev", "--print"],
        &[("IMDSD_FEDERATION_ENDPOINT", &federation.url)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("refused its credentials (HTTP 400)"), "{err}");
    assert!(err.contains("GetSessionToken"), "{err}");
    let creds = served(&live);
    for secret in ["SecretAccessKey", "SessionToken"] {
        assert!(
            !err.contains(&creds[secret].as_str().unwrap()[..16]),
            "{err}"
        );
    }
    // A destination that is no URL is refused before anything is sent.
    let out = imdsd(
        &live,
        &[
            "login",
            "dev",
            "--print",
            "--destination",
            "file:///etc/passwd",
        ],
        &[("IMDSD_FEDERATION_ENDPOINT", &federation.url)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an http(s) URL"),
        "{}",
        stderr(&out)
    );
    assert_eq!(federation.bodies.lock().unwrap().len(), 1);
}
