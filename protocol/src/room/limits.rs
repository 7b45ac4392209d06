//! Every limit a room enforces (docs/PROTOCOL.md, Limits), in one value the shell builds
//! from its configuration and the machine reads.

use super::progress::ProgressRules;

/// A room's limits. [`RoomLimits::default`] is what a deployment gets unless it
/// configures otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLimits {
    /// Messages one user may send in one room per [`message_window_ms`](Self::message_window_ms)
    /// (seed 003: 30 a minute). `ROOM_MESSAGES_PER_MINUTE`.
    pub messages_per_window: u32,
    /// The sliding window of the message limit.
    pub message_window_ms: u64,
    /// Frames one connection may send per second on average (every event counts;
    /// `ping` is answered by the platform and does not).
    pub frames_per_second: u32,
    /// Frames one connection may send in a burst above that rate.
    pub frame_burst: u32,
    /// Largest frame, in bytes.
    pub max_frame_bytes: usize,
    /// Longest sealed message text, in characters of its text form.
    pub max_text_chars: usize,
    /// Most attachments on one message.
    pub max_attachments: usize,
    /// Longest sealed attachment, in characters.
    pub max_attachment_chars: usize,
    /// Longest sealed lock reason, in characters.
    pub max_reason_chars: usize,
    /// Connections one user may have to one room (seed 000: 10). `ROOM_MAX_DEVICES`.
    pub max_devices_per_user: usize,
    /// Connections one room accepts in all.
    pub max_connections: usize,
    /// How long a new socket has to authenticate (the issue: 10 s).
    /// `ROOM_AUTH_TIMEOUT_SECONDS`.
    pub auth_timeout_ms: u64,
    /// A socket that sends nothing, not even a `ping`, for this long is closed; 0 turns
    /// the check off. `ROOM_IDLE_TIMEOUT_SECONDS`.
    pub idle_timeout_ms: u64,
    /// How long non-message events stay replayable (at least 24 hours; messages are
    /// kept as history).
    pub replay_window_ms: u64,
    /// Most events one reconnect replays; a longer gap gets `resync-required`.
    pub max_replay_events: usize,
    /// Messages sent on join and by a `history` request without `limit`.
    pub history_default: usize,
    /// Largest `history` `limit`.
    pub history_max: usize,
    /// Progress reports one connection may send per second on average (they do not
    /// count against `frames_per_second`: the room coalesces them).
    pub progress_per_second: u32,
    /// Progress reports in a burst above that rate.
    pub progress_burst: u32,
    /// How upload progress is coalesced and measured.
    pub progress: ProgressRules,
    /// Uploads in flight one room holds at once. `ROOM_MAX_UPLOADS`.
    pub max_uploads: usize,
    /// How long an upload stays in flight before the room gives up on it: the upload
    /// session's lifetime plus an hour (set by the shell from `UPLOAD_TTL_SECONDS`).
    pub upload_ttl_ms: u64,
    /// `files` / `audit` page size by default (also the `files` page sent on join).
    pub files_page_default: usize,
    /// Largest `files` / `audit` `limit`.
    pub files_page_max: usize,
    /// Files one socket may subscribe to (`subscribe:file`).
    pub max_subscriptions: usize,
    /// At most one webhook per offline member per room in this long (the issue: 5
    /// minutes); `None` when no webhook is configured. `NOTIFY_INTERVAL_SECONDS`.
    pub notify_interval_ms: Option<u64>,
}

/// One hour, in ms.
pub const HOUR_MS: u64 = 60 * 60 * 1000;

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            messages_per_window: 30,
            message_window_ms: 60_000,
            frames_per_second: 20,
            frame_burst: 60,
            max_frame_bytes: 64 * 1024,
            max_text_chars: 16 * 1024,
            max_attachments: 8,
            max_attachment_chars: 4 * 1024,
            max_reason_chars: 1024,
            max_devices_per_user: 10,
            max_connections: 10_000,
            auth_timeout_ms: 10_000,
            idle_timeout_ms: 5 * 60 * 1000,
            replay_window_ms: 24 * HOUR_MS,
            max_replay_events: 10_000,
            history_default: 50,
            history_max: 100,
            progress_per_second: 100,
            progress_burst: 200,
            progress: ProgressRules::default(),
            max_uploads: 100,
            upload_ttl_ms: 6 * 24 * HOUR_MS + HOUR_MS,
            files_page_default: 50,
            files_page_max: 100,
            max_subscriptions: 100,
            notify_interval_ms: None,
        }
    }
}
