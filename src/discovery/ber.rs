//! A small, checked reader for ASN.1 BER/DER (SNMP messages, X.509 certificates): one
//! tag-length-value at a time, never reading past what was received. Only what the
//! scanner needs: definite lengths, single-byte tags, OIDs.

/// One element: its tag byte and its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    /// The whole element including tag and length (for comparing encodings).
    pub raw: &'a [u8],
}

/// Walks a sequence of elements.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, or `None` at the end or on malformed input.
    pub fn next_tlv(&mut self) -> Option<Tlv<'a>> {
        let data = self.rest;
        let tag = *data.first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tags: not used by SNMP or X.509
        }
        let first = *data.get(1)? as usize;
        let (len, header) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            if n == 0 || n > 4 {
                return None; // indefinite or absurd length
            }
            let bytes = data.get(2..2 + n)?;
            (
                bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
                2 + n,
            )
        };
        let end = header.checked_add(len)?;
        let value = data.get(header..end)?;
        let raw = &data[..end];
        self.rest = &data[end..];
        Some(Tlv { tag, value, raw })
    }

    /// The next element if it has `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let t = self.next_tlv()?;
        (t.tag == tag).then_some(t)
    }
}

impl<'a> Tlv<'a> {
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }

    /// A non-negative INTEGER that fits in 64 bits.
    pub fn as_u64(&self) -> Option<u64> {
        if self.value.is_empty() || self.value.len() > 9 {
            return None;
        }
        Some(self.value.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }
}

/// Dotted text of an OBJECT IDENTIFIER's contents ("1.3.6.1.2.1.1.1.0").
pub fn oid_to_string(value: &[u8]) -> Option<String> {
    let (&first, rest) = value.split_first()?;
    let mut parts = vec![
        (first / 40).min(2) as u64,
        (first as u64) - 40 * (first / 40).min(2) as u64,
    ];
    let mut acc = 0u64;
    for &b in rest {
        acc = acc.checked_mul(128)? | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
    }
    Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// Encodes an OID given as numbers (for requests).
pub fn encode_oid(arcs: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    if arcs.len() >= 2 {
        out.push((arcs[0] * 40 + arcs[1]) as u8);
    }
    for &arc in arcs.iter().skip(2) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            chunk.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.extend(chunk.iter().rev());
    }
    out
}

/// A tag-length-value with a definite length.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_and_rejects_truncation() {
        let mut r = Reader::new(&[0x04, 0x02, b'h', b'i', 0x30, 0x81, 0x01, 0x05]);
        assert_eq!(r.next_tlv().unwrap().value, b"hi");
        let t = r.next_tlv().unwrap();
        assert_eq!((t.tag, t.value), (0x30, &[0x05][..]));
        assert!(r.is_empty());
        assert_eq!(Reader::new(&[0x04, 0x05, b'x']).next_tlv(), None);
        assert_eq!(Reader::new(&[0x04, 0x80]).next_tlv(), None);
        assert_eq!(Reader::new(&[0x04, 0x85, 0, 0, 0, 0, 1]).next_tlv(), None);
        assert_eq!(Reader::new(&[]).next_tlv(), None);
    }

    #[test]
    fn oids_round_trip() {
        // sysDescr.0 as nmap encodes it (06 08 2b 06 01 02 01 01 01 00).
        let nmap = [0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00];
        assert_eq!(oid_to_string(&nmap).unwrap(), "1.3.6.1.2.1.1.1.0");
        assert_eq!(encode_oid(&[1, 3, 6, 1, 2, 1, 1, 1, 0]), nmap);
        // 2.5.29.17 (subjectAltName) and a multi-byte arc (1.2.840.113549).
        assert_eq!(oid_to_string(&[0x55, 0x1d, 0x11]).unwrap(), "2.5.29.17");
        let rsa = encode_oid(&[1, 2, 840, 113549]);
        assert_eq!(rsa, [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]);
        assert_eq!(oid_to_string(&rsa).unwrap(), "1.2.840.113549");
    }
}
