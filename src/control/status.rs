//! The status report: what each role and listener is doing. Built from a
//! view of the daemon and `now` (pure), printed as a table or JSON. Shows
//! access key ids, never secrets.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::credentials::documents::EXPIRATION_FORMAT;
use crate::refresh::store::Snapshot;
use crate::view::View;

/// The whole report, as `imdsd status` prints it and `--json` sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) version: String,
    pub(crate) pid: u32,
    pub(crate) config: String,
    pub(crate) roles: Vec<RoleStatus>,
    pub(crate) listeners: Vec<ListenerStatus>,
    /// The last reload that failed, while the previous config is served.
    #[serde(default)]
    pub(crate) reload_error: Option<ReloadError>,
    /// What would make SDKs use other credentials than the daemon's
    /// (`profile::shadow`), one line each; added by the client, which
    /// sees the environment its SDKs run in.
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
}

/// A reload that failed: why, and since when (the first failure after the
/// last good config) the previous config is served.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ReloadError {
    pub(crate) message: String,
    pub(crate) since: String,
}

impl ReloadError {
    /// The error of a reload at `now`, after `earlier` (still failing).
    pub(crate) fn after(
        earlier: Option<&ReloadError>,
        message: String,
        now: DateTime<Utc>,
    ) -> ReloadError {
        ReloadError {
            message,
            since: earlier.map_or_else(|| stamp(now), |e| e.since.clone()),
        }
    }
}

/// One role: what it serves and what it is doing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RoleStatus {
    pub(crate) name: String,
    /// An AWS profile served on demand (started on first use, parked
    /// when idle), not a role of the config file.
    #[serde(default)]
    pub(crate) on_demand: bool,
    /// `ready`, `refreshing`, `failing`, `expired`, `waiting`, `pending`,
    /// or `parked` (an on-demand role not running).
    pub(crate) state: String,
    pub(crate) access_key_id: Option<String>,
    pub(crate) expiration: Option<String>,
    pub(crate) expires_in_secs: Option<i64>,
    pub(crate) next_refresh_in_secs: Option<i64>,
    pub(crate) waiting_for: Option<String>,
    pub(crate) last_error: Option<ErrorStatus>,
}

/// A role's last failure: the STS (or source) code, its message, when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ErrorStatus {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) at: String,
}

/// One listener and the requests it answered, by status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ListenerStatus {
    pub(crate) address: String,
    /// `imds` or `container`.
    pub(crate) protocol: String,
    pub(crate) roles: Vec<String>,
    pub(crate) v1: bool,
    pub(crate) requests: u64,
    pub(crate) by_status: BTreeMap<String, u64>,
    pub(crate) v1_requests: u64,
    pub(crate) v2_requests: u64,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format(EXPIRATION_FORMAT).to_string()
}

/// The report for `view` at `now`, by the daemon with process id `pid`.
pub(crate) fn build(view: &View, config: &str, pid: u32, now: DateTime<Utc>) -> Status {
    Status {
        reload_error: None,
        warnings: Vec::new(),
        version: env!("CARGO_PKG_VERSION").into(),
        pid,
        config: config.into(),
        roles: roles(view, now),
        listeners: view
            .listeners
            .iter()
            .map(|l| {
                let by_status: BTreeMap<String, u64> = l
                    .stats
                    .by_status()
                    .into_iter()
                    .map(|(s, n)| (s.to_string(), n))
                    .collect();
                let (v1_requests, v2_requests) = l.stats.versions();
                ListenerStatus {
                    address: l.addr.to_string(),
                    protocol: l.protocol.into(),
                    roles: l.roles.iter().map(|s| s.name().to_string()).collect(),
                    v1: l.allow_v1,
                    requests: by_status.values().sum(),
                    by_status,
                    v1_requests,
                    v2_requests,
                }
            })
            .collect(),
    }
}

/// Every running role, and every parked on-demand one, by name.
fn roles(view: &View, now: DateTime<Utc>) -> Vec<RoleStatus> {
    let running = view.roles.load();
    let mut roles: Vec<RoleStatus> = running
        .values()
        .map(|slot| {
            let mut status =
                role_status(slot.name(), &slot.load(), slot.next_action(), now);
            status.on_demand = view.on_demand.contains(slot.name());
            status
        })
        .collect();
    let parked = view.on_demand.iter().filter(|n| !running.contains_key(*n));
    roles.extend(parked.map(|name| RoleStatus {
        name: name.clone(),
        on_demand: true,
        state: "parked".into(),
        access_key_id: None,
        expiration: None,
        expires_in_secs: None,
        next_refresh_in_secs: None,
        waiting_for: None,
        last_error: None,
    }));
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    roles
}

fn role_status(
    name: &str,
    snap: &Snapshot,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> RoleStatus {
    let usable = snap.usable(now).is_some();
    let state = if snap.waiting_for.is_some() {
        "waiting"
    } else if snap.in_flight {
        "refreshing"
    } else if snap.failure.is_some() {
        "failing"
    } else if usable {
        "ready"
    } else if snap.served.is_some() {
        "expired"
    } else {
        "pending"
    };
    let served = snap.served.as_ref();
    RoleStatus {
        name: name.into(),
        on_demand: false,
        state: state.into(),
        access_key_id: served.map(|s| s.access_key_id.clone()),
        expiration: served.map(|s| stamp(s.expiration)),
        expires_in_secs: served.map(|s| (s.expiration - now).num_seconds()),
        next_refresh_in_secs: next
            .filter(|_| !snap.in_flight)
            .map(|t| (t - now).num_seconds().max(0)),
        waiting_for: snap.waiting_for.clone(),
        last_error: snap.failure.as_ref().map(|f| ErrorStatus {
            code: f.code.clone(),
            message: f.message.clone(),
            at: stamp(f.at),
        }),
    }
}

/// `3h12m`, `45s`, `-2m` (already past): as every message prints a
/// duration (`clock::human`).
pub(crate) fn human_secs(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    format!("{sign}{}", crate::clock::human(d))
}

/// The human-readable table.
pub(crate) fn render_text(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "imdsd {} (pid {}), config {}",
        status.version, status.pid, status.config
    );
    if let Some(e) = &status.reload_error {
        let _ = writeln!(
            out,
            "\nRELOAD FAILED since {}, serving the previous config:",
            e.since
        );
        for line in e.message.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !status.warnings.is_empty() {
        out.push_str("\nWARNINGS\n");
        for w in &status.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out.push('\n');
    table(&mut out, &ROLE_COLUMNS, status.roles.iter().map(role_row));
    if status.roles.iter().any(|r| r.on_demand) {
        out.push_str(
            "* an AWS profile served on demand: started on first use, parked when idle\n",
        );
    }
    out.push('\n');
    table(
        &mut out,
        &LISTENER_COLUMNS,
        status.listeners.iter().map(listener_row),
    );
    out
}

/// One column of a table: its heading, the space before it, and its width
/// (the last column is not padded).
struct Column {
    heading: &'static str,
    gap: &'static str,
    width: usize,
    right: bool,
}

const fn column(heading: &'static str, width: usize) -> Column {
    Column {
        heading,
        gap: " ",
        width,
        right: false,
    }
}

const ROLE_COLUMNS: [Column; 6] = [
    column("ROLE", 16),
    column("STATE", 11),
    column("ACCESS KEY", 22),
    column("EXPIRES IN", 10),
    column("NEXT REFRESH", 13),
    column("LAST ERROR", 0),
];

/// Counts are right-aligned, and set off from the breakdown after them.
const LISTENER_COLUMNS: [Column; 6] = [
    column("LISTENER", 24),
    column("PROTOCOL", 9),
    column("ROLES", 16),
    column("V1", 4),
    Column {
        right: true,
        ..column("REQUESTS", 9)
    },
    Column {
        gap: "  ",
        ..column("BY STATUS", 0)
    },
];

/// The headings, then a line per row, every cell in its column.
fn table<const N: usize>(
    out: &mut String,
    columns: &[Column; N],
    rows: impl Iterator<Item = [String; N]>,
) {
    let headings = columns.each_ref().map(|c| c.heading.to_string());
    for row in std::iter::once(headings).chain(rows) {
        for (i, (c, cell)) in columns.iter().zip(&row).enumerate() {
            if i > 0 {
                out.push_str(c.gap);
            }
            let _ = if c.right {
                write!(out, "{cell:>width$}", width = c.width)
            } else {
                write!(out, "{cell:<width$}", width = c.width)
            };
        }
        out.push('\n');
    }
}

fn role_row(r: &RoleStatus) -> [String; 6] {
    let opt = |v: Option<i64>| v.map(human_secs).unwrap_or_else(|| "-".into());
    let error = match (&r.waiting_for, &r.last_error) {
        (Some(w), _) => w.clone(),
        (None, Some(e)) => format!("{}: {}", e.code, e.message),
        (None, None) => "-".into(),
    };
    let name = if r.on_demand {
        format!("{}*", r.name)
    } else {
        r.name.clone()
    };
    [
        name,
        r.state.clone(),
        r.access_key_id.clone().unwrap_or_else(|| "-".into()),
        opt(r.expires_in_secs),
        opt(r.next_refresh_in_secs),
        error,
    ]
}

fn listener_row(l: &ListenerStatus) -> [String; 6] {
    let v1 = match (l.protocol.as_str(), l.v1) {
        ("imds", true) => "on",
        ("imds", false) => "off",
        _ => "-",
    };
    let by: Vec<String> = l
        .by_status
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    [
        l.address.clone(),
        l.protocol.clone(),
        l.roles.join(","),
        v1.into(),
        l.requests.to_string(),
        if by.is_empty() {
            "-".into()
        } else {
            by.join(", ")
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::store::{Failure, Served};
    use std::sync::Arc;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn served(expiration: DateTime<Utc>) -> Arc<Served> {
        Arc::new(Served {
            credentials: crate::credentials::Credentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: crate::secret::Secret::new("s"),
                session_token: None,
                expiration: None,
            },
            access_key_id: "ASIAEXAMPLE".into(),
            expiration,
            last_updated: now(),
            assumed_role_arn: None,
            imds_body: bytes::Bytes::from_static(b"SECRET BODY"),
            container_body: bytes::Bytes::from_static(b"SECRET BODY"),
        })
    }

    #[test]
    fn role_states() {
        let ready = Snapshot {
            served: Some(served(now() + chrono::TimeDelta::hours(1))),
            ..Default::default()
        };
        let s = role_status(
            "dev",
            &ready,
            Some(now() + chrono::TimeDelta::minutes(20)),
            now(),
        );
        assert_eq!(s.state, "ready");
        assert_eq!(s.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(s.expires_in_secs, Some(3600));
        assert_eq!(s.expiration.as_deref(), Some("2027-01-15T09:00:00Z"));
        assert_eq!(s.next_refresh_in_secs, Some(1200));
        let failing = Snapshot {
            failure: Some(Failure {
                code: "AccessDenied".into(),
                message: "no".into(),
                at: now(),
            }),
            ..Default::default()
        };
        assert_eq!(role_status("dev", &failing, None, now()).state, "failing");
        let expired = Snapshot {
            served: Some(served(now())),
            ..Default::default()
        };
        assert_eq!(role_status("dev", &expired, None, now()).state, "expired");
        assert_eq!(
            role_status("dev", &Snapshot::default(), None, now()).state,
            "pending"
        );
    }

    #[test]
    fn a_failed_reload_and_warnings_show_above_the_tables() {
        let mut status = report();
        let first =
            ReloadError::after(None, "x.toml:3:1: error: bad\nmore".into(), now());
        let later = now() + chrono::TimeDelta::minutes(5);
        status.reload_error =
            Some(ReloadError::after(Some(&first), "still bad".into(), later));
        status.warnings = vec!["HTTP_PROXY is set".into()];
        let text = render_text(&status);
        let expected = "\
imdsd 1.2.3 (pid 42), config /etc/imdsd/imdsd.toml

RELOAD FAILED since 2027-01-15T08:00:00Z, serving the previous config:
  still bad

WARNINGS
  HTTP_PROXY is set

ROLE ";
        assert!(text.starts_with(expected), "{text}");
        assert_eq!(first.since, "2027-01-15T08:00:00Z");
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["reload_error"]["message"], "still bad");
        assert_eq!(json["reload_error"]["since"], "2027-01-15T08:00:00Z");
        assert_eq!(json["warnings"][0], "HTTP_PROXY is set");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(61), "1m1s");
        assert_eq!(human_secs(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(human_secs(59 * 60 + 46), "59m46s");
        assert_eq!(human_secs(-120), "-2m");
        assert_eq!(human_secs(0), "0s");
    }

    fn report() -> Status {
        Status {
            version: "1.2.3".into(),
            pid: 42,
            config: "/etc/imdsd/imdsd.toml".into(),
            roles: vec![RoleStatus {
                name: "dev".into(),
                on_demand: false,
                state: "failing".into(),
                access_key_id: Some("ASIAEXAMPLE".into()),
                expiration: None,
                expires_in_secs: Some(3720),
                next_refresh_in_secs: None,
                waiting_for: None,
                last_error: Some(ErrorStatus {
                    code: "AccessDenied".into(),
                    message: "not allowed".into(),
                    at: "2027-01-15T09:00:00Z".into(),
                }),
            }],
            listeners: vec![ListenerStatus {
                address: "127.0.0.1:16925".into(),
                protocol: "imds".into(),
                roles: vec!["dev".into()],
                v1: false,
                requests: 7,
                by_status: BTreeMap::from([("200".into(), 5), ("401".into(), 2)]),
                v1_requests: 0,
                v2_requests: 7,
            }],
            reload_error: None,
            warnings: vec![],
        }
    }

    #[test]
    fn the_table_has_a_row_per_role_and_listener() {
        let status = report();
        let text = render_text(&status);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "imdsd",
                "1.2.3",
                "(pid",
                "42),",
                "config",
                "/etc/imdsd/imdsd.toml"
            ]
        );
        assert_eq!(
            rows[3],
            [
                "dev",
                "failing",
                "ASIAEXAMPLE",
                "1h2m",
                "-",
                "AccessDenied:",
                "not",
                "allowed"
            ]
        );
        assert_eq!(
            rows[6],
            [
                "127.0.0.1:16925",
                "imds",
                "dev",
                "off",
                "7",
                "200:",
                "5,",
                "401:",
                "2"
            ]
        );
        assert!(
            rows[2].starts_with(&["ROLE", "STATE"]) && rows[5].starts_with(&["LISTENER"])
        );
    }

    /// Every cell in its column, padded as the headings are: a role
    /// waiting for a code, a listener with no requests yet.
    #[test]
    fn the_table_keeps_its_columns_aligned() {
        let mut status = report();
        status.roles.push(RoleStatus {
            name: "ops".into(),
            on_demand: false,
            state: "waiting".into(),
            access_key_id: None,
            expiration: None,
            expires_in_secs: None,
            next_refresh_in_secs: Some(45),
            waiting_for: Some("an MFA code (imdsd mfa ops CODE)".into()),
            last_error: None,
        });
        status.listeners.push(ListenerStatus {
            address: "127.0.0.1:16926".into(),
            protocol: "container".into(),
            roles: vec!["dev".into(), "ops".into()],
            v1: false,
            requests: 0,
            by_status: BTreeMap::new(),
            v1_requests: 0,
            v2_requests: 0,
        });
        let expected = "\
imdsd 1.2.3 (pid 42), config /etc/imdsd/imdsd.toml

ROLE             STATE       ACCESS KEY             EXPIRES IN NEXT REFRESH  LAST ERROR
dev              failing     ASIAEXAMPLE            1h2m       -             AccessDenied: not allowed
ops              waiting     -                      -          45s           an MFA code (imdsd mfa ops CODE)

LISTENER                 PROTOCOL  ROLES            V1    REQUESTS  BY STATUS
127.0.0.1:16925          imds      dev              off          7  200: 5, 401: 2
127.0.0.1:16926          container dev,ops          -            0  -
";
        assert_eq!(render_text(&status), expected);
    }

    #[test]
    fn on_demand_roles_show_running_or_parked() {
        let directory = crate::refresh::directory::RoleDirectory::default();
        directory.insert(["dev", "p01"].map(crate::refresh::slot::RoleSlot::new));
        let view = View {
            roles: directory,
            listeners: vec![],
            region: "us-east-1".into(),
            on_demand: ["p01", "p02"].map(String::from).into(),
            profile_regions: Default::default(),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let status = build(&view, "c", 1, now);
        let states: Vec<(&str, bool, &str)> = status
            .roles
            .iter()
            .map(|r| (r.name.as_str(), r.on_demand, r.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("dev", false, "pending"),
                ("p01", true, "pending"),
                ("p02", true, "parked")
            ]
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["roles"][2]["on_demand"], true);
        assert_eq!(json["roles"][2]["state"], "parked");
        let text = render_text(&status);
        assert!(text.contains("p02*"), "{text}");
        assert!(text.contains("served on demand"), "{text}");
    }
}
