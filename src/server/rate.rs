//! Requests per peer: a token bucket each, far above what any SDK needs
//! (an SDK makes two or three requests per credentials fetch). It is
//! consulted only under contention (the listener full, the peer holding
//! more than its share of it: `Pool::contended_by`), so a peer that takes
//! more than its share cannot also take the daemon's CPU from the others,
//! while on a listener with room nobody is refused (botocore does not
//! retry a 429 from IMDS). Over the limit, a request gets 429 (real IMDS
//! throttles too). The bucket arithmetic is pure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::pool::PeerKey;

/// How many requests a peer may make: `burst` at once, `per_second` after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateLimit {
    pub(crate) per_second: f64,
    pub(crate) burst: f64,
}

/// One peer's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            tokens: limit.burst,
            at: now,
        }
    }
}

/// Takes one request from `bucket` at `now`: the bucket after, and whether
/// the request may go on.
pub(crate) fn take(bucket: Bucket, limit: RateLimit, now: Instant) -> (Bucket, bool) {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    let tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
    if tokens >= 1.0 {
        (
            Bucket {
                tokens: tokens - 1.0,
                at: now,
            },
            true,
        )
    } else {
        (Bucket { tokens, at: now }, false)
    }
}

/// Buckets kept at most; past this, full ones (idle peers) are dropped.
const MAX_PEERS: usize = 4096;

/// Every peer's bucket.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<PeerKey, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `peer` may make a request at `now`.
    pub(crate) fn allow(&self, peer: PeerKey, now: Instant) -> bool {
        if !self.limit.per_second.is_finite() {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_PEERS {
            let refill =
                Duration::from_secs_f64(self.limit.burst / self.limit.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < refill);
        }
        let bucket = buckets
            .get(&peer)
            .copied()
            .unwrap_or_else(|| Bucket::full(self.limit, now));
        let (bucket, allowed) = take(bucket, self.limit, now);
        buckets.insert(peer, bucket);
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(LIMIT, t0);
        for _ in 0..3 {
            let (next, ok) = take(b, LIMIT, t0);
            assert!(ok);
            b = next;
        }
        let (next, ok) = take(b, LIMIT, t0);
        assert!(!ok, "the burst is spent");
        // A tenth of a second later, one more.
        let (next, ok) = take(next, LIMIT, t0 + Duration::from_millis(100));
        assert!(ok);
        let (_, ok) = take(next, LIMIT, t0 + Duration::from_millis(150));
        assert!(!ok);
    }

    #[test]
    fn an_idle_bucket_refills_only_to_the_burst() {
        let t0 = Instant::now();
        let empty = Bucket {
            tokens: 0.0,
            at: t0,
        };
        let (b, ok) = take(empty, LIMIT, t0 + Duration::from_secs(3600));
        assert!(ok);
        assert_eq!(b.tokens, LIMIT.burst - 1.0);
    }

    #[test]
    fn peers_have_their_own_buckets() {
        let limiter = RateLimiter::new(LIMIT);
        let now = Instant::now();
        let a = PeerKey::Uid(1);
        for _ in 0..3 {
            assert!(limiter.allow(a, now));
        }
        assert!(!limiter.allow(a, now));
        assert!(
            limiter.allow(PeerKey::Uid(2), now),
            "another peer is not throttled"
        );
    }

    #[test]
    fn with_too_many_peers_only_those_refilled_since_are_forgotten() {
        // Refills its burst in exactly half a second.
        let limit = RateLimit {
            per_second: 8.0,
            burst: 4.0,
        };
        let limiter = RateLimiter::new(limit);
        let t0 = Instant::now();
        for uid in 0..MAX_PEERS as u32 - 1 {
            assert!(limiter.allow(PeerKey::Uid(uid), t0));
        }
        let recent = PeerKey::Uid(u32::MAX);
        assert!(limiter.allow(recent, t0 + Duration::from_millis(200)));
        assert!(
            limiter.allow(PeerKey::Uid(u32::MAX - 1), t0 + Duration::from_millis(500))
        );
        let buckets = limiter.buckets.lock().unwrap();
        assert_eq!(buckets.len(), 2, "the peers full again are dropped");
        assert!(
            buckets.contains_key(&recent),
            "a peer still refilling is kept"
        );
    }

    #[test]
    fn under_the_peer_cap_nothing_is_forgotten() {
        let limiter = RateLimiter::new(LIMIT);
        let t0 = Instant::now();
        assert!(limiter.allow(PeerKey::Uid(1), t0));
        assert!(limiter.allow(PeerKey::Uid(2), t0 + Duration::from_secs(3600)));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 2);
    }
}
