//! Whole record sections (§5, §6): the whole-buffer helpers and [`StreamOpener`], the
//! incremental reader a downloader feeds as bytes arrive.

use super::{ContentKey, FileKey, FormatError, Header, Layout, open_record_into, seal_record_into};

/// Seals a whole plaintext into its record section (`L + 16 N` bytes).
///
/// For tests, vectors and small files; the uploader seals record by record with
/// [`seal_record_into`] and a [`Layout`]. `file_key` must never seal another file, and
/// `header` must be the one made for it (`key_commitment_failed` otherwise).
pub fn seal_stream(
    file_key: &FileKey,
    header: &Header,
    plaintext: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let key = file_key.derive(header)?.content;
    let layout = Layout::for_plaintext(header.record_size(), plaintext.len() as u64)?;
    let capacity = usize::try_from(layout.section_len())
        .map_err(|_| FormatError::InvalidLength("the record section does not fit in memory"))?;
    let mut out = Vec::with_capacity(capacity);
    // `chunks` yields nothing for an empty plaintext, which still has one (empty) record.
    let mut records = plaintext.chunks(header.record_size() as usize);
    for index in 0..layout.record_count() {
        let record = records.next().unwrap_or_default();
        seal_record_into(&key, header, index, layout.is_last(index), record, &mut out)?;
    }
    Ok(out)
}

/// Opens a whole record section, releasing the plaintext only once the header's commitment
/// and every record, the last included, have checked.
pub fn open_stream(
    file_key: &FileKey,
    header: &Header,
    section: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let key = file_key.derive(header)?.content;
    let mut opener = StreamOpener::new(key, *header, section.len() as u64)?;
    let mut out = Vec::with_capacity(opener.layout().plaintext_size() as usize);
    opener.feed(section, &mut out)?;
    opener.finish()?;
    Ok(out)
}

/// Opens a record section of known length record by record, in order, as its bytes
/// arrive: the downloader's reader.
///
/// The length comes first (from the file record): it fixes the layout, hence which record
/// is the last, before any byte is read (§6). Bytes may arrive in chunks of any size
/// ([`feed`](StreamOpener::feed)) or one sealed record at a time
/// ([`push_record`](StreamOpener::push_record)). Only authenticated plaintext is ever
/// released, but a record opening is not the file verifying: a consumer that writes
/// plaintext out as it opens must treat any error, or a [`finish`](StreamOpener::finish)
/// that fails, as failure of the whole file. Errors are sticky: after one, every call
/// returns it again.
#[derive(Debug)]
pub struct StreamOpener {
    key: ContentKey,
    header: Header,
    layout: Layout,
    next: u64,
    pending: Vec<u8>,
    failed: Option<FormatError>,
}

impl StreamOpener {
    /// A reader for a record section of `section_len` bytes; fails if no valid stream has
    /// that length (`invalid_length`).
    pub fn new(key: ContentKey, header: Header, section_len: u64) -> Result<Self, FormatError> {
        let layout = Layout::for_section(header.record_size(), section_len)?;
        Ok(Self {
            key,
            header,
            layout,
            next: 0,
            pending: Vec::new(),
            failed: None,
        })
    }

    /// The layout derived from the section length.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Index of the record expected next, or `None` once the last one has opened.
    pub fn next_record(&self) -> Option<u64> {
        (self.next < self.layout.record_count()).then_some(self.next)
    }

    /// Sealed length of the record expected next, or `None` once the last one has opened.
    pub fn next_sealed_len(&self) -> Option<u64> {
        self.layout.sealed_len(self.next)
    }

    /// Whether the last record has authenticated: the whole file is verified.
    pub fn is_complete(&self) -> bool {
        self.failed.is_none() && self.next == self.layout.record_count()
    }

    /// Takes the next bytes of the section, in any chunking, and appends the plaintext of
    /// every record they complete to `out`. Bytes past the end of the section are
    /// `trailing_data` naming `N`, the index a next record would have (§6).
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.check_not_failed()?;
        while !bytes.is_empty() {
            let Some(need) = self.next_sealed_len() else {
                return Err(self.past_the_end());
            };
            // `need` is at most R + 16 <= 16 MiB + 16, so it fits in a usize.
            let need = need as usize;
            if self.pending.is_empty() && bytes.len() >= need {
                // A whole record is at hand: open it without copying it first.
                let (record, rest) = bytes.split_at(need);
                self.open(record, out)?;
                bytes = rest;
            } else {
                let take = (need - self.pending.len()).min(bytes.len());
                self.pending.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.pending.len() == need {
                    let record = core::mem::take(&mut self.pending);
                    self.open(&record, out)?;
                    self.pending = record;
                    self.pending.clear();
                }
            }
        }
        Ok(())
    }

    /// Opens the next record from exactly its sealed bytes (for example one HTTP `Range`
    /// answer) and returns its plaintext.
    ///
    /// Fails with `invalid_length` if `sealed` is not exactly
    /// [`next_sealed_len`](StreamOpener::next_sealed_len) bytes or bytes fed earlier wait
    /// for the rest of a record, and with `trailing_data` (naming `N`) once the last record
    /// has opened.
    pub fn push_record(&mut self, sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
        self.check_not_failed()?;
        let Some(need) = self.next_sealed_len() else {
            return Err(self.past_the_end());
        };
        if !self.pending.is_empty() || sealed.len() as u64 != need {
            return Err(self.fail(FormatError::InvalidLength(
                "not the next record's sealed length",
            )));
        }
        let mut out = Vec::with_capacity(sealed.len());
        self.open(sealed, &mut out)?;
        Ok(out)
    }

    /// Ends the stream: `Ok` only if every record, the last included, has authenticated.
    /// A section that stopped early is `truncated`, naming the first record that did not
    /// arrive whole (§6): the one in which the input ended, or the one after a record
    /// boundary.
    pub fn finish(self) -> Result<(), FormatError> {
        self.check_not_failed()?;
        match self.next_record() {
            None => Ok(()),
            Some(record) => Err(FormatError::Truncated { record }),
        }
    }

    fn open(&mut self, sealed: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        let last = self.layout.is_last(self.next);
        match open_record_into(&self.key, &self.header, self.next, last, sealed, out) {
            Ok(()) => {
                self.next += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Bytes after the whole section: the first record not accepted is the `N`th.
    fn past_the_end(&mut self) -> FormatError {
        self.fail(FormatError::TrailingData {
            record: self.layout.record_count(),
        })
    }

    fn fail(&mut self, error: FormatError) -> FormatError {
        self.pending = Vec::new();
        self.failed = Some(error.clone());
        error
    }

    fn check_not_failed(&self) -> Result<(), FormatError> {
        match &self.failed {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}
