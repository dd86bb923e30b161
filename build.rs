//! Embeds `static/` pre-compressed: for each file, its gzip form only (the rare client without
//! gzip gets it inflated on the fly; a second, raw copy would add ~1 MB to router binaries) and
//! a content hash used in URLs (`/static/app.css?v=<hash>`) so browsers may cache it for a year.
//! Also gzip-compresses the service definitions (`data/services/*.toml`) and the OpenAPI
//! document (`src/web/openapi.json`) for embedding.

use std::io::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=static");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut entries: Vec<_> = std::fs::read_dir("static")
        .expect("static/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for entry in entries {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).expect("readable asset");
        let gz = gzip(&raw);
        let gz_path = Path::new(&out_dir).join(format!("{name}.gz"));
        std::fs::write(&gz_path, &gz).unwrap();
        let hash = sha2_hex(&raw);
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, hash: {:?}, gzip: include_bytes!({:?}) }},\n",
            &hash[..12],
            gz_path.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(Path::new(&out_dir).join("assets.rs"), table).unwrap();

    // Service definitions (data/services/*.toml), gzip-compressed: 107 kB of TOML become 30 kB.
    println!("cargo:rerun-if-changed=data/services");
    let services = Path::new(&out_dir).join("services");
    std::fs::create_dir_all(&services).unwrap();
    for entry in std::fs::read_dir("data/services").expect("data/services/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read(&path).unwrap();
            std::fs::write(services.join(format!("{name}.gz")), gzip(&text)).unwrap();
        }
    }

    // The OpenAPI document (written by a test from the handlers), gzip-compressed too:
    // 10 kB instead of 110 kB in the binary.
    println!("cargo:rerun-if-changed=src/web/openapi.json");
    let doc = std::fs::read("src/web/openapi.json").expect("src/web/openapi.json exists");
    std::fs::write(Path::new(&out_dir).join("openapi.json.gz"), gzip(&doc)).unwrap();
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(raw).unwrap();
    gz.finish().unwrap()
}

fn sha2_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
