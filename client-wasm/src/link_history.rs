//! This browser's link history (`localStorage`): what earlier uploads measured of the
//! link, and the part size it suggests for the next one (the rule is the protocol's
//! [`preferred_part_size`]). Only a throughput, a failure rate and a count are kept,
//! and they never leave the browser. Without `localStorage` (a worker, an opaque
//! origin, storage blocked) uploads plan with the server's default part size.

use sealdrop_protocol::concurrency::LinkSample;
use sealdrop_protocol::link_history::{LinkHistory, preferred_part_size};
use sealdrop_protocol::plan::ProviderLimits;
use wasm_bindgen::JsCast;
use web_sys::Storage;

use crate::platform;

/// The `localStorage` key; its value is [`LinkHistory`] as JSON.
const KEY: &str = "sealdrop.linkHistory.v1";

/// The part size to ask for when uploading `size` bytes in records of `record_size`,
/// or `None` (no history: the server's default). Planned under S3's limits; the server
/// plans it again under its provider's.
pub(crate) fn part_size(size: u64, record_size: u32) -> Option<u64> {
    let history = load()?;
    preferred_part_size(size, record_size, Some(&history), &ProviderLimits::S3)
        .ok()
        .flatten()
}

/// Adds what a run of parts measured to the history (best effort).
pub(crate) fn record(sample: LinkSample) {
    let Some(storage) = storage() else {
        return;
    };
    let previous = load();
    if let Some(next) = LinkHistory::observe(previous, sample)
        && Some(next) != previous
        && let Ok(json) = serde_json::to_string(&next)
        && let Err(e) = storage.set_item(KEY, &json)
    {
        platform::warn("sealdrop: the link history could not be kept", &e);
    }
}

fn load() -> Option<LinkHistory> {
    let json = storage()?.get_item(KEY).ok()??;
    serde_json::from_str(&json).ok()
}

/// `globalThis.localStorage`, where there is one and reading it is allowed.
fn storage() -> Option<Storage> {
    js_sys::Reflect::get(&js_sys::global(), &"localStorage".into())
        .ok()?
        .dyn_into()
        .ok()
}
