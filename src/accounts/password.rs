//! Password hashing (Argon2id, PHC strings) and the rules a new password must meet.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes with Argon2id and a random salt; returns the PHC string to store.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Only fails for parameters outside Argon2's limits, which the defaults are not.
        .unwrap_or_default()
}

/// True when `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Why a new password was refused; the message tells the user what to do.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("use at least {MIN_PASSWORD_LEN} characters"));
    }
    if password.len() > 1024 {
        return Err("use at most 1024 bytes".into());
    }
    if password.trim().is_empty() {
        return Err("a password cannot be only spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterz"));
        assert!(!verify_password("not a hash", "x"));
        assert_ne!(h, hash_password("correct horse battery"), "salts differ");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("          ").is_err());
        assert!(check_new_password("long enough!").is_ok());
    }
}
