//! The AWS SDK for Rust (`aws-config`) as an independent IMDS client: it is
//! IMDSv2-only (no fallback), caches its token, and uses the role name
//! exactly as served.

use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_credential_types::provider::ProvideCredentials;

use crate::util::TestDaemon;

fn imds_client(d: &TestDaemon) -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .endpoint(format!("http://{}", d.addr))
        .expect("valid endpoint")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_imds_provider_gets_the_served_credentials_and_region() {
    let d = TestDaemon::start().await;
    let served = d.ready().await;
    let provider = ImdsCredentialsProvider::builder()
        .imds_client(imds_client(&d))
        .build();
    let creds = provider
        .provide_credentials()
        .await
        .expect("credentials from imdsd");
    assert_eq!(
        creds.access_key_id(),
        served["AccessKeyId"].as_str().unwrap()
    );
    assert_eq!(
        creds.secret_access_key(),
        served["SecretAccessKey"].as_str().unwrap()
    );
    assert_eq!(creds.session_token(), served["Token"].as_str());
    let expiry = creds.expiry().expect("an expiry");
    let served_expiry =
        chrono::DateTime::parse_from_rfc3339(served["Expiration"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        chrono::DateTime::<chrono::Utc>::from(expiry).timestamp(),
        served_expiry.timestamp()
    );

    let region = ImdsRegionProvider::builder()
        .imds_client(imds_client(&d))
        .build()
        .region()
        .await;
    assert_eq!(region.map(|r| r.to_string()), Some("us-east-1".to_string()));
}
