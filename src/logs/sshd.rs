//! OpenSSH `sshd` / `sshd-session` authentication lines, sans-IO. The wording is OpenSSH's
//! (`auth.c`, `auth2.c`, pam_unix):
//! - `Failed password for [invalid user ]root from 203.0.113.9 port 52344 ssh2`
//! - `Invalid user admin from 203.0.113.9 port 52344`
//! - `error: maximum authentication attempts exceeded for root from 203.0.113.9 port 52344 ssh2 [preauth]`
//! - `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root`
//! - `Accepted publickey for alice from 192.0.2.4 port 50000 ssh2: ED25519 SHA256:…`

use crate::model::{AuthEvent, AuthOutcome};
use std::net::IpAddr;

/// Parses an sshd authentication line; `None` for every other sshd message.
pub fn parse(message: &str) -> Option<AuthEvent> {
    let m = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = m.strip_prefix("Failed ") {
        return for_from(rest, AuthOutcome::Failed);
    }
    if let Some(rest) = m.strip_prefix("Accepted ") {
        return for_from(rest, AuthOutcome::Accepted);
    }
    if let Some(rest) = m.strip_prefix("Invalid user ") {
        let (user, tail) = rest.split_once(" from ")?;
        let (src, src_port) = addr_port(tail);
        return Some(event(
            AuthOutcome::InvalidUser,
            None,
            Some(user),
            true,
            src,
            src_port,
        ));
    }
    if let Some(rest) = m.strip_prefix("maximum authentication attempts exceeded for ") {
        let (invalid, rest) = strip_invalid(rest);
        let (user, tail) = rest.split_once(" from ")?;
        let (src, src_port) = addr_port(tail);
        return Some(event(
            AuthOutcome::TooManyAttempts,
            None,
            Some(user),
            invalid,
            src,
            src_port,
        ));
    }
    if m.contains("authentication failure;") {
        let value = |key: &str| {
            m.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .filter(|v| !v.is_empty())
        };
        let src = value("rhost=").and_then(|h| h.parse().ok());
        return Some(event(
            AuthOutcome::PamFailure,
            None,
            value("user="),
            false,
            src,
            None,
        ));
    }
    None
}

/// `METHOD for [invalid user ]USER from IP port N …`.
fn for_from(rest: &str, outcome: AuthOutcome) -> Option<AuthEvent> {
    let (method, rest) = rest.split_once(" for ")?;
    let (invalid, rest) = strip_invalid(rest);
    // The user name may contain spaces; the last " from " separates it from the address.
    let (user, tail) = rest.rsplit_once(" from ")?;
    let (src, src_port) = addr_port(tail);
    Some(event(outcome, Some(method), Some(user), invalid, src, src_port))
}

fn strip_invalid(s: &str) -> (bool, &str) {
    match s.strip_prefix("invalid user ") {
        Some(r) => (true, r),
        None => (false, s),
    }
}

/// `IP port N …` → (IP, N).
fn addr_port(s: &str) -> (Option<IpAddr>, Option<u16>) {
    let mut w = s.split_ascii_whitespace();
    let ip = w.next().and_then(|a| a.parse().ok());
    let port = match (w.next(), w.next()) {
        (Some("port"), Some(p)) => p.trim_end_matches(':').parse().ok(),
        _ => None,
    };
    (ip, port)
}

fn event(
    outcome: AuthOutcome,
    method: Option<&str>,
    user: Option<&str>,
    invalid_user: bool,
    src: Option<IpAddr>,
    src_port: Option<u16>,
) -> AuthEvent {
    AuthEvent {
        vendor_format: "sshd".to_owned(),
        outcome,
        method: method.map(str::to_owned),
        user: user.map(str::to_owned),
        invalid_user,
        src,
        src_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_failure_lines() {
        let ev = parse("Failed password for invalid user admin from 203.0.113.9 port 52344 ssh2").unwrap();
        assert_eq!((ev.outcome, ev.invalid_user), (AuthOutcome::Failed, true));
        assert_eq!((ev.user.as_deref(), ev.src_port), (Some("admin"), Some(52344)));
        assert_eq!(ev.src.unwrap().to_string(), "203.0.113.9");
        let ev = parse("Invalid user oracle from 2001:db8::7 port 4000").unwrap();
        assert_eq!(
            (ev.outcome, ev.src.unwrap().to_string()),
            (AuthOutcome::InvalidUser, "2001:db8::7".to_owned())
        );
        let ev = parse("error: maximum authentication attempts exceeded for root from 198.51.100.1 port 22 ssh2 [preauth]").unwrap();
        assert_eq!(ev.outcome, AuthOutcome::TooManyAttempts);
        let ev = parse("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.1  user=root").unwrap();
        assert_eq!(
            (ev.outcome, ev.user.as_deref()),
            (AuthOutcome::PamFailure, Some("root"))
        );
        let ev =
            parse("Accepted publickey for alice from 192.0.2.4 port 50000 ssh2: ED25519 SHA256:x").unwrap();
        assert_eq!(
            (ev.outcome, ev.method.as_deref()),
            (AuthOutcome::Accepted, Some("publickey"))
        );
        assert!(parse("Server listening on 0.0.0.0 port 22.").is_none());
    }
}
