//! Where a download's plaintext goes, record by record and in order, once verified.
//!
//! - **A file on disk** (`fileHandle`: a `FileSystemFileHandle` from `showSaveFilePicker`
//!   or the origin private file system). Written through its `createWritable({
//!   keepExistingData: true })`, whose data the browser commits only on `close()`. A
//!   download that stops (error, pause through the signal, a closed tab's last commit)
//!   commits what it wrote: only whole verified records, in order, so the file's length
//!   is the resume point (rounded down to a record). Resuming is calling `download` again
//!   with the same handle, for the same share: the download is kept in IndexedDB from
//!   its start ([`crate::kept`]), and a file no kept download wrote is emptied first. A handle named `<name>.part` is renamed to `<name>` (`move`)
//!   once the last record verified: until then the `.part` name marks the file partial.
//! - **A stream** (`writable`: any `WritableStream`, e.g. the writable side of a
//!   `TransformStream` whose readable a service worker answers a navigation with). Closed
//!   when the last record verified, aborted (with the error) otherwise, so the reader sees
//!   the download fail rather than a short file.
//! - **A `Blob`** (neither option): the verified ranges are kept as `Blob`s and joined at
//!   the end: for small files and tests (browsers may page large blobs to disk, but the
//!   whole file is held).

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use sealdrop_protocol::format::Layout;
use sealdrop_protocol::records::{plaintext_span, resume_from};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, WritableStream, WritableStreamDefaultWriter};

use crate::error::ClientError;
use crate::platform;
use crate::release::{into_script_copy, release};

/// The suffix that marks a file on disk as not yet complete.
const PART_SUFFIX: &str = ".part";

#[wasm_bindgen]
extern "C" {
    /// The File System Access handle. Bound here: web-sys has its `createWritable` and
    /// `move` only behind `web_sys_unstable_apis`.
    #[wasm_bindgen(js_name = FileSystemFileHandle)]
    pub(crate) type FileHandle;

    #[wasm_bindgen(method, getter)]
    fn name(this: &FileHandle) -> String;

    #[wasm_bindgen(method, catch, js_name = getFile)]
    fn get_file(this: &FileHandle) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = createWritable)]
    fn create_writable(this: &FileHandle, options: &JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = move)]
    fn rename(this: &FileHandle, name: &str) -> Result<Promise, JsValue>;
}

/// Which sink the caller asked for (`download` options).
pub(crate) enum SinkChoice {
    Blob,
    Stream(WritableStream),
    File(FileHandle),
}

/// An open sink.
pub(crate) struct Sink {
    kind: Kind,
    /// Plaintext bytes already in the sink when it opened (a resumed file).
    resumed_from: u64,
}

enum Kind {
    Blob(Array),
    Stream(WritableStreamDefaultWriter),
    File {
        handle: FileHandle,
        writer: WritableStreamDefaultWriter,
    },
}

impl Sink {
    /// Opens the sink for a file of `layout`. With `resume` (the file is this
    /// download's, kept since it began: [`crate::kept`]), a file sink keeps the whole
    /// records its file already holds, but never the last one ([`resume_from`]): nothing
    /// is complete until the last record verified in this download. Otherwise the file
    /// is emptied.
    pub(crate) async fn open(
        choice: SinkChoice,
        layout: &Layout,
        resume: bool,
    ) -> Result<Sink, ClientError> {
        let (kind, resumed_from) = match choice {
            SinkChoice::Blob => (Kind::Blob(Array::new()), 0),
            SinkChoice::Stream(stream) => (Kind::Stream(writer_of(&stream)?), 0),
            SinkChoice::File(handle) => {
                let file: Blob = call(handle.get_file()).await?.unchecked_into();
                let held = if resume { file.size() as u64 } else { 0 };
                let kept = plaintext_span(layout, &(0..resume_from(layout, held)))
                    .map_or(0, |span| span.end);
                let options = Object::new();
                set(&options, "keepExistingData", &JsValue::TRUE);
                let stream: WritableStream = call(handle.create_writable(&options))
                    .await?
                    .unchecked_into();
                let writer = writer_of(&stream)?;
                // Whatever follows the last whole record (a cut record, or bytes of
                // another file) goes; writing starts where it was.
                write(&writer, &command("truncate", "size", kept)).await?;
                write(&writer, &command("seek", "position", kept)).await?;
                (Kind::File { handle, writer }, kept)
            }
        };
        Ok(Sink { kind, resumed_from })
    }

    /// Plaintext bytes the sink held when it opened: the download starts after them.
    pub(crate) fn resumed_from(&self) -> u64 {
        self.resumed_from
    }

    /// Appends verified plaintext (the records of one range, in order, each a whole
    /// buffer the sink takes: it is [released](crate::release) once copied). Waits for
    /// the stream's backpressure, so a slow disk or reader slows the download, not memory.
    pub(crate) async fn write(&mut self, pieces: Array) -> Result<(), ClientError> {
        match &self.kind {
            Kind::Blob(blobs) => {
                let blob = Blob::new_with_u8_array_sequence(&pieces).map_err(|e| {
                    ClientError::Unsupported(format!("Blob: {}", platform::describe(&e)))
                })?;
                blobs.push(&blob);
                // The Blob holds its own copy.
                for piece in pieces {
                    release(&piece.unchecked_into::<Uint8Array>().buffer());
                }
            }
            Kind::Stream(writer) | Kind::File { writer, .. } => {
                // The writer keeps what it is given as long as it likes: it gets a
                // copy the collector frees young, and WebCrypto's output goes now.
                for piece in pieces {
                    write(writer, &into_script_copy(piece.unchecked_ref())).await?;
                }
            }
        }
        Ok(())
    }

    /// The last record verified: closes the sink. Answers the `Blob` of a blob sink.
    pub(crate) async fn complete(self, mime: &str) -> Result<Option<Blob>, ClientError> {
        match self.kind {
            Kind::Blob(blobs) => {
                let options = BlobPropertyBag::new();
                options.set_type(mime);
                Blob::new_with_blob_sequence_and_options(&blobs, &options)
                    .map(Some)
                    .map_err(|e| {
                        ClientError::Unsupported(format!("Blob: {}", platform::describe(&e)))
                    })
            }
            Kind::Stream(writer) => {
                call(Ok(writer.close())).await?;
                Ok(None)
            }
            Kind::File { handle, writer } => {
                call(Ok(writer.close())).await?;
                if let Some(name) = handle.name().strip_suffix(PART_SUFFIX) {
                    call(handle.rename(name)).await?;
                }
                Ok(None)
            }
        }
    }

    /// The download stopped before its end: a stream is aborted with `error` (its reader
    /// must not take a short file for the whole), a file keeps what was written (the
    /// resume point). Best effort: the download's own error is what the caller hears.
    pub(crate) async fn stop(self, error: &ClientError) {
        let outcome = match self.kind {
            Kind::Blob(_) => return,
            Kind::Stream(writer) => {
                let reason = JsValue::from_str(&error.to_string());
                JsFuture::from(writer.abort_with_reason(&reason)).await
            }
            Kind::File { writer, .. } => JsFuture::from(writer.close()).await,
        };
        if let Err(e) = outcome {
            platform::warn("sealdrop: the download's sink did not stop cleanly", &e);
        }
    }
}

fn writer_of(stream: &WritableStream) -> Result<WritableStreamDefaultWriter, ClientError> {
    stream
        .get_writer()
        .map_err(|e| ClientError::InvalidOption(format!("writable: {}", platform::describe(&e))))
}

/// Writes one chunk once the stream asks for more.
async fn write(writer: &WritableStreamDefaultWriter, chunk: &JsValue) -> Result<(), ClientError> {
    call(Ok(writer.ready())).await?;
    call(Ok(writer.write_with_chunk(chunk))).await?;
    Ok(())
}

/// `{ type, <field>: value }`, a `FileSystemWritableFileStream` command.
fn command(kind: &str, field: &str, value: u64) -> JsValue {
    let object = Object::new();
    set(&object, "type", &JsValue::from_str(kind));
    set(&object, field, &JsValue::from_f64(value as f64));
    object.into()
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

/// Awaits a sink call; any failure is `write_failed`.
async fn call(promise: Result<Promise, JsValue>) -> Result<JsValue, ClientError> {
    let failed = |e: JsValue| ClientError::WriteFailed(platform::describe(&e));
    JsFuture::from(promise.map_err(failed)?)
        .await
        .map_err(failed)
}
