//! Accounts: names, password rules, the hasher contract, records.

use weaprous_core::web::accounts::{
    password_ok, user_name, AccountError, AccountRecord, Accounts, PasswordHasher, StandInHasher,
    MAX_PASSWORD, MIN_PASSWORD,
};

#[test]
fn user_names_and_password_rules() {
    assert_eq!(user_name("Alice"), Ok("alice".into()));
    assert_eq!(user_name("a.b_c-9"), Ok("a.b_c-9".into()));
    for bad in ["", "a b", "al:ice", "ålice", &"x".repeat(33)] {
        assert_eq!(user_name(bad), Err(AccountError::BadName), "{bad:?}");
    }
    assert_eq!(
        password_ok(&"é".repeat(MIN_PASSWORD)),
        Ok(()),
        "characters, not bytes"
    );
    assert_eq!(
        password_ok(&"x".repeat(MIN_PASSWORD - 1)),
        Err(AccountError::BadPassword)
    );
    assert_eq!(password_ok(&"x".repeat(MAX_PASSWORD)), Ok(()));
    assert_eq!(
        password_ok(&"x".repeat(MAX_PASSWORD + 1)),
        Err(AccountError::BadPassword)
    );
}

#[test]
fn the_stand_in_keeps_the_hasher_contract() {
    let h = StandInHasher;
    let a = h.hash("correct horse", &[1; 16]);
    let b = h.hash("correct horse", &[2; 16]);
    assert_ne!(a, b, "the salt changes the hash");
    assert!(h.verify("correct horse", &a));
    assert!(h.verify("correct horse", &b));
    assert!(!h.verify("correct hors", &a));
    assert!(!h.verify(
        "correct horse",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
    ));
    assert!(!h.verify("x", "garbage"));
}

#[test]
fn accounts_are_made_once_and_change_their_password() {
    let h = StandInHasher;
    let mut accts = Accounts::new();
    let user = accts.may_create("Alice", "long enough").unwrap();
    accts
        .apply(&AccountRecord::Created {
            user: user.clone(),
            hash: h.hash("long enough", &[0; 16]),
        })
        .unwrap();
    assert_eq!(
        accts.may_create("alice", "another one"),
        Err(AccountError::Taken)
    );
    assert_eq!(
        accts.may_create("bob", "short"),
        Err(AccountError::BadPassword)
    );
    assert!(h.verify("long enough", accts.hash_of("alice").unwrap()));
    accts
        .apply(&AccountRecord::PasswordChanged {
            user: "alice".into(),
            hash: h.hash("new secret!", &[3; 16]),
        })
        .unwrap();
    assert!(!h.verify("long enough", accts.hash_of("alice").unwrap()));
    assert!(h.verify("new secret!", accts.hash_of("alice").unwrap()));
    assert!(accts
        .apply(&AccountRecord::PasswordChanged {
            user: "bob".into(),
            hash: "x".into()
        })
        .is_err());
    assert!(accts
        .apply(&AccountRecord::Created {
            user: "alice".into(),
            hash: "x".into()
        })
        .is_err());
    assert_eq!(AccountError::Taken.status(), 409);
    let text = serde_json::to_string(&AccountRecord::Created {
        user: "a".into(),
        hash: "h".into(),
    })
    .unwrap();
    assert_eq!(text, r#"{"kind":"created","user":"a","hash":"h"}"#);
}
