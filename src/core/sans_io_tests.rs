//! The core is sans-IO: it must compile and run without a browser. `cargo test` already
//! fails on an unconditional `use wasm_bindgen` here (those crates are wasm32-only
//! dependencies), but code behind `#[cfg(target_arch = "wasm32")]` would slip through, so
//! this test reads the sources.

use std::fs;
use std::path::{Path, PathBuf};

const SHELL_CRATES: [&str; 6] = [
    "wasm_bindgen",
    "web_sys",
    "js_sys",
    "gloo_net",
    "wasm_bindgen_futures",
    "console_error_panic_hook",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/core is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_never_names_a_browser_crate() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    assert!(files.len() > 20, "found only {} core files", files.len());
    let this_file = core.join("sans_io_tests.rs");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| **f != this_file) {
        let text = fs::read_to_string(file).expect("core source is UTF-8");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(name) = SHELL_CRATES.iter().find(|c| code.contains(*c)) {
                offenders.push(format!("{}:{}: {name}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the core must stay sans-IO; move these to the shell (src/shell):\n{}",
        offenders.join("\n")
    );
}
