//! Prometheus metrics: what the refreshers and the listeners did.
//!
//! Counters are updated where things happen (a refresh, a request); the
//! per-role "seconds to expiry" gauge is computed at scrape time, since it
//! depends on the clock. On the request hot path a counter is found through
//! a small fixed table of cached handles, not a label-map lookup.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    role: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: String,
    path: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    listener: String,
    version: &'static str,
}

type HistogramFamily = Family<RoleLabels, Histogram, fn() -> Histogram>;

/// Every metric the daemon exports.
pub(crate) struct Metrics {
    registry: Registry,
    seconds_to_expiry: Family<RoleLabels, Gauge<f64, AtomicU64>>,
    refresh_attempts: Family<RoleLabels, Counter>,
    refresh_failures: Family<FailureLabels, Counter>,
    refresh_seconds: HistogramFamily,
    requests: Family<RequestLabels, Counter>,
    imds_versions: Family<VersionLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn refresh_histogram() -> Histogram {
    // 10 ms to ~20 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("imdsd");
        let seconds_to_expiry = Family::default();
        let refresh_attempts = Family::default();
        let refresh_failures = Family::default();
        let refresh_seconds: HistogramFamily =
            Family::new_with_constructor(refresh_histogram);
        let requests = Family::default();
        let imds_versions = Family::default();
        registry.register(
            "credentials_seconds_to_expiry",
            "Seconds until the role's current credentials expire (negative once expired)",
            seconds_to_expiry.clone(),
        );
        registry.register(
            "refresh_attempts",
            "STS refresh attempts",
            refresh_attempts.clone(),
        );
        registry.register(
            "refresh_failures",
            "Failed STS refreshes, by error code",
            refresh_failures.clone(),
        );
        registry.register(
            "refresh_duration_seconds",
            "Time an STS refresh took",
            refresh_seconds.clone(),
        );
        registry.register(
            "requests",
            "IMDS requests, by path and status",
            requests.clone(),
        );
        registry.register(
            "imds_requests_by_version",
            "Metadata requests with a session token (v2) or without (v1)",
            imds_versions.clone(),
        );
        Metrics {
            registry,
            seconds_to_expiry,
            refresh_attempts,
            refresh_failures,
            refresh_seconds,
            requests,
            imds_versions,
        }
    }
}

impl Metrics {
    pub(crate) fn refresh_attempted(&self, role: &str) {
        self.refresh_attempts
            .get_or_create(&RoleLabels { role: role.into() })
            .inc();
    }

    pub(crate) fn refresh_failed(&self, role: &str, code: &str) {
        let labels = FailureLabels {
            role: role.into(),
            code: code.into(),
        };
        self.refresh_failures.get_or_create(&labels).inc();
    }

    pub(crate) fn refresh_took(&self, role: &str, seconds: f64) {
        self.refresh_seconds
            .get_or_create(&RoleLabels { role: role.into() })
            .observe(seconds);
    }

    /// Counters for one listener.
    pub(crate) fn listener_stats(&self, listener: String) -> RequestStats {
        let version = |version| {
            self.imds_versions
                .get_or_create(&VersionLabels {
                    listener: listener.clone(),
                    version,
                })
                .clone()
        };
        RequestStats {
            v1: version("v1"),
            v2: version("v2"),
            family: self.requests.clone(),
            cache: Default::default(),
            listener,
        }
    }

    /// The text exposition, with expiry gauges computed for `now`.
    pub(crate) fn render<'a>(
        &self,
        expiries: impl IntoIterator<Item = (&'a str, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> String {
        self.seconds_to_expiry.clear();
        for (role, expiration) in expiries {
            if let Some(exp) = expiration {
                let secs = (exp - now).num_milliseconds() as f64 / 1000.0;
                self.seconds_to_expiry
                    .get_or_create(&RoleLabels { role: role.into() })
                    .set(secs);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What a request was for, as the `path` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Token,
    RoleName,
    Credentials,
    Metadata,
    NotFound,
    MethodNotAllowed,
    Refused,
    /// Over the client's request rate.
    Throttled,
}

impl RequestKind {
    const ALL: usize = 8;

    fn label(self) -> &'static str {
        match self {
            RequestKind::Token => "token",
            RequestKind::RoleName => "role_name",
            RequestKind::Credentials => "credentials",
            RequestKind::Metadata => "metadata",
            RequestKind::NotFound => "not_found",
            RequestKind::MethodNotAllowed => "method_not_allowed",
            RequestKind::Refused => "refused",
            RequestKind::Throttled => "throttled",
        }
    }
}

const STATUSES: [&str; 9] = [
    "200", "400", "401", "403", "404", "405", "429", "503", "other",
];

fn status_index(status: StatusCode) -> usize {
    match status.as_u16() {
        200 => 0,
        400 => 1,
        401 => 2,
        403 => 3,
        404 => 4,
        405 => 5,
        429 => 6,
        503 => 7,
        _ => 8,
    }
}

/// One listener's request counters.
pub(crate) struct RequestStats {
    listener: String,
    family: Family<RequestLabels, Counter>,
    cache: [[OnceLock<Counter>; STATUSES.len()]; RequestKind::ALL],
    v1: Counter,
    v2: Counter,
}

impl std::fmt::Debug for RequestStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStats")
            .field("listener", &self.listener)
            .finish()
    }
}

impl RequestStats {
    pub(crate) fn record(&self, kind: RequestKind, status: StatusCode) {
        let slot = &self.cache[kind as usize][status_index(status)];
        slot.get_or_init(|| {
            let labels = RequestLabels {
                listener: self.listener.clone(),
                path: kind.label(),
                status: STATUSES[status_index(status)],
            };
            self.family.get_or_create(&labels).clone()
        })
        .inc();
    }

    pub(crate) fn record_version(&self, with_token: bool) {
        if with_token {
            self.v2.inc()
        } else {
            self.v1.inc()
        };
    }

    /// Requests so far by status (`"200"`, ..., `"other"`), non-zero only.
    pub(crate) fn by_status(&self) -> Vec<(&'static str, u64)> {
        (0..STATUSES.len())
            .map(|i| {
                (
                    STATUSES[i],
                    self.cache
                        .iter()
                        .filter_map(|row| row[i].get())
                        .map(Counter::get)
                        .sum(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub(crate) fn versions(&self) -> (u64, u64) {
        (self.v1.get(), self.v2.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_refreshes_and_expiry() {
        let m = Metrics::default();
        let stats = m.listener_stats("127.0.0.1:16925".into());
        stats.record(RequestKind::Credentials, StatusCode::OK);
        stats.record(RequestKind::Credentials, StatusCode::OK);
        stats.record(RequestKind::Token, StatusCode::BAD_REQUEST);
        stats.record_version(true);
        m.refresh_attempted("dev");
        m.refresh_failed("dev", "Throttling");
        m.refresh_took("dev", 0.2);
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let text = m.render([("dev", Some(now + chrono::TimeDelta::seconds(1800)))], now);
        for line in [
            "imdsd_requests_total{listener=\"127.0.0.1:16925\",path=\"credentials\",status=\"200\"} 2",
            "imdsd_requests_total{listener=\"127.0.0.1:16925\",path=\"token\",status=\"400\"} 1",
            "imdsd_imds_requests_by_version_total{listener=\"127.0.0.1:16925\",version=\"v2\"} 1",
            "imdsd_refresh_attempts_total{role=\"dev\"} 1",
            "imdsd_refresh_failures_total{role=\"dev\",code=\"Throttling\"} 1",
            "imdsd_refresh_duration_seconds_count{role=\"dev\"} 1",
            "imdsd_credentials_seconds_to_expiry{role=\"dev\"} 1800.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert_eq!(stats.by_status(), vec![("200", 2), ("400", 1)]);
    }

    #[test]
    fn removed_roles_drop_out_of_the_expiry_gauge() {
        let m = Metrics::default();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(m.render([("old", Some(now))], now).contains("role=\"old\""));
        assert!(!m.render([("new", Some(now))], now).contains("role=\"old\""));
    }
}
