//! Real-time rooms (docs/PROTOCOL.md): the rules a room's Durable Object and the
//! browser's `RoomClient` share, as pure code.
//!
//! - [`machine`]: one room, a sans-IO state machine (events in; frames, storage writes,
//!   closes and alarms out; time passed in), and [`store`], what it keeps and the seam
//!   to where it keeps it;
//! - [`client`]: one client's connection, the same way (reconnect with backoff, resume
//!   from the last seq, requests with timeouts, the offline queue);
//! - [`frame`]: the JSON frames; [`error`]: their error codes and close codes;
//! - [`seal`]: sealed room content and room links (docs/FORMAT.md, Room payloads), and
//!   [`vectors`], its test vectors as data;
//! - [`presence`]: the membership and device-count changes of one presence window,
//!   folded into one `presence-changed` per socket;
//! - [`limits`], [`rate`], [`ids`], [`time`]: the small parts.
//!
//! Files in rooms (issue 12) are new events and new state of the same machine (and new
//! [`store::Write`]s), not a second one: [`files`] (what is kept), [`file_frames`] (their
//! frames), [`progress`] (coalescing, speed and ETA of uploads in flight),
//! [`processing`] (processors' status reports), [`webhook`] (offline members'
//! notifications); the handlers are in `machine/files.rs`.

pub mod client;
pub mod error;
pub mod file_frames;
pub mod files;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod machine;
pub mod presence;
pub mod processing;
pub mod progress;
pub mod rate;
pub mod seal;
pub mod store;
pub mod time;
pub mod vectors;
pub mod webhook;

#[cfg(test)]
mod tests;
