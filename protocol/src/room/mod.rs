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
//! - [`limits`], [`rate`], [`ids`], [`time`]: the small parts.
//!
//! Issue 12 puts files into rooms: uploads in flight, shared files, processing status
//! and the audit log become new events and new state of the same machine (and new
//! [`store::Write`]s), not a second one.

pub mod client;
pub mod error;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod machine;
pub mod rate;
pub mod seal;
pub mod store;
pub mod time;
pub mod vectors;

#[cfg(test)]
mod tests;
