//! Wall-clock time for every decision that depends on "now".
//!
//! Credential expiry, token expiry and refresh deadlines are wall-clock
//! instants: STS speaks in UTC timestamps, and a laptop that sleeps must see
//! time pass. Everything that needs the time takes a [`Clock`], so tests can
//! move time by hand ([`ManualClock`]) while production reads the system
//! clock. This is the one module allowed to call `Utc::now`. [`human`]
//! prints a duration the one way every message does (`59m46s`).

use std::sync::Arc;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// A duration as every message prints it: `59m46s`, `1h2m`, `45s`, `0s`;
/// under a second, in milliseconds (`393ms`); else to the second.
pub(crate) fn human(d: std::time::Duration) -> String {
    if d.as_secs() == 0 && d.subsec_millis() > 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let s = d.as_secs();
    let parts = [(s / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() { "0s".into() } else { text }
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Shared handle to a clock.
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The real system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        #[allow(clippy::disallowed_methods)] // the one allowed call site
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
        })
    }

    /// Starts at the current system time, truncated to whole seconds.
    pub fn starting_now() -> Arc<Self> {
        let now = SystemClock.now();
        let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Self::new(whole)
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_one_way() {
        let at = |secs| human(std::time::Duration::from_secs(secs));
        assert_eq!(at(59 * 60 + 46), "59m46s");
        assert_eq!(at(3600 + 120), "1h2m");
        assert_eq!(at(36 * 3600 + 1), "36h1s");
        assert_eq!(at(45), "45s");
        assert_eq!(at(0), "0s");
        assert_eq!(human(std::time::Duration::from_millis(393)), "393ms");
        assert_eq!(human(std::time::Duration::from_millis(1393)), "1s");
    }
}
