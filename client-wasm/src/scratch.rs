//! The wasm-side buffers the aes-gcm backend seals and opens records through.
//!
//! Bytes wait for the network on the JS side (in `ArrayBuffer`s and `Blob`s), never
//! in wasm memory: a record is copied in, sealed or opened, and copied out again in
//! one synchronous step, with no `await` in between. So one pair of buffers serves
//! every transfer of the page, and wasm memory (which never shrinks) stays at about
//! two records, whatever the file size, part size or concurrency.

use std::cell::RefCell;

/// The two buffers: what goes in (plaintext to seal, or sealed records to open) and
/// what comes out.
#[derive(Default)]
pub(crate) struct Scratch {
    pub input: Vec<u8>,
    pub output: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with the buffers, emptied. `f` must not await (it cannot: it is a plain
/// closure) and must not call `with` again.
pub(crate) fn with<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.input.clear();
        scratch.output.clear();
        f(&mut scratch)
    })
}
