//! Range buffers, reused. A download reads each ranged `GET` into one buffer of the
//! range's size; without reuse every range is a fresh 8 MiB `ArrayBuffer` that the
//! page's garbage collector frees late (measured: a 4 GiB download grew the renderer by
//! 449 MiB for a window of about 80 MiB). A buffer comes back here once its records
//! are opened: from the page's own opening, or from a cipher worker, which transfers
//! it back with its answer ([`crate::offload`]).

use std::cell::RefCell;

use js_sys::{ArrayBuffer, Uint8Array};

/// Buffers kept for reuse at most: the ranges a download may hold (concurrency up to
/// the 6 connections Chromium opens per host, plus its window's one) and one spare.
const KEEP: usize = 8;

thread_local! {
    static SPARE: RefCell<Vec<ArrayBuffer>> = const { RefCell::new(Vec::new()) };
}

/// A `len`-byte view on a spare buffer at least that large, or on a new one.
pub(crate) fn take(len: u32) -> Uint8Array {
    let reused = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let at = spare.iter().position(|b| b.byte_length() >= len)?;
        Some(spare.swap_remove(at))
    });
    match reused {
        Some(buffer) => Uint8Array::new_with_byte_offset_and_length(&buffer, 0, len),
        None => Uint8Array::new_with_length(len),
    }
}

/// Gives `buffer` back for reuse (a detached one, of length 0, is dropped).
pub(crate) fn give(buffer: ArrayBuffer) {
    if buffer.byte_length() == 0 {
        return;
    }
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < KEEP {
            spare.push(buffer);
        }
    });
}
