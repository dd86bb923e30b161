//! Unit tests of key encodings and value framing.

use super::error::StoreError;
use super::table::{decode_value, encode_value, Key, TimeKey};
use crate::model::{AuditEntry, Timestamp, User};

#[test]
fn key_encodings_sort_like_the_keys() {
    let times = [
        TimeKey {
            at: Timestamp(0),
            seq: 5,
        },
        TimeKey {
            at: Timestamp(1),
            seq: 0,
        },
        TimeKey {
            at: Timestamp(1),
            seq: 1,
        },
        TimeKey {
            at: Timestamp(255),
            seq: u32::MAX,
        },
        TimeKey {
            at: Timestamp(256),
            seq: 0,
        },
        TimeKey {
            at: Timestamp(u64::MAX),
            seq: 0,
        },
    ];
    for pair in times.windows(2) {
        assert!(pair[0] < pair[1]);
        assert!(pair[0].encode() < pair[1].encode(), "{pair:?}");
    }
    let numbers = [0u64, 1, 255, 256, 65_536, u64::MAX];
    for pair in numbers.windows(2) {
        assert!(pair[0].encode() < pair[1].encode(), "{pair:?}");
    }
    for k in times {
        assert_eq!(TimeKey::decode(&k.encode()).unwrap(), k);
    }
    for n in numbers {
        assert_eq!(u64::decode(&n.encode()).unwrap(), n);
    }
    assert_eq!(String::decode("héllo".as_bytes()).unwrap(), "héllo");
    assert_eq!(<[u8; 32]>::decode(&[7u8; 32]).unwrap(), [7u8; 32]);
}

#[test]
fn malformed_keys_are_errors() {
    assert!(matches!(u64::decode(&[1, 2, 3]), Err(StoreError::Corrupt { .. })));
    assert!(matches!(
        TimeKey::decode(&[0; 8]),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        <[u8; 32]>::decode(&[0; 31]),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        String::decode(&[0xff, 0xfe]),
        Err(StoreError::Corrupt { .. })
    ));
    let named = u64::decode(&[1]).unwrap_err().in_table("audit");
    assert!(named.to_string().contains("`audit`"), "{named}");
}

#[test]
fn values_carry_their_record_version() {
    let user = User {
        username: "alice".into(),
        role: "admin".into(),
        password_hash: "$argon2id$x".into(),
        created_at: Timestamp(1_700_000_000_000),
        last_login: Some(Timestamp(1_700_000_001_000)),
    };
    let bytes = encode_value("users", &user).unwrap();
    assert_eq!(bytes[0], 2);
    assert_eq!(decode_value::<User>("users", &bytes).unwrap(), user);
}

#[test]
fn foreign_version_byte_and_damage_are_errors_naming_the_table() {
    let entry = AuditEntry {
        at: Timestamp(5),
        actor: "a".into(),
        action: "b".into(),
        detail: "c".into(),
        remote_addr: "d".into(),
    };
    let mut bytes = encode_value("audit", &entry).unwrap();
    bytes[0] = 9;
    let err = decode_value::<AuditEntry>("audit", &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionMismatch {
                table: "audit",
                found: 9,
                expected: 1
            }
        ),
        "{err:?}"
    );

    bytes[0] = 1;
    bytes.push(0);
    let err = decode_value::<AuditEntry>("audit", &bytes).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { table: "audit", .. }),
        "{err:?}"
    );

    let err = decode_value::<AuditEntry>("audit", &bytes[..3]).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { table: "audit", .. }),
        "{err:?}"
    );

    let err = decode_value::<AuditEntry>("audit", &[]).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { table: "audit", .. }),
        "{err:?}"
    );
}
