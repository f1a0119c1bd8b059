//! # btq-ffi
//!
//! Bindings of btq-kit for other languages:
//!
//! - [`api`]: the safe API, exported to Python with UniFFI proc-macros (module `btq_kit`).
//! - [`c_abi`]: a hand-designed C ABI over the same API (`btq_` prefix, opaque handles,
//!   `int32_t` status codes, a thread-local last-error message, library-allocated buffers
//!   released by `btq_buffer_free`, panics caught at the boundary). The header
//!   `bindings/c/btq.h` is generated from it by cbindgen (`build.rs`).
//!
//! This is the only crate of the workspace that contains `unsafe` (STYLE.md §40): all of it is
//! in [`c_abi`], each block with a `// SAFETY:` comment.
// The workspace denies `unsafe_code`; btq-ffi is the one crate allowed to use it, for the C ABI.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(warn(unused))))]

pub mod api;
pub mod c_abi;

uniffi::setup_scaffolding!("btq_kit");
