//! Processing status of a room's file (seed 001): what an external processor reports
//! through `POST /api/files/{fileId}/processing` (docs/API.md) and what the room keeps
//! and sends to the sockets subscribed to the file (`subscribe:file`).
//!
//! With end-to-end encryption only a processor the user gave the link to can read the
//! file; it reports in the clear, so what it says (a message, a result) is visible to
//! the server: processors must not put file names or content in it. Every field is
//! validated here, strictly, and the status only moves along
//!
//! ```text
//!   (none) ──started──▶ processing ──progress (0-100, never backwards)──▶ processing
//!                        │   ├──completed──▶ completed ──started──▶ processing (a new run)
//!                        │   └──failed─────▶ failed ─────started──▶ processing
//! ```
//!
//! Anything else (progress before `started`, `started` twice, a report after the run
//! finished, a report from another processor than the one that started the run) is
//! refused as out of order and changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest `message` / `error`, in characters.
pub const MAX_PROCESSING_TEXT_CHARS: usize = 256;
/// Largest `metadata` / `result` object, in bytes of JSON.
pub const MAX_PROCESSING_JSON_BYTES: usize = 4096;
/// Longest processor name (from the deployment's configuration).
pub const MAX_PROCESSOR_NAME_LEN: usize = 64;

/// The body of `POST /api/files/{fileId}/processing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessingReport {
    /// `started`, `progress`, `completed` or `failed`.
    pub event: String,
    /// `progress` only (required there): percent done, 0 to 100.
    #[serde(default)]
    pub progress: Option<f64>,
    /// A short human-readable status (any event).
    #[serde(default)]
    pub message: Option<String>,
    /// `started` / `progress`: a JSON object about the run.
    #[serde(default)]
    pub metadata: Option<Box<RawValue>>,
    /// `completed`: a JSON object with the results (duration, dimensions, ...).
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    /// `failed` only (required there): what went wrong.
    #[serde(default)]
    pub error: Option<String>,
}

/// A report, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessingEvent {
    /// A run begins.
    Started {
        /// Human text.
        message: Option<String>,
        /// JSON object text.
        metadata: Option<String>,
    },
    /// A run moves on.
    Progress {
        /// 0 to 100.
        progress: f64,
        /// Human text.
        message: Option<String>,
        /// JSON object text.
        metadata: Option<String>,
    },
    /// A run finished.
    Completed {
        /// Human text.
        message: Option<String>,
        /// JSON object text.
        result: Option<String>,
    },
    /// A run failed.
    Failed {
        /// What went wrong.
        error: String,
        /// Human text.
        message: Option<String>,
    },
}

impl ProcessingEvent {
    /// The room event it becomes: `processing:started`, ...
    pub fn room_event(&self) -> &'static str {
        match self {
            Self::Started { .. } => "processing:started",
            Self::Progress { .. } => "processing:progress",
            Self::Completed { .. } => "processing:completed",
            Self::Failed { .. } => "processing:failed",
        }
    }
}

impl ProcessingReport {
    /// Checks every field: the event name, the fields each event takes (and no
    /// others), ranges and sizes. The error names the field.
    pub fn validate(self) -> Result<ProcessingEvent, String> {
        let text = |name: &str, value: Option<String>| match value {
            Some(t) if t.chars().count() > MAX_PROCESSING_TEXT_CHARS => Err(format!(
                "{name} is longer than {MAX_PROCESSING_TEXT_CHARS} characters"
            )),
            Some(t) if t.chars().any(char::is_control) => {
                Err(format!("{name} has control characters"))
            }
            other => Ok(other),
        };
        let object = |name: &str, value: Option<Box<RawValue>>| match value {
            None => Ok(None),
            Some(raw) if !raw.get().trim_start().starts_with('{') => {
                Err(format!("{name} must be a JSON object"))
            }
            Some(raw) if raw.get().len() > MAX_PROCESSING_JSON_BYTES => Err(format!(
                "{name} is larger than {MAX_PROCESSING_JSON_BYTES} bytes of JSON"
            )),
            Some(raw) => Ok(Some(raw.get().to_owned())),
        };
        let not = |name: &str, present: bool, event: &str| {
            if present {
                Err(format!("{name} is not a field of a {event:?} report"))
            } else {
                Ok(())
            }
        };
        let message = text("message", self.message)?;
        let event = self.event.as_str();
        match event {
            "started" => {
                not("progress", self.progress.is_some(), event)?;
                not("result", self.result.is_some(), event)?;
                not("error", self.error.is_some(), event)?;
                Ok(ProcessingEvent::Started {
                    message,
                    metadata: object("metadata", self.metadata)?,
                })
            }
            "progress" => {
                not("result", self.result.is_some(), event)?;
                not("error", self.error.is_some(), event)?;
                let progress = self
                    .progress
                    .ok_or("a \"progress\" report needs progress (0 to 100)")?;
                if !(0.0..=100.0).contains(&progress) {
                    return Err(format!("progress must be 0 to 100, not {progress}"));
                }
                Ok(ProcessingEvent::Progress {
                    progress,
                    message,
                    metadata: object("metadata", self.metadata)?,
                })
            }
            "completed" => {
                not("progress", self.progress.is_some(), event)?;
                not("metadata", self.metadata.is_some(), event)?;
                not("error", self.error.is_some(), event)?;
                Ok(ProcessingEvent::Completed {
                    message,
                    result: object("result", self.result)?,
                })
            }
            "failed" => {
                not("progress", self.progress.is_some(), event)?;
                not("metadata", self.metadata.is_some(), event)?;
                not("result", self.result.is_some(), event)?;
                let error = text("error", self.error)?
                    .filter(|e| !e.trim().is_empty())
                    .ok_or("a \"failed\" report needs error (what went wrong)")?;
                Ok(ProcessingEvent::Failed { error, message })
            }
            other => Err(format!(
                "event must be started, progress, completed or failed, not {:?}",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessingStatus {
    /// Started, not finished.
    Processing,
    /// Finished.
    Completed,
    /// Failed.
    Failed,
}

/// A file's processing status as the room keeps it and shows it (`processing` in
/// `subscribed` and in `files` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingState {
    /// The processor running it (its configured name).
    pub processor: String,
    /// Where it is.
    pub status: ProcessingStatus,
    /// Percent done (100 once completed).
    pub progress: f64,
    /// The last message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The result of a completed run (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonObject>,
    /// What went wrong in a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run started (ISO 8601).
    pub started_at: String,
    /// When the last report arrived (ISO 8601).
    pub updated_at: String,
}

/// A JSON object a processor sent, kept as its text and written back as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonObject(pub String);

impl Serialize for JsonObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(Self(raw.get().to_owned()))
    }
}

/// Why a report does not fit the run it reports on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfOrder(pub String);

/// The status after `event` from `processor` at `at` (ISO 8601), or why it is out of
/// order.
pub fn apply(
    current: Option<&ProcessingState>,
    processor: &str,
    event: &ProcessingEvent,
    at: &str,
) -> Result<ProcessingState, OutOfOrder> {
    let running = current.filter(|s| s.status == ProcessingStatus::Processing);
    if let Some(run) = running
        && run.processor != processor
    {
        return Err(OutOfOrder(format!(
            "the file is being processed by {:?}; only it may report on this run",
            run.processor
        )));
    }
    match (event, running) {
        (ProcessingEvent::Started { message, .. }, None) => Ok(ProcessingState {
            processor: processor.to_owned(),
            status: ProcessingStatus::Processing,
            progress: 0.0,
            message: message.clone(),
            result: None,
            error: None,
            started_at: at.to_owned(),
            updated_at: at.to_owned(),
        }),
        (ProcessingEvent::Started { .. }, Some(_)) => Err(OutOfOrder(
            "started: the file's processing has already started; report progress, \
             completed or failed"
                .into(),
        )),
        (_, None) => Err(OutOfOrder(match current.map(|s| s.status) {
            None => "the file's processing has not started: report started first".into(),
            Some(status) => format!(
                "the file's last run is {}: report started to begin a new one",
                match status {
                    ProcessingStatus::Completed => "completed",
                    _ => "failed",
                }
            ),
        })),
        (
            ProcessingEvent::Progress {
                progress, message, ..
            },
            Some(run),
        ) => {
            if *progress < run.progress {
                return Err(OutOfOrder(format!(
                    "progress {progress} is below the {} already reported",
                    run.progress
                )));
            }
            Ok(ProcessingState {
                progress: *progress,
                message: message.clone().or_else(|| run.message.clone()),
                updated_at: at.to_owned(),
                ..run.clone()
            })
        }
        (ProcessingEvent::Completed { message, result }, Some(run)) => Ok(ProcessingState {
            status: ProcessingStatus::Completed,
            progress: 100.0,
            message: message.clone().or_else(|| run.message.clone()),
            result: result.clone().map(JsonObject),
            updated_at: at.to_owned(),
            ..run.clone()
        }),
        (ProcessingEvent::Failed { error, message }, Some(run)) => Ok(ProcessingState {
            status: ProcessingStatus::Failed,
            message: message.clone().or_else(|| run.message.clone()),
            error: Some(error.clone()),
            updated_at: at.to_owned(),
            ..run.clone()
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report(json: &str) -> Result<ProcessingEvent, String> {
        serde_json::from_str::<ProcessingReport>(json)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn every_field_is_validated() {
        assert!(report(r#"{"event":"started","metadata":{"codec":"h264"}}"#).is_ok());
        assert!(report(r#"{"event":"progress","progress":42.5,"message":"transcoding"}"#).is_ok());
        assert!(report(r#"{"event":"completed","result":{"duration":12}}"#).is_ok());
        assert!(report(r#"{"event":"failed","error":"unsupported codec"}"#).is_ok());
        let refused = [
            (r#"{"event":"paused"}"#, "event must be"),
            (r#"{"event":"progress"}"#, "needs progress"),
            (r#"{"event":"progress","progress":101}"#, "0 to 100"),
            (r#"{"event":"progress","progress":-1}"#, "0 to 100"),
            (r#"{"event":"progress","progress":"5"}"#, "invalid type"),
            (r#"{"event":"failed"}"#, "needs error"),
            (r#"{"event":"failed","error":"  "}"#, "needs error"),
            (r#"{"event":"started","progress":3}"#, "not a field"),
            (r#"{"event":"completed","error":"x"}"#, "not a field"),
            (r#"{"event":"started","metadata":[1]}"#, "JSON object"),
            (r#"{"event":"started","bogus":1}"#, "unknown field"),
            (r#"{"event":"started","message":"a\u0007"}"#, "control"),
        ];
        for (json, needle) in refused {
            let e = report(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
        let long = format!(r#"{{"event":"started","message":"{}"}}"#, "x".repeat(257));
        assert!(report(&long).unwrap_err().contains("longer than"));
        let big = format!(
            r#"{{"event":"completed","result":{{"x":"{}"}}}}"#,
            "y".repeat(4100)
        );
        assert!(report(&big).unwrap_err().contains("larger than"));
    }

    #[test]
    fn the_status_moves_only_along_its_transitions() {
        let ev = |j: &str| report(j).unwrap();
        let started = ev(r#"{"event":"started"}"#);
        let p10 = ev(r#"{"event":"progress","progress":10}"#);
        let p5 = ev(r#"{"event":"progress","progress":5}"#);
        let done = ev(r#"{"event":"completed","result":{"ok":true}}"#);
        let failed = ev(r#"{"event":"failed","error":"boom"}"#);
        for e in [&p10, &done, &failed] {
            let why = apply(None, "t", e, "now").unwrap_err();
            assert!(why.0.contains("has not started"), "{why}");
        }
        let s = apply(None, "t", &started, "t0").unwrap();
        assert_eq!((s.status, s.progress), (ProcessingStatus::Processing, 0.0));
        assert!(apply(Some(&s), "t", &started, "t1").is_err());
        assert!(
            apply(Some(&s), "other", &p10, "t1")
                .unwrap_err()
                .0
                .contains("\"t\"")
        );
        let s = apply(Some(&s), "t", &p10, "t1").unwrap();
        assert_eq!(s.progress, 10.0);
        assert!(
            apply(Some(&s), "t", &p5, "t2")
                .unwrap_err()
                .0
                .contains("below")
        );
        let s10 = apply(Some(&s), "t", &p10, "t2").unwrap();
        let c = apply(Some(&s10), "t", &done, "t3").unwrap();
        assert_eq!((c.status, c.progress), (ProcessingStatus::Completed, 100.0));
        assert_eq!(c.result.as_ref().unwrap().0, r#"{"ok":true}"#);
        assert_eq!(c.started_at, "t0");
        for e in [&p10, &done, &failed] {
            assert!(
                apply(Some(&c), "t", e, "t4")
                    .unwrap_err()
                    .0
                    .contains("completed")
            );
        }
        // A new run, by anyone, after a finished one.
        let again = apply(Some(&c), "other", &started, "t5").unwrap();
        let f = apply(Some(&again), "other", &failed, "t6").unwrap();
        assert_eq!(f.status, ProcessingStatus::Failed);
        assert_eq!(f.error.as_deref(), Some("boom"));
        assert!(
            apply(Some(&f), "other", &p10, "t7")
                .unwrap_err()
                .0
                .contains("failed")
        );
        let json = serde_json::to_string(&f).unwrap();
        let back: ProcessingState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
