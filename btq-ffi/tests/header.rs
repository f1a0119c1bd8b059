//! The committed C header must be the one cbindgen generates from the current sources.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let generated = Path::new(env!("OUT_DIR")).join("btq.h");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/c/btq.h");
    let Ok(new) = std::fs::read_to_string(&generated) else {
        panic!(
            "cbindgen did not write {} (see the build warnings)",
            generated.display()
        );
    };
    if std::env::var_os("BTQ_UPDATE_HEADER").is_some() {
        if let Err(e) = std::fs::write(&committed, &new) {
            panic!("cannot write {}: {e}", committed.display());
        }
        return;
    }
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        old == new,
        "bindings/c/btq.h is out of date: run `BTQ_UPDATE_HEADER=1 cargo test -p btq-ffi --test header` and commit it"
    );
}
