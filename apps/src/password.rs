//! Passwords hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, one
//! lane, OWASP's minimum for argon2id), stored as PHC strings. The chat node runs these off
//! its loop; the salt comes from the node's entropy.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;
use weaprous_core::web::accounts::PasswordHasher;

/// [`PasswordHasher`] by argon2id.
#[derive(Debug, Default, Clone, Copy)]
pub struct Argon2Hasher;

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str, salt: &[u8; 16]) -> String {
        // 16 bytes always encode; an error here would be a bug in the crate.
        let Ok(salt) = SaltString::encode_b64(salt) else {
            return String::new();
        };
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    }

    fn verify(&self, password: &str, hash: &str) -> bool {
        // An empty or foreign hash (an unknown user) never matches.
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = Argon2Hasher.hash("correct horse", &[7; 16]);
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(Argon2Hasher.verify("correct horse", &h));
        assert!(!Argon2Hasher.verify("correct horsf", &h));
        assert!(!Argon2Hasher.verify("correct horse", ""));
        assert_ne!(h, Argon2Hasher.hash("correct horse", &[8; 16]), "salted");
    }
}
