//! Upload sessions: the `UploadSession` Durable Object and how the worker talks to it.
//!
//! - `calls`: the internal calls (which method and path is which, and their bodies);
//! - `client`: the worker's side, addressing a file's object and calling it;
//! - `object`: the Durable Object, which carries out the session machine's steps;
//! - `store`: its SQLite rows; `room_tie`: the room an upload belongs to; `thumbnail`:
//!   the file's sealed thumbnail.

pub(crate) mod calls;
pub(crate) mod client;
// `#[durable_object]` generates undocumented `pub` wasm-bindgen glue (`new`, `fetch`,
// `alarm`, ...), hence the allow on this module only.
#[allow(missing_docs)]
pub(crate) mod object;
pub(crate) mod room_tie;
pub(crate) mod store;
pub(crate) mod thumbnail;
