//! `uniffi-bindgen` of the exact UniFFI version btq-ffi links (maturin runs it to generate the
//! Python module, so generator and scaffolding can never drift apart).

fn main() {
    uniffi::uniffi_bindgen_main();
}
