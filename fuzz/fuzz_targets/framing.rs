//! Shared by the HTTP targets: the framing invariants of the connection
//! loop, from what `imdsd::fuzzing::stream` ran (the loop, and plain hyper
//! owning a connection and reading every body, on the same bytes).
//!
//! - Every request the loop handed to the endpoint is the request plain
//!   hyper framed at the same place: the bytes of a body (read or not)
//!   never become a request, and no request is answered twice.
//! - At most one final answer per framed request: the loop writes no more
//!   answers than plain hyper framed requests (or answered, counting its
//!   own 400 or 431 to bytes that are not a request).

use imdsd::fuzzing::stream::StreamOutcome;

pub fn assert_framed(o: &StreamOutcome) {
    assert!(
        o.served.len() <= o.framed.len(),
        "the loop served {} requests where hyper frames {}: {:?} vs {:?}",
        o.served.len(),
        o.framed.len(),
        o.served,
        o.framed
    );
    for (i, (served, framed)) in o.served.iter().zip(&o.framed).enumerate() {
        assert_eq!(served, framed, "request {i} is not the one framed there");
    }
    let most = o.framed.len().max(o.framed_answers);
    assert!(
        o.answers <= most,
        "{} answers to {} framed requests ({} answers by hyper alone)",
        o.answers,
        o.framed.len(),
        o.framed_answers
    );
}
