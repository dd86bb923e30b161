//! MAC vendors against the lab's ground truth (../shared/netlab/expected.json, made from
//! the IEEE registry by the lab's own generator, not by gatewatch).

use gatewatch::discovery::oui::{vendor, Mac};

#[test]
fn vendors_match_the_lab_ground_truth() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/netlab/expected.json");
    let text = std::fs::read_to_string(path).expect("../shared/netlab/expected.json is beside the repo");
    let lab: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hosts = lab["hosts"].as_array().expect("hosts");
    let mut checked = 0;
    for h in hosts {
        let mac = Mac::parse(h["mac"].as_str().unwrap()).unwrap();
        if h["mac_randomized"].as_bool() == Some(true) {
            assert!(mac.is_locally_administered(), "{}", h["hostname"]);
            assert_eq!(vendor(mac), None, "{}", h["hostname"]);
        } else if let Some(ieee) = h["vendor_ieee"].as_str() {
            assert_eq!(vendor(mac), Some(ieee), "{}", h["hostname"]);
        } else {
            // Not in the IEEE registry (e.g. QEMU's 52:54:00): the lab's keywords must match.
            let ours = vendor(mac).unwrap_or_default().to_lowercase();
            let keywords = h["vendor_keywords"].as_array().unwrap();
            assert!(!keywords.is_empty(), "{}", h["hostname"]);
            assert!(
                keywords.iter().any(|k| ours.contains(k.as_str().unwrap())),
                "{}: {ours:?}",
                h["hostname"]
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} hosts in the lab's ground truth");
}
