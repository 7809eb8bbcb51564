//! Accounts: user names, password rules, and password hashes kept behind a trait.
//!
//! Hashing is slow on purpose (argon2 takes tens of milliseconds), so a node never hashes on
//! its loop: it hands a [`PasswordHasher`] and the password to off-loop work and gets the
//! result as an input. The hasher is a trait so that `core` names no hashing crate: the apps
//! give argon2 (`weaprous-apps`), tests and the simulator give [`StandInHasher`], which is fast
//! and **not** a password hash (it tests the protocol, not the hash).
//!
//! # Rules
//! * A user name is 1 to [`MAX_USER`] of `a-z`, `0-9`, `.`, `_` and `-`, compared lowercased.
//! * A password is [`MIN_PASSWORD`] to [`MAX_PASSWORD`] characters, any of them (NIST 800-63B:
//!   length, not composition). The first start's `admin` / `password` is created by the owner
//!   with a warning, outside these rules.
//! * At most [`MAX_ACCOUNTS`] accounts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_USER: usize = 32;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 256;
pub const MAX_ACCOUNTS: usize = 100_000;

/// Hashes and checks passwords; see the module docs.
pub trait PasswordHasher: Send + Sync + std::fmt::Debug {
    /// A self-describing hash of `password` with `salt` (the PHC string format).
    fn hash(&self, password: &str, salt: &[u8; 16]) -> String;
    /// Whether `password` matches `hash` (in time that does not depend on where they differ).
    fn verify(&self, password: &str, hash: &str) -> bool;
}

/// A fast stand-in for tests and the simulator. Not a password hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandInHasher;

impl StandInHasher {
    fn digest(password: &str, salt: &str) -> String {
        let mut data = salt.as_bytes().to_vec();
        data.extend_from_slice(password.as_bytes());
        format!("{:08x}", crate::node::record::crc32c(&data))
    }
}

impl PasswordHasher for StandInHasher {
    fn hash(&self, password: &str, salt: &[u8; 16]) -> String {
        let salt = super::hex(salt);
        format!("$standin${salt}${}", Self::digest(password, &salt))
    }
    fn verify(&self, password: &str, hash: &str) -> bool {
        let mut parts = hash.split('$');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(""), Some("standin"), Some(salt), Some(digest)) => {
                Self::digest(password, salt) == digest
            }
            _ => false,
        }
    }
}

/// Why an account request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountError {
    BadName,
    BadPassword,
    Taken,
    NoSuchUser,
    TooMany,
}

impl AccountError {
    pub fn status(&self) -> u16 {
        match self {
            AccountError::Taken => 409,
            AccountError::NoSuchUser => 404,
            AccountError::TooMany => 507,
            _ => 400,
        }
    }
    pub fn message(&self) -> String {
        match self {
            AccountError::BadName => {
                format!("a user name is 1 to {MAX_USER} of a-z, 0-9, '.', '_' and '-'")
            }
            AccountError::BadPassword => {
                format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
            }
            AccountError::Taken => "that user name is taken".into(),
            AccountError::NoSuchUser => "no such user".into(),
            AccountError::TooMany => "no more accounts can be made".into(),
        }
    }
}

/// A user name, lowercased, if valid.
pub fn user_name(raw: &str) -> Result<String, AccountError> {
    let name = raw.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= MAX_USER
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(AccountError::BadName)
    }
}

/// Whether a new password follows the rules.
pub fn password_ok(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(AccountError::BadPassword)
    }
}

/// What the durable log holds for accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountRecord {
    Created { user: String, hash: String },
    PasswordChanged { user: String, hash: String },
}

/// The accounts.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    hashes: BTreeMap<String, String>,
}

impl Accounts {
    pub fn new() -> Accounts {
        Accounts::default()
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Every account and its hash (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hashes.iter().map(|(u, h)| (u.as_str(), h.as_str()))
    }

    /// The stored hash of `user` (a name as [`user_name`] returns it).
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.hashes.get(user).map(String::as_str)
    }

    /// Whether `raw` may be registered now (before its password is hashed).
    pub fn may_create(&self, raw: &str, password: &str) -> Result<String, AccountError> {
        let user = user_name(raw)?;
        password_ok(password)?;
        if self.hashes.contains_key(&user) {
            return Err(AccountError::Taken);
        }
        if self.hashes.len() >= MAX_ACCOUNTS {
            return Err(AccountError::TooMany);
        }
        Ok(user)
    }

    /// Applies a durable record (after its sync, or replaying the log at start).
    pub fn apply(&mut self, record: &AccountRecord) -> Result<(), String> {
        match record {
            AccountRecord::Created { user, hash } => {
                if self.hashes.contains_key(user) {
                    return Err(format!("account {user} created twice"));
                }
                self.hashes.insert(user.clone(), hash.clone());
            }
            AccountRecord::PasswordChanged { user, hash } => match self.hashes.get_mut(user) {
                Some(h) => *h = hash.clone(),
                None => return Err(format!("password of unknown account {user}")),
            },
        }
        Ok(())
    }
}
