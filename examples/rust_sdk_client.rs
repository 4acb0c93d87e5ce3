//! The AWS SDK for Rust's default credential chain (`aws-config`) as an
//! independent peer in imdsd's tests: it finds credentials from whatever
//! the environment says (IMDS endpoint, container endpoint, or a
//! `credential_process` profile) and prints one JSON line with the access
//! key id and the expiry. Never prints a secret.
//!
//! Built by `cargo test --all-targets` (the README's test command); the
//! SDK matrix test (`tests/it/sdk_matrix.rs`) runs it.

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let Some(provider) = config.credentials_provider() else {
        eprintln!("no credentials provider");
        std::process::exit(1);
    };
    match provider.provide_credentials().await {
        Ok(creds) => {
            let expires = creds
                .expiry()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
            let line = serde_json::json!({
                "AccessKeyId": creds.access_key_id(),
                "Expires": expires,
            });
            println!("{line}");
        }
        Err(e) => {
            eprintln!("retrieve credentials: {}", error_chain(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
