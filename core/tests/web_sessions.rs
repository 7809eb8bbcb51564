//! Sessions (expiry, limits, ending) and the guess limiter.

use weaprous_core::time::UnixTime;
use weaprous_core::web::limit::Limiter;
use weaprous_core::web::session::{new_token, Check, SessionPolicy, Sessions};

const DAY: u64 = 86_400;
const T0: u64 = 1_796_631_000;

fn at(secs: u64) -> UnixTime {
    UnixTime(T0 + secs)
}

fn user_of(c: Check) -> Option<String> {
    match c {
        Check::Valid { user, .. } => Some(user),
        Check::Invalid => None,
    }
}

#[test]
fn tokens_are_256_bits_of_hex() {
    let t = new_token([0xab; 32]);
    assert_eq!(t.len(), 64);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_ne!(new_token([1; 32]), new_token([2; 32]));
}

#[test]
fn a_session_lives_until_idle_or_absolute_expiry() {
    let mut s = Sessions::new(SessionPolicy::default());
    s.create("t1".into(), "alice", at(0));
    assert_eq!(user_of(s.check("t1", at(13 * DAY))), Some("alice".into()));
    // Used on day 13, so idle runs to day 27.
    assert_eq!(user_of(s.check("t1", at(26 * DAY))), Some("alice".into()));
    // Still in use, but 30 days after login it ends.
    assert_eq!(
        user_of(s.check("t1", at(30 * DAY))),
        None,
        "absolute expiry"
    );
    assert!(s.get("t1").is_none(), "an expired session is removed");
    s.create("t2".into(), "bob", at(0));
    assert_eq!(user_of(s.check("t2", at(14 * DAY))), None, "idle expiry");
    assert_eq!(user_of(s.check("nope", at(0))), None);
}

#[test]
fn logout_and_password_change_end_sessions() {
    let mut s = Sessions::new(SessionPolicy::default());
    s.create("a1".into(), "alice", at(0));
    s.create("a2".into(), "alice", at(1));
    s.create("a3".into(), "alice", at(2));
    s.create("b1".into(), "bob", at(3));
    assert!(s.end("a1"));
    assert!(!s.end("a1"));
    assert_eq!(s.end_user("alice", Some("a3")), vec!["a2".to_string()]);
    assert_eq!(
        user_of(s.check("a3", at(4))),
        Some("alice".into()),
        "the changing session stays"
    );
    assert_eq!(
        user_of(s.check("b1", at(4))),
        Some("bob".into()),
        "others' stay"
    );
    assert_eq!(user_of(s.check("a2", at(4))), None);
}

#[test]
fn limits_push_out_the_least_recently_used() {
    let policy = SessionPolicy {
        max_per_user: 2,
        max_total: 3,
        ..SessionPolicy::default()
    };
    let mut s = Sessions::new(policy);
    assert!(s.create("a1".into(), "alice", at(0)).is_empty());
    assert!(s.create("a2".into(), "alice", at(1)).is_empty());
    let _ = s.check("a1", at(2)); // a1 is now the more recent
    assert_eq!(
        s.create("a3".into(), "alice", at(3)),
        vec!["a2".to_string()]
    );
    assert!(s.create("b1".into(), "bob", at(4)).is_empty());
    assert_eq!(s.len(), 3);
    assert_eq!(
        s.create("c1".into(), "carol", at(5)),
        vec!["a1".to_string()],
        "the total limit"
    );
    assert_eq!(s.len(), 3);
}

#[test]
fn last_seen_is_persisted_coarsely_and_sweeps_remove_the_expired() {
    let mut s = Sessions::new(SessionPolicy::default());
    s.create("t".into(), "alice", at(0));
    assert_eq!(
        s.check("t", at(60)),
        Check::Valid {
            user: "alice".into(),
            persist: false
        }
    );
    assert_eq!(
        s.check("t", at(3_600)),
        Check::Valid {
            user: "alice".into(),
            persist: true
        }
    );
    assert_eq!(
        s.check("t", at(3_700)),
        Check::Valid {
            user: "alice".into(),
            persist: false
        }
    );
    s.create("u".into(), "bob", at(0));
    assert_eq!(
        s.sweep(at(14 * DAY)),
        1,
        "bob's is idle; alice's was used at 3700 s"
    );
    assert_eq!(s.sweep(at(14 * DAY + 3_700)), 1);
    assert!(s.is_empty());
}

#[test]
fn guesses_are_limited_then_refilled() {
    let mut l = Limiter::new(3, 20, 100);
    for _ in 0..3 {
        assert_eq!(l.check("10.0.0.1", at(0)), Ok(()));
        l.failed("10.0.0.1", at(0));
    }
    assert_eq!(l.check("10.0.0.1", at(0)), Err(20), "Retry-After");
    assert_eq!(l.check("10.0.0.1", at(15)), Err(5));
    assert_eq!(l.check("10.0.0.2", at(15)), Ok(()), "keys are separate");
    assert_eq!(l.check("10.0.0.1", at(20)), Ok(()), "one token back");
    l.failed("10.0.0.1", at(20));
    assert_eq!(l.check("10.0.0.1", at(21)), Err(19));
    l.succeeded("10.0.0.1");
    assert_eq!(
        l.check("10.0.0.1", at(21)),
        Ok(()),
        "a success clears the key"
    );
    // A clock that steps back refills nothing.
    for _ in 0..3 {
        l.failed("k", at(100));
    }
    assert!(l.check("k", at(50)).is_err());
}

#[test]
fn the_limiter_table_is_bounded() {
    let mut l = Limiter::new(1, 60, 2);
    l.failed("a", at(0));
    l.failed("b", at(1));
    l.failed("c", at(2));
    assert_eq!(l.keys(), 2);
    assert_eq!(l.check("a", at(3)), Ok(()), "the oldest key went");
    assert!(l.check("c", at(3)).is_err());
}
