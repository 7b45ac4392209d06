//! The TypeScript types of `RoomClient` (in `pkg/sealdrop_client.d.ts`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** Options of `RoomClient.connect(link, options)`. */
export interface RoomClientOptions {
  /**
   * A JWT (docs/PROTOCOL.md), or a function returning one (or a Promise of one),
   * called for every new socket, so an expired token can be replaced.
   */
  token: string | (() => string | Promise<string>);
  /** How long a sent request waits for its answer; default 10000. */
  requestTimeoutMs?: number;
  /** Told of every change of `state`. */
  onStateChange?: (state: RoomConnectionState) => void;
  /** Listeners registered before the first socket opens, so they hear the join too. */
  on?: { [E in keyof RoomEvents]?: (data: RoomEvents[E], event: E) => void } & { "*"?: (data: any, event: string) => void };
}

export type RoomConnectionState = "connecting" | "open" | "reconnecting" | "closed";
export type RoomRole = "viewer" | "member" | "moderator" | "owner";

/** A chat message with its sealed fields opened (`null` and `sealError` if one did not open). */
export interface RoomMessage {
  roomId: string;
  id: string;
  seq: number;
  senderId: string;
  senderName: string;
  text: string | null;
  attachments: (string | null)[];
  /** A `share-file` message: the file and its link, opened. */
  file?: { fileId: string; link: string | null };
  timestamp: string;
  sealError?: string;
}

/**
 * A file or folder of the room (docs/PROTOCOL.md, "The room's files and folders"), its
 * sealed fields opened beside them (`null` and `sealError` if one did not open).
 */
export interface RoomFile {
  id: string; seq?: number; size: number; isFolder: boolean; parentId?: string;
  uploadedBy: string; uploadedByName: string; createdAt: string;
  sealedName: string; sealedType?: string; sealedKey?: string; sealedPath?: string;
  name: string | null; type?: string | null; key?: string | null; path?: string | null;
  processing?: any; sealError?: string;
}

/** An upload in flight, as `file-upload-started` and the `uploads` snapshot carry it. */
export interface RoomUpload {
  roomId: string; fileId: string; uploadId: string; userId: string; userName: string;
  size: number; startedAt: string; parentId?: string;
  sealedName: string; name: string | null; type?: string | null; key?: string | null; path?: string | null;
  state?: "uploading" | "paused"; bytesUploaded?: number; totalBytes?: number; percentage?: number;
  uploadSpeed?: number | null; estimatedTimeRemaining?: number | null; sealError?: string;
}

/** `file-upload-progress`: figures measured by the room (speed in bytes a second, ETA in seconds). */
export interface RoomUploadProgress {
  roomId: string; fileId: string; uploadId: string; userId: string; bytesUploaded: number;
  totalBytes: number; percentage: number; uploadSpeed: number | null; estimatedTimeRemaining: number | null;
}

export interface PresenceUser { roomId: string; userId: string; userName: string; devices: number }
/** A stored `user-joined` / `user-left` event listed in `presence-changed`. */
export interface MemberChange { roomId: string; userId: string; userName: string; joinedAt: string; seq: number }
export interface RoomLock { roomId: string; lockedBy: string; lockedByName: string; lockedAt: string; reason?: string | null; sealError?: string }
export interface HistoryPage { roomId: string; messages: RoomMessage[]; hasMore: boolean }
export interface MessageAck { messageId: string; seq: number; timestamp: string; duplicate: boolean }

/** Every event `on()` delivers, with its data. Numbered events carry `seq`. */
export interface RoomEvents {
  "authentication_successful": { userId: string; userName: string; sessionId: string; role: RoomRole };
  "authentication_failed": { reason: string; code: "invalid_token" | "expired_token" | "unauthorized" };
  "room-state": { roomId: string; head: number; lock: RoomLock | null; memberCount: number; reads: Record<string, number>; you: { userId: string; userName: string; role: RoomRole } };
  "presence": { roomId: string; users: PresenceUser[] };
  /** The presence changes of one window (docs/PROTOCOL.md, Presence); `seq` is the highest
   * seq it lists, absent when it lists only device counts. */
  "presence-changed": { roomId: string; joined: MemberChange[]; left: (MemberChange & { leftAt: string })[]; online: PresenceUser[]; offline: PresenceUser[]; seq?: number };
  "user-joined": { roomId: string; userId: string; userName: string; joinedAt: string; seq: number };
  "user-left": { roomId: string; userId: string; userName: string; joinedAt: string; leftAt: string; seq: number };
  "new-message": RoomMessage;
  "history": HistoryPage;
  "message-read": { roomId: string; userId: string; seq: number };
  "room-locked": RoomLock & { seq: number };
  "room-unlocked": { roomId: string; unlockedBy: string; unlockedByName: string; unlockedAt: string; seq: number };
  "resync-required": { roomId: string; lastSeq: number; oldestSeq: number; head: number; reason: "too_old" | "too_many" | "ahead" };
  "file-upload-started": RoomUpload & { seq: number };
  "file-upload-progress": RoomUploadProgress;
  "file-upload-paused": { roomId: string; fileId: string; uploadId: string; userId: string; bytesUploaded: number; pausedAt: string };
  "file-upload-resumed": { roomId: string; fileId: string; uploadId: string; userId: string; bytesUploaded: number; resumedAt: string };
  "file-upload-completed": { roomId: string; fileId: string; uploadId: string; userId: string; userName: string; size: number; completedAt: string; seq: number };
  "file-upload-failed": { roomId: string; fileId: string; uploadId: string; userId: string; userName: string; reason: "cancelled" | "expired"; failedAt: string; seq: number };
  "file-added": { roomId: string; file: RoomFile; seq: number };
  "file-removed": { roomId: string; fileId: string; removedBy: string; removedByName: string; removedAt: string; seq: number };
  "uploads": { roomId: string; uploads: RoomUpload[] };
  "files": { roomId: string; files: RoomFile[]; hasMore: boolean };
  "upload-control": { roomId: string; fileId: string; action: "pause" | "resume" | "cancel"; requestedBy: string };
  "error": { id?: string; code: string; message: string; retryAfter?: number };
}
"#;
