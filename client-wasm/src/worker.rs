//! A cipher worker's side ([`crate::offload`] is the page's): `runCipherWorker()`, called
//! by `sealdrop_worker.js` in a dedicated module Worker once this wasm has loaded,
//! answers each job the page posts with the same functions the page would run itself:
//! [`seal_records`] for a part, [`open_records`] for a range. Also the jobs' message
//! shapes, both ways, so the two sides cannot disagree on them.
//!
//! A job carries everything it needs (header, keys, file or bytes), so a worker keeps
//! no state between jobs and any worker can take any job. Its errors travel as
//! `{code, detail, record}` and come back as the same [`ClientError`] where the caller
//! acts on it (a record's `record_auth_failed`, `truncated` or `trailing_data`, a
//! `read_failed`); anything else is `unsupported`, with its text.

use std::ops::Range;
use std::rc::Rc;

use futures_util::lock::Mutex;

use js_sys::{Array, Object, Reflect, Uint8Array};
use sealdrop_protocol::format::{FormatError, Header, Layout};
use wasm_bindgen::prelude::*;
use web_sys::{Blob, DedicatedWorkerGlobalScope, MessageEvent};

use crate::cipher::FileCipher;
use crate::download::open_records;
use crate::error::ClientError;
use crate::seal::seal_records;

/// The job id of a worker's "ready" message (jobs count from 1).
pub(crate) const READY: u32 = 0;

/// What the page asks a worker to do.
pub(crate) enum Job {
    /// Seal records `records` of `file`, a file of `size` plaintext bytes.
    Seal {
        file: Blob,
        size: u64,
        records: Range<u64>,
    },
    /// Open records `records` from `body`, the bytes of a record section of
    /// `section_len` bytes from `offset` on. `body`'s buffer is transferred.
    Open {
        section_len: u64,
        records: Range<u64>,
        offset: u64,
        body: Uint8Array,
    },
}

impl Job {
    /// The message for job `id` on `cipher`'s file, and what it transfers.
    pub(crate) fn message(
        &self,
        id: u32,
        cipher: &FileCipher,
    ) -> Result<(Object, Array), ClientError> {
        let (header, content, metadata) = cipher
            .crypto_keys()
            .ok_or_else(|| ClientError::Unsupported("cipher worker: not on WebCrypto".into()))?;
        let message = Object::new();
        set(&message, "job", &id.into());
        set(&message, "header", header);
        set(&message, "content", content);
        set(&message, "metadata", metadata);
        #[cfg(feature = "bench")]
        set(&message, "plain", &cipher.is_plain().into());
        let transfer = Array::new();
        match self {
            Job::Seal {
                file,
                size,
                records,
            } => {
                set(&message, "op", &"seal".into());
                set(&message, "file", file);
                set(&message, "size", &number(*size));
                set_records(&message, records);
            }
            Job::Open {
                section_len,
                records,
                offset,
                body,
            } => {
                set(&message, "op", &"open".into());
                set(&message, "sectionLen", &number(*section_len));
                set(&message, "offset", &number(*offset));
                set(&message, "body", body);
                set_records(&message, records);
                transfer.push(&body.buffer());
            }
        }
        Ok((message, transfer))
    }

    /// Reads a job from a message (the worker's side), with its id.
    fn read(data: &JsValue) -> Result<(FileCipher, Job), ClientError> {
        let header: Uint8Array = typed(data, "header")?;
        let header = Header::parse(&header.to_vec())?;
        let cipher = FileCipher::from_crypto_keys(
            header,
            typed(data, "content")?,
            typed(data, "metadata")?,
        )?;
        #[cfg(feature = "bench")]
        let cipher = cipher.plain_if(field(data, "plain").is_ok_and(|p| p.is_truthy()));
        let records = integer(data, "first")?..integer(data, "end")?;
        let job = match field(data, "op")?.as_string().as_deref() {
            Some("seal") => Job::Seal {
                file: typed(data, "file")?,
                size: integer(data, "size")?,
                records,
            },
            Some("open") => Job::Open {
                section_len: integer(data, "sectionLen")?,
                records,
                offset: integer(data, "offset")?,
                body: typed(data, "body")?,
            },
            _ => return Err(malformed("op")),
        };
        Ok((cipher, job))
    }

    /// Runs the job: the answer's fields and what it transfers.
    async fn run(self, cipher: &FileCipher) -> Result<(Object, Array), ClientError> {
        let record_size = cipher.header().record_size();
        let answer = Object::new();
        let transfer = Array::new();
        match self {
            Job::Seal {
                file,
                size,
                records,
            } => {
                let layout = Layout::for_plaintext(record_size, size)?;
                let (body, tags) = seal_records(cipher, &file, &layout, records).await?;
                set(&answer, "body", &body);
                set(&answer, "tags", &Uint8Array::from(&tags[..]));
            }
            Job::Open {
                section_len,
                records,
                offset,
                body,
            } => {
                let layout = Layout::for_section(record_size, section_len)?;
                let pieces = open_records(cipher, &layout, records, offset, &body).await?;
                for piece in pieces.iter() {
                    transfer.push(&piece.unchecked_into::<Uint8Array>().buffer());
                }
                set(&answer, "pieces", &pieces);
                // The range's buffer goes back to the page, to be filled again.
                set(&answer, "spent", &body.buffer());
                transfer.push(&body.buffer());
            }
        }
        Ok((answer, transfer))
    }
}

/// Runs this dedicated worker as a cipher worker: answers every job the page posts,
/// after telling it (job [`READY`]) that the wasm has loaded. Called by
/// `sealdrop_worker.js`; not for use by applications.
#[wasm_bindgen(js_name = runCipherWorker)]
pub fn run_cipher_worker() -> Result<(), JsValue> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global()
        .dyn_into()
        .map_err(|_| JsValue::from_str("runCipherWorker runs in a dedicated worker only"))?;
    let replies = scope.clone();
    // One job at a time, in the order they came: a part's upload starts as soon as it
    // alone is sealed, instead of every queued part sealing side by side and all of
    // them finishing together (and holding their plaintext meanwhile). The page spreads
    // jobs over the workers, so the workers are the parallelism.
    let turn = Rc::new(Mutex::new(()));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let scope = replies.clone();
        let turn = turn.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _turn = turn.lock().await;
            let data = event.data();
            let (answer, transfer) = match answer(&data).await {
                Ok(reply) => reply,
                Err(e) => (error_answer(&e), Array::new()),
            };
            set(
                &answer,
                "job",
                &field(&data, "job").unwrap_or(JsValue::NULL),
            );
            if let Err(e) = scope.post_message_with_transfer(&answer, &transfer) {
                crate::platform::warn("sealdrop: a cipher worker could not answer", &e);
            }
        });
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    let ready = Object::new();
    set(&ready, "job", &READY.into());
    scope.post_message(&ready)
}

async fn answer(data: &JsValue) -> Result<(Object, Array), ClientError> {
    let (cipher, job) = Job::read(data)?;
    job.run(&cipher).await
}

/// The job an answer is for.
pub(crate) fn job_of(data: &JsValue) -> Option<u32> {
    let id = Reflect::get(data, &"job".into()).ok()?.as_f64()?;
    (id >= 0.0 && id <= f64::from(u32::MAX) && id.fract() == 0.0).then_some(id as u32)
}

/// The answer's error as a [`ClientError`], or the answer itself.
pub(crate) fn answer_result(answer: JsValue) -> Result<JsValue, ClientError> {
    let error = Reflect::get(&answer, &"error".into()).unwrap_or(JsValue::UNDEFINED);
    if error.is_undefined() {
        return Ok(answer);
    }
    let text = |key: &str| {
        Reflect::get(&error, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let record = Reflect::get(&error, &"record".into())
        .ok()
        .and_then(|v| v.as_f64())
        .map(|r| r as u64);
    Err(WireError {
        code: text("code"),
        detail: text("detail"),
        record,
    }
    .into_error())
}

/// A worker's error as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireError {
    code: String,
    detail: String,
    record: Option<u64>,
}

impl WireError {
    fn of(error: &ClientError) -> Self {
        let detail = match error {
            ClientError::ReadFailed(d)
            | ClientError::InvalidResponse(d)
            | ClientError::Unsupported(d) => d.clone(),
            other => other.to_string(),
        };
        Self {
            code: error.code().into_owned(),
            detail,
            record: error.record(),
        }
    }

    fn into_error(self) -> ClientError {
        match (self.code.as_str(), self.record) {
            ("record_auth_failed", Some(record)) => FormatError::RecordAuthFailed { record }.into(),
            ("truncated", Some(record)) => FormatError::Truncated { record }.into(),
            ("trailing_data", Some(record)) => FormatError::TrailingData { record }.into(),
            ("invalid_length", _) => {
                FormatError::InvalidLength("a record's length does not fit its position").into()
            }
            ("read_failed", _) => ClientError::ReadFailed(self.detail),
            ("invalid_response", _) => ClientError::InvalidResponse(self.detail),
            _ => ClientError::Unsupported(self.detail),
        }
    }
}

fn error_answer(error: &ClientError) -> Object {
    let wire = WireError::of(error);
    let object = Object::new();
    set(&object, "code", &wire.code.as_str().into());
    set(&object, "detail", &wire.detail.as_str().into());
    if let Some(record) = wire.record {
        set(&object, "record", &number(record));
    }
    let answer = Object::new();
    set(&answer, "error", &object);
    answer
}

/// Field `key` of a message; `unsupported` if it is missing.
pub(crate) fn field(data: &JsValue, key: &str) -> Result<JsValue, ClientError> {
    Reflect::get(data, &key.into())
        .ok()
        .filter(|v| !v.is_undefined())
        .ok_or_else(|| malformed(key))
}

fn typed<T: JsCast>(data: &JsValue, key: &str) -> Result<T, ClientError> {
    field(data, key)?.dyn_into().map_err(|_| malformed(key))
}

fn integer(data: &JsValue, key: &str) -> Result<u64, ClientError> {
    let n = field(data, key)?.as_f64().ok_or_else(|| malformed(key))?;
    if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(malformed(key))
    }
}

fn set_records(message: &Object, records: &Range<u64>) {
    set(message, "first", &number(records.start));
    set(message, "end", &number(records.end));
}

fn number(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &key.into(), value);
}

fn malformed(key: &str) -> ClientError {
    ClientError::Unsupported(format!("cipher worker: a message without a valid `{key}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors a caller acts on come back from a worker as they left.
    #[test]
    fn errors_cross_unchanged() {
        for error in [
            ClientError::from(FormatError::RecordAuthFailed { record: 7 }),
            FormatError::Truncated { record: 3 }.into(),
            FormatError::TrailingData { record: 9 }.into(),
            ClientError::ReadFailed("the file is shorter than when the upload began".into()),
            ClientError::InvalidResponse("the plan names records past the file".into()),
            ClientError::Unsupported("WebCrypto encrypt: boom".into()),
        ] {
            assert_eq!(WireError::of(&error).into_error(), error);
        }
        let length = ClientError::from(FormatError::InvalidLength("whatever"));
        assert_eq!(WireError::of(&length).into_error().code(), "invalid_length");
        let other = WireError::of(&ClientError::Cancelled).into_error();
        assert_eq!(other.code(), "unsupported");
    }
}
