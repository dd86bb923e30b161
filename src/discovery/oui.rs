//! MAC vendor lookup from the IEEE registries (MA-L, MA-M, MA-S and IAB), embedded as
//! `data/oui.tsv.gz` (rebuilt by `data/oui-update.py` from Debian's ieee-data) and
//! decompressed once on first use. Longest prefix wins. Locally administered addresses
//! (randomised phone MACs, VMs' made-up ones) have no vendor by definition.

use std::sync::OnceLock;

static TABLE_GZ: &[u8] = include_bytes!("../../data/oui.tsv.gz");

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-…` or `aabb.ccdd.eeff`, any case.
    pub fn parse(s: &str) -> Option<Mac> {
        let hex: String = s.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut b = [0u8; 6];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(Mac(b))
    }

    /// The locally administered bit: set by randomised (private) addresses and by software
    /// that invents MACs, so the first three bytes name no vendor.
    pub fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }

    pub fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    fn as_u64(self) -> u64 {
        self.0.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Assignments of one prefix length, sorted by prefix.
struct Block {
    bits: u32,
    prefixes: Vec<u64>,
    names: Vec<u32>,
}

struct Table {
    /// Longest prefix first, so the first hit is the most specific assignment.
    blocks: Vec<Block>,
    names: Vec<Box<str>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The table is our own build input; a broken one yields an empty table, not a crash.
        parse_table(&crate::embedded::inflate_text(TABLE_GZ).unwrap_or_default())
    })
}

fn parse_table(text: &str) -> Table {
    let mut blocks: Vec<Block> = [36, 28, 24]
        .into_iter()
        .map(|bits| Block {
            bits,
            prefixes: Vec::new(),
            names: Vec::new(),
        })
        .collect();
    let mut names: Vec<Box<str>> = Vec::new();
    for line in text.lines() {
        let Some((hex, name)) = line.split_once('\t') else {
            continue;
        };
        let bits = hex.len() as u32 * 4;
        let (Ok(prefix), Some(block)) = (
            u64::from_str_radix(hex, 16),
            blocks.iter_mut().find(|b| b.bits == bits),
        ) else {
            continue;
        };
        // Consecutive rows often share a name (big vendors own many prefixes).
        if names.last().is_none_or(|n| **n != *name) {
            names.push(name.into());
        }
        block.prefixes.push(prefix);
        block.names.push(names.len() as u32 - 1);
    }
    for b in &mut blocks {
        let mut pairs: Vec<(u64, u32)> = b.prefixes.iter().copied().zip(b.names.iter().copied()).collect();
        pairs.sort_unstable();
        (b.prefixes, b.names) = pairs.into_iter().unzip();
    }
    Table { blocks, names }
}

/// Locally administered prefixes that hypervisors and container runtimes always use; they
/// are in no IEEE registry, but they do say what made the address.
const VIRTUAL_PREFIXES: [(&[u8], &str); 3] = [
    (&[0x52, 0x54, 0x00], "QEMU virtual NIC"),
    (&[0x0a, 0x00, 0x27], "VirtualBox virtual NIC"),
    (&[0x02, 0x42], "Docker container"),
];

/// The registered organisation of `mac` (or the hypervisor behind a well-known virtual
/// prefix), or `None` for other locally administered (e.g. randomised), multicast and
/// unassigned addresses.
pub fn vendor(mac: Mac) -> Option<&'static str> {
    if mac.is_multicast() {
        return None;
    }
    if mac.is_locally_administered() {
        return VIRTUAL_PREFIXES
            .iter()
            .find(|(prefix, _)| mac.0.starts_with(prefix))
            .map(|(_, name)| *name);
    }
    let t = table();
    let value = mac.as_u64();
    t.blocks.iter().find_map(|b| {
        let key = value >> (48 - b.bits);
        let i = b.prefixes.binary_search(&key).ok()?;
        Some(&*t.names[b.names[i] as usize])
    })
}

/// Number of assignments in the embedded table, for tests and the about page.
pub fn table_len() -> usize {
    table().blocks.iter().map(|b| b.prefixes.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_notations() {
        let m = Mac([0xb8, 0x27, 0xeb, 0x72, 0x20, 0xce]);
        assert_eq!(Mac::parse("b8:27:eb:72:20:ce"), Some(m));
        assert_eq!(Mac::parse("B8-27-EB-72-20-CE"), Some(m));
        assert_eq!(Mac::parse("b827.eb72.20ce"), Some(m));
        assert_eq!(m.to_string(), "b8:27:eb:72:20:ce");
        assert_eq!(Mac::parse("b8:27:eb:72:20"), None);
        assert_eq!(Mac::parse("zz:27:eb:72:20:ce"), None);
    }

    #[test]
    fn table_is_large_and_sorted() {
        assert!(table_len() >= 30_000, "only {} prefixes", table_len());
        for b in &table().blocks {
            assert!(
                b.prefixes.windows(2).all(|w| w[0] < w[1]),
                "{}-bit block unsorted",
                b.bits
            );
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = parse_table("001122\tBig Vendor\n0011223\tSmall Vendor\n001122334\tTiny Vendor\n");
        let lookup = |mac: [u8; 6]| {
            let v = Mac(mac).as_u64();
            t.blocks.iter().find_map(|b| {
                let i = b.prefixes.binary_search(&(v >> (48 - b.bits))).ok()?;
                Some(t.names[b.names[i] as usize].to_string())
            })
        };
        assert_eq!(
            lookup([0x00, 0x11, 0x22, 0x99, 0, 0]).as_deref(),
            Some("Big Vendor")
        );
        assert_eq!(
            lookup([0x00, 0x11, 0x22, 0x3f, 0, 0]).as_deref(),
            Some("Small Vendor")
        );
        assert_eq!(
            lookup([0x00, 0x11, 0x22, 0x33, 0x4f, 0]).as_deref(),
            Some("Tiny Vendor")
        );
    }

    #[test]
    fn randomised_and_multicast_have_no_vendor() {
        let phone = Mac::parse("da:a1:19:00:00:01").unwrap();
        assert!(phone.is_locally_administered());
        assert_eq!(vendor(phone), None);
        assert_eq!(vendor(Mac::parse("01:00:5e:00:00:fb").unwrap()), None);
        assert_eq!(
            vendor(Mac::parse("52:54:00:2f:f8:dd").unwrap()),
            Some("QEMU virtual NIC")
        );
    }
}
