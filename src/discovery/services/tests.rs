//! Tests of the embedded definitions (load, count, fixtures) and of the matching rules.

use super::*;

#[test]
fn embedded_definitions_load_without_errors() {
    let m = ServiceMatcher::embedded();
    let errors: Vec<String> = m.errors().iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "bad definitions:\n{}", errors.join("\n"));
    assert!(
        m.definitions().len() >= 220,
        "only {} definitions",
        m.definitions().len()
    );
    let categories: BTreeSet<&str> = m.definitions().iter().map(|d| d.category.as_str()).collect();
    assert!(categories.len() >= 15, "categories: {categories:?}");
    for (file, _) in EMBEDDED {
        assert!(
            m.definitions().iter().any(|d| d.file == *file),
            "{file} defines nothing"
        );
    }
    assert!(m.tcp_ports().contains(&8123));
    assert!(m.mdns_types().contains("_googlecast._tcp"));
    assert!(m.http_paths().contains("/setup/eureka_info"));
}

#[test]
fn every_fixture_is_matched_by_its_own_definition_only() {
    let m = ServiceMatcher::embedded();
    let mut failures = Vec::new();
    let mut fixtures = 0;
    for def in m.definitions() {
        assert!(!def.fixtures().is_empty(), "{} has no fixture", def.name);
        for (i, ev) in def.fixtures().iter().enumerate() {
            fixtures += 1;
            let all = m.all_matches(ev);
            let Some(own) = all
                .iter()
                .filter(|x| x.name == def.name)
                .map(|x| x.confidence)
                .max()
            else {
                failures.push(format!("{} ({}): fixture {i} not matched", def.name, def.file));
                continue;
            };
            for other in all.iter().filter(|x| x.name != def.name && x.confidence >= own) {
                failures.push(format!(
                    "{} ({}): fixture {i} also claimed by '{}' at {} ({})",
                    def.name,
                    def.file,
                    other.name,
                    other.confidence.as_str(),
                    other.summary()
                ));
            }
            let classified = m.classify(ev);
            if !classified.iter().any(|x| x.name == def.name) {
                failures.push(format!(
                    "{}: fixture {i} lost its port to {classified:?}",
                    def.name
                ));
            }
        }
    }
    assert!(fixtures >= m.definitions().len());
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const SAMPLE: &str = r#"
category = "test"

[[service]]
name = "Generic web"
confidence = "low"
any = [{ server = 'nginx' }]
fixture = [{ port = 80, server = "nginx" }]

[[service]]
name = "Thing UI"
confidence = "high"
ports = { tcp = [8123] }
any = [{ title = '^Thing$' }, { path = "/thing.json", body = '"thing"' }]
fixture = [{ port = 8123, title = "Thing" }]

[[service]]
name = "Speaker"
confidence = "medium"
ports = { tcp = [1400] }
all = [{ port = 1400 }, { ssdp = 'Speaker/\d' }]
fixture = [{ port = 1400, ssdp = ["SERVER: Linux Speaker/1.0"] }]

[[service]]
name = "Caster"
confidence = "medium"
ports = { tcp = [8009] }
any = [{ mdns = "_caster._tcp" }]
mac_vendors = ["Google"]
fixture = [{ mdns = ["_caster._tcp.local."] }]
"#;

fn sample() -> ServiceMatcher {
    let m = ServiceMatcher::from_files(&[("sample.toml", SAMPLE)]);
    assert!(m.errors().is_empty(), "{:?}", m.errors());
    m
}

fn web(port: u16, path: &str, title: Option<&str>, server: &str, body: &str) -> HttpResponse {
    HttpResponse {
        port,
        path: path.into(),
        status: 200,
        title: title.map(String::from),
        headers: vec![("server".into(), server.into())],
        body: body.into(),
    }
}

#[test]
fn the_most_confident_match_binds_the_port_and_keeps_its_evidence() {
    let m = sample();
    let ev = Evidence {
        http: vec![web(8123, "/", Some("Thing"), "nginx/1.25", "")],
        ..Evidence::default()
    };
    assert_eq!(m.all_matches(&ev).len(), 2);
    let got = m.classify(&ev);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].name, "Thing UI");
    assert_eq!(got[0].port, Some(8123));
    assert_eq!(got[0].confidence, Confidence::High);
    assert_eq!(got[0].summary(), "port 8123 + title 'Thing'");
}

#[test]
fn any_of_matches_on_a_probed_path_at_an_unusual_port() {
    let m = sample();
    let ev = Evidence {
        http: vec![
            web(9999, "/", None, "x", ""),
            web(9999, "/thing.json", None, "x", r#"{"thing":1}"#),
        ],
        ..Evidence::default()
    };
    let got = m.classify(&ev);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].port, Some(9999));
    assert_eq!(got[0].evidence, vec!["GET /thing.json → 200 + body '\"thing\"'"]);
}

#[test]
fn all_of_needs_every_condition() {
    let m = sample();
    let port_only = Evidence {
        tcp_open: vec![1400],
        ..Evidence::default()
    };
    assert!(m.classify(&port_only).is_empty());
    let ssdp_only = Evidence {
        ssdp: vec![("SERVER".into(), "Linux Speaker/1.0".into())],
        ..Evidence::default()
    };
    assert!(m.classify(&ssdp_only).is_empty());
    let both = Evidence {
        tcp_open: vec![1400],
        ..ssdp_only
    };
    let got = m.classify(&both);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].summary(), "port 1400 + SSDP SERVER: 'Linux Speaker/1.0'");
}

#[test]
fn host_level_evidence_binds_the_usual_port_or_none() {
    let m = sample();
    let ev = Evidence {
        mdns: vec!["_caster._tcp.local".into()],
        mac_vendor: Some("Google, Inc.".into()),
        ..Evidence::default()
    };
    let got = m.classify(&ev);
    assert_eq!(got[0].port, None);
    assert_eq!(got[0].summary(), "mDNS _caster._tcp + MAC vendor 'Google, Inc.'");
    let open = Evidence {
        tcp_open: vec![8009],
        ..ev
    };
    assert_eq!(m.classify(&open)[0].port, Some(8009));
}

#[test]
fn bad_definitions_are_reported_not_fatal() {
    let bad_regex = "category = \"t\"\n[[service]]\nname = \"A\"\nconfidence = \"low\"\n\
                     any = [{ title = '(' }]\nfixture = [{ port = 1, title = \"x\" }]\n";
    let unknown_field = "category = \"t\"\n[[service]]\nname = \"B\"\nconfidence = \"low\"\ncolour = 1\n";
    let no_fixture =
        "category = \"t\"\n[[service]]\nname = \"C\"\nconfidence = \"low\"\nany = [{ port = 1 }]\n";
    let mixed = "category = \"t\"\n[[service]]\nname = \"D\"\nconfidence = \"low\"\n\
                 any = [{ title = 'x', banner = 'y' }]\nfixture = [{ port = 1, title = \"x\" }]\n";
    let m = ServiceMatcher::from_files(&[
        ("a.toml", bad_regex),
        ("b.toml", unknown_field),
        ("c.toml", no_fixture),
        ("d.toml", mixed),
        ("ok.toml", SAMPLE),
        ("dup.toml", SAMPLE),
    ]);
    assert_eq!(m.definitions().len(), 4);
    let text: Vec<String> = m.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(text.len(), 8, "{text:#?}");
    assert!(text[0].contains("title pattern"), "{}", text[0]);
    assert!(text[1].contains("colour"), "{}", text[1]);
    assert!(text[2].contains("fixture"), "{}", text[2]);
    assert!(text[3].contains("mixes"), "{}", text[3]);
    assert!(text[4].contains("duplicate"), "{}", text[4]);
}
