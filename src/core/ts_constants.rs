//! Renders the core's constants as TypeScript (`bindings/shared/core-constants.ts`) so the
//! bindings import them instead of keeping their own copies: the client's error codes, the
//! SeqId bit layout and the system columns. The test fails when the committed file differs
//! from what the Rust says; `KALAM_BLESS=1 cargo test -p kalam-wasm --lib ts_constants`
//! rewrites it.

use std::fmt::Write;

use crate::core::error::codes;
use crate::core::schema::SYSTEM_COLUMNS;
use crate::core::seq_id::SeqId;

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/bindings/shared/core-constants.ts"
);

fn render() -> String {
    let mut ts = String::from(
        "// Generated from the Rust core by src/core/ts_constants.rs: do not edit. After changing the\n\
         // Rust, rewrite it with `KALAM_BLESS=1 cargo test -p kalam-wasm --lib ts_constants`.\n\n\
         /** Codes produced by the client itself (`core::error::codes`). */\n\
         export const ERROR_CODES = {\n",
    );
    for (name, doc) in codes::ALL {
        writeln!(ts, "  /** {} */\n  {name}: '{name}',", doc.trim()).unwrap();
    }
    ts.push_str("} as const;\n\n");
    let worker_mask = (1u64 << SeqId::WORKER_BITS) - 1;
    let sequence_mask = (1u64 << SeqId::SEQUENCE_BITS) - 1;
    writeln!(
        ts,
        "/** SeqId (`_seq`) layout: bits 63..{ts_shift} milliseconds since this epoch, then the worker id, then the sequence. */\n\
         export const SEQ_ID_EPOCH_MS = {epoch}n;\n\
         export const SEQ_ID_TIMESTAMP_SHIFT = {ts_shift}n;\n\
         export const SEQ_ID_WORKER_SHIFT = {worker_shift}n;\n\
         export const SEQ_ID_WORKER_MASK = {worker_mask:#x}n;\n\
         export const SEQ_ID_SEQUENCE_MASK = {sequence_mask:#x}n;\n",
        epoch = SeqId::EPOCH_MS,
        ts_shift = SeqId::TIMESTAMP_SHIFT,
        worker_shift = SeqId::WORKER_SHIFT,
    )
    .unwrap();
    ts.push_str(
        "/** The columns KalamDB adds to every table, with the type their cells decode as. */\n\
         export const SYSTEM_COLUMNS = {\n",
    );
    for (name, data_type) in SYSTEM_COLUMNS {
        let ty = data_type.to_wire();
        writeln!(ts, "  {name}: '{}',", ty.as_str().expect("plain type")).unwrap();
    }
    ts.push_str("} as const;\n");
    ts
}

#[test]
fn the_committed_typescript_constants_match_the_rust() {
    let want = render();
    if std::env::var_os("KALAM_BLESS").is_some() {
        std::fs::write(FILE, &want).expect("write core-constants.ts");
        return;
    }
    let have = std::fs::read_to_string(FILE).unwrap_or_default();
    assert!(
        have == want,
        "{FILE} is not what the Rust core says; rewrite it with \
         `KALAM_BLESS=1 cargo test -p kalam-wasm --lib ts_constants`.\nexpected:\n{want}"
    );
}

#[test]
fn the_rendering_carries_every_value() {
    let ts = render();
    for (name, _) in codes::ALL {
        assert!(ts.contains(&format!("{name}: '{name}',")), "{name}");
    }
    assert!(ts.contains("SEQ_ID_EPOCH_MS = 1704067200000n;"));
    assert!(ts.contains("SEQ_ID_TIMESTAMP_SHIFT = 22n;"));
    assert!(ts.contains("SEQ_ID_WORKER_MASK = 0x3ffn;"));
    assert!(ts.contains("_commit_seq: 'BigInt',"));
}
