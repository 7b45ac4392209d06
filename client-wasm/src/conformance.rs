//! `checkVector` and `checkVectorWith`: the format's test vectors (docs/FORMAT.md §9) run
//! through this wasm build, with the protocol's own runner, so the browser test proves
//! the code the client ships (compiled to wasm32) agrees with the vectors.
//!
//! `checkVector` runs the protocol's native subject compiled to wasm. `checkVectorWith`
//! runs the records and metadata of every stream vector through the client's async file
//! cipher ([`FileCipher`]) on a chosen backend (`webcrypto` or `aes-gcm`): since the
//! runner is synchronous and WebCrypto is not, the cipher first answers every question
//! the runner will ask about the vector's records and metadata (open the section, open it
//! at its known length, seal the plaintext, open and seal the metadata), then the runner
//! checks those answers through a [`Replay`] subject. Making the header (HMAC only) and
//! the link are the native subject's.
//!
//! Compiled only with the `conformance` feature, into the separate build
//! `scripts/build.sh` writes to `tests/pages/conformance/`: the published package
//! carries no test hook.

use futures_util::future::join_all;
use js_sys::Uint8Array;
use sealdrop_protocol::format::{
    FileKey, FileMetadata, Header, Layout, METADATA_NONCE_LEN, RecordPosition, SALT_LEN,
};
use sealdrop_protocol::testkit::{
    self, Case, Failure, Native, StreamCase, StreamExpect, Subject, Vector,
};
use thiserror::Error;

use crate::cipher::{Backend, FileCipher};
use crate::error::ClientError;

/// Why a vector did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The text is not a vector file (code `invalid_vector`).
    #[error("not a test vector: {0}")]
    Parse(#[from] testkit::ParseError),
    /// The implementation disagreed with the vector (code `vector_mismatch`).
    #[error("{0}")]
    Mismatch(#[from] testkit::Mismatch),
    /// No backend of that name, or this scope lacks it (code `invalid_option`).
    #[error("no cipher backend {0:?} here")]
    Backend(String),
}

impl VectorError {
    /// The stable code for `.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse(_) => "invalid_vector",
            Self::Mismatch(_) => "vector_mismatch",
            Self::Backend(_) => "invalid_option",
        }
    }
}

/// Checks one vector file's text and returns the case name.
pub(crate) fn check_vector(text: &str) -> Result<String, VectorError> {
    let vector = Vector::parse(text)?;
    testkit::check(&vector, &Native::new())?;
    Ok(vector.name)
}

/// Checks one vector file's text with its records and metadata sealed and opened by the
/// file cipher on `backend`, and returns the case name.
pub(crate) async fn check_vector_with(text: &str, backend: &str) -> Result<String, VectorError> {
    let vector = Vector::parse(text)?;
    let backend = Backend::from_name(backend)
        .filter(|b| *b == Backend::AesGcm || Backend::detect() == *b)
        .ok_or_else(|| VectorError::Backend(backend.to_owned()))?;
    let replay = match &vector.case {
        Case::Stream(case) => Replay::answer(case, backend).await,
        Case::Link(_) => Replay::default(),
    };
    testkit::check(&vector, &replay)?;
    Ok(vector.name)
}

/// A question about a vector's records or metadata, for the file cipher.
#[derive(Debug, PartialEq, Eq)]
enum Question {
    Open {
        section: Vec<u8>,
    },
    OpenKnownLength {
        section_length: u64,
        bytes: Vec<u8>,
    },
    Seal {
        plaintext: Vec<u8>,
    },
    OpenMetadata {
        sealed: Vec<u8>,
    },
    SealMetadata {
        nonce: [u8; METADATA_NONCE_LEN],
        metadata: FileMetadata,
    },
}

/// The file cipher's answer to a [`Question`].
#[derive(Debug, Clone)]
enum Answer {
    Bytes(Vec<u8>),
    Metadata(FileMetadata),
}

/// The runner's subject: the file cipher's answers, given in advance, for the record and
/// metadata questions; the native subject for the header and the link. A question asked
/// that was not answered in advance fails with `not_answered`, which no vector expects.
#[derive(Default)]
struct Replay {
    file_key: [u8; 32],
    header: Vec<u8>,
    answers: Vec<(Question, Result<Answer, Failure>)>,
}

impl Replay {
    /// Has the cipher answer every record question [`testkit::check`] may ask about `case`.
    async fn answer(case: &StreamCase, backend: Backend) -> Self {
        let mut questions = vec![Question::Open {
            section: case.ciphertext.clone(),
        }];
        match &case.expect {
            StreamExpect::Success { plaintext, .. } => questions.push(Question::Seal {
                plaintext: plaintext.clone(),
            }),
            StreamExpect::Failure {
                section_length: Some(length),
                ..
            } => questions.push(Question::OpenKnownLength {
                section_length: *length,
                bytes: case.ciphertext.clone(),
            }),
            StreamExpect::Failure { .. } => {}
        }
        match &case.expect {
            StreamExpect::Success {
                metadata: Some(m), ..
            } => {
                questions.push(Question::OpenMetadata {
                    sealed: m.sealed.clone(),
                });
                questions.push(Question::SealMetadata {
                    nonce: m.nonce,
                    metadata: FileMetadata {
                        name: m.name.clone(),
                        mime: m.mime.clone(),
                    },
                });
            }
            StreamExpect::Failure {
                metadata: Some(sealed),
                ..
            } => questions.push(Question::OpenMetadata {
                sealed: sealed.clone(),
            }),
            _ => {}
        }
        let mut answers = Vec::new();
        for question in questions {
            let answer = ask(case, backend, &question).await.map_err(failure);
            answers.push((question, answer));
        }
        Self {
            file_key: case.file_key,
            header: case.header.clone(),
            answers,
        }
    }

    fn replay(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        question: Question,
    ) -> Result<Answer, Failure> {
        let answered = (*file_key == self.file_key && header == self.header)
            .then(|| self.answers.iter().find(|(q, _)| *q == question))
            .flatten();
        match answered {
            Some((_, answer)) => answer.clone(),
            None => Err(not_answered()),
        }
    }

    fn bytes(&self, key: &[u8; 32], header: &[u8], question: Question) -> Result<Vec<u8>, Failure> {
        match self.replay(key, header, question)? {
            Answer::Bytes(bytes) => Ok(bytes),
            Answer::Metadata(_) => Err(not_answered()),
        }
    }
}

fn not_answered() -> Failure {
    Failure {
        code: "not_answered".to_owned(),
        record: None,
    }
}

impl Subject for Replay {
    fn make_header(
        &self,
        file_key: &[u8; 32],
        record_size: u32,
        salt: &[u8; SALT_LEN],
    ) -> Result<Vec<u8>, Failure> {
        Native::new().make_header(file_key, record_size, salt)
    }

    fn open_stream(
        &self,
        key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let section = section.to_vec();
        self.bytes(key, header, Question::Open { section })
    }

    fn open_known_length(
        &self,
        key: &[u8; 32],
        header: &[u8],
        section_length: u64,
        bytes: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let bytes = bytes.to_vec();
        self.bytes(
            key,
            header,
            Question::OpenKnownLength {
                section_length,
                bytes,
            },
        )
    }

    fn seal_stream(
        &self,
        key: &[u8; 32],
        header: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let plaintext = plaintext.to_vec();
        self.bytes(key, header, Question::Seal { plaintext })
    }

    fn open_metadata(
        &self,
        key: &[u8; 32],
        header: &[u8],
        sealed: &[u8],
    ) -> Result<FileMetadata, Failure> {
        let sealed = sealed.to_vec();
        match self.replay(key, header, Question::OpenMetadata { sealed })? {
            Answer::Metadata(metadata) => Ok(metadata),
            Answer::Bytes(_) => Err(not_answered()),
        }
    }

    fn seal_metadata(
        &self,
        key: &[u8; 32],
        header: &[u8],
        nonce: &[u8; METADATA_NONCE_LEN],
        metadata: &FileMetadata,
    ) -> Result<Vec<u8>, Failure> {
        let (nonce, metadata) = (*nonce, metadata.clone());
        self.bytes(key, header, Question::SealMetadata { nonce, metadata })
    }

    fn parse_link(&self, link: &str) -> Result<[u8; 32], Failure> {
        Native::new().parse_link(link)
    }

    fn encode_link(&self, file_key: &[u8; 32]) -> String {
        Native::new().encode_link(file_key)
    }
}

/// Answers one question with the file cipher, in the order of checks a reader makes
/// (header, commitment, section length, records in order, then the end of the input);
/// every record of the section is in flight at once.
async fn ask(
    case: &StreamCase,
    backend: Backend,
    question: &Question,
) -> Result<Answer, ClientError> {
    let header = Header::parse(&case.header)?;
    let cipher =
        FileCipher::with_backend(&FileKey::from_bytes(case.file_key), &header, backend).await?;
    if cipher.backend() != backend {
        return Err(ClientError::Unsupported(format!(
            "not on {}",
            backend.name()
        )));
    }
    let cipher = &cipher;
    let record_size = header.record_size();
    let bytes = match question {
        Question::Seal { plaintext } => {
            let layout = Layout::for_plaintext(record_size, plaintext.len() as u64)?;
            let records = (0..layout.record_count()).map(|i| {
                let range = layout.plaintext_range(i).unwrap_or_default();
                let bytes = Uint8Array::from(&plaintext[range.start as usize..range.end as usize]);
                let position = RecordPosition::new(i, layout.is_last(i));
                async move { cipher.seal(position, &bytes).await }
            });
            concat(join_all(records).await)?
        }
        Question::Open { section } => {
            let layout = Layout::for_section(record_size, section.len() as u64)?;
            open(cipher, layout, section).await?
        }
        Question::OpenKnownLength {
            section_length,
            bytes,
        } => {
            open(
                cipher,
                Layout::for_section(record_size, *section_length)?,
                bytes,
            )
            .await?
        }
        Question::OpenMetadata { sealed } => {
            return Ok(Answer::Metadata(cipher.open_metadata(sealed).await?));
        }
        Question::SealMetadata { nonce, metadata } => {
            cipher.seal_metadata(*nonce, metadata).await?
        }
    };
    Ok(Answer::Bytes(bytes))
}

/// Opens the records of `layout` that `bytes` holds whole, then reports what
/// [`Layout::arrived`] says of the rest.
async fn open(cipher: &FileCipher, layout: Layout, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
    let (whole, rest) = layout.arrived(bytes.len() as u64);
    let records = (0..whole).map(|i| {
        let range = layout.sealed_range(i).unwrap_or_default();
        let sealed = Uint8Array::from(&bytes[range.start as usize..range.end as usize]);
        let position = RecordPosition::new(i, layout.is_last(i));
        async move { cipher.open(position, &sealed).await }
    });
    let plaintext = concat(join_all(records).await)?;
    match rest {
        Some(error) => Err(error.into()),
        None => Ok(plaintext),
    }
}

/// The records' bytes in order, or the first record's error.
fn concat(records: Vec<Result<Uint8Array, ClientError>>) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    for record in records {
        out.extend(record?.to_vec());
    }
    Ok(out)
}

fn failure(error: ClientError) -> Failure {
    match error {
        ClientError::Format(e) => e.into(),
        other => Failure {
            code: other.code().into_owned(),
            record: None,
        },
    }
}
