//! IMDSv2 token minting, verification and the TTL header.
//!
//! Input: 8 bytes of time, 2 of TTL, 1 picking a byte to flip, then bytes
//! presented as a token (and as a TTL header).
//!
//! Invariants: any bytes verify as valid only if they are exactly the
//! token the key mints for that expiry (no second encoding, no other key)
//! and that expiry is still ahead; a minted token is valid until its
//! expiry and expired from then on; a token with one byte changed, or
//! minted by another key, is never valid; a TTL is accepted only as 1 to
//! 5 digits (surrounding spaces allowed) worth 1..=21600.
#![no_main]

use imdsd::fuzzing::{self, ImdsTokenKey, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 11 {
        return;
    }
    let (head, presented) = data.split_at(11);
    let unix = i64::from_le_bytes(head[..8].try_into().unwrap()) % 20_000_000_000;
    let now = fuzzing::time(unix);
    let ttl =
        u32::from(u16::from_le_bytes([head[8], head[9]])) % fuzzing::MAX_TTL_SECS + 1;
    let flip = usize::from(head[10]);
    let key = ImdsTokenKey::new(&[0x5a; 32]);
    let other = ImdsTokenKey::new(&[0xa5; 32]);

    // Arbitrary bytes.
    match key.verify(presented, now) {
        Verdict::Valid { expires_at } => {
            assert!(expires_at > now.timestamp());
            let canonical = key.mint(fuzzing::time(expires_at - 1), 1);
            assert_eq!(
                presented,
                canonical.as_bytes(),
                "a second encoding verified"
            );
            assert_eq!(other.verify(presented, now), Verdict::Invalid);
        }
        Verdict::Expired => assert_eq!(presented.len(), TOKEN_LEN),
        Verdict::Invalid => {}
    }

    // A token the key minted.
    let token = key.mint(now, ttl);
    let expires_at = now.timestamp() + i64::from(ttl);
    assert_eq!(
        key.verify(token.as_bytes(), now),
        Verdict::Valid { expires_at }
    );
    let last = fuzzing::time(expires_at - 1);
    assert_eq!(
        key.verify(token.as_bytes(), last),
        Verdict::Valid { expires_at }
    );
    assert_eq!(
        key.verify(token.as_bytes(), fuzzing::time(expires_at)),
        Verdict::Expired
    );
    assert_eq!(other.verify(token.as_bytes(), now), Verdict::Invalid);
    let mut changed = token.clone().into_bytes();
    let i = flip % changed.len();
    changed[i] = presented.first().copied().unwrap_or(b'A');
    if changed != token.as_bytes() {
        assert!(
            !matches!(key.verify(&changed, now), Verdict::Valid { .. }),
            "a token with byte {i} changed verified"
        );
    }

    // The TTL header.
    if let Ok(ttl) = fuzzing::parse_ttl(Some(presented)) {
        assert!((1..=fuzzing::MAX_TTL_SECS).contains(&ttl));
        let text = std::str::from_utf8(presented).unwrap().trim();
        assert!(text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(text.parse::<u32>().unwrap(), ttl);
    }
});

/// Length of every token the key mints.
const TOKEN_LEN: usize = 55;
