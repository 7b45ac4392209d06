//! A share's access records, in two capped lists: **downloads** (the life of each
//! download the share admitted: its open, completion, abandonment, lapse) and
//! **visits** (views, retried opens of a download already open, and every refusal:
//! wrong passwords, expired, revoked, and the limit's `share_busy` / `share_exhausted`).
//! The download list grows only when a download is admitted, which the share's limit
//! and slots bound; anyone with the link (and its password) can make visits as often as
//! they like, refused opens of a used-up share included, and with one list they would
//! push the records of real downloads out. Each list keeps its newest
//! [`MAX_DOWNLOAD_RECORDS`] / [`MAX_VISIT_RECORDS`], so a flood of visits never
//! flushes a download.
//!
//! Every record gets the next sequence number of the share, so the two lists merge
//! into one exact order, and the shell can persist just what is new (sequence numbers
//! from [`AccessLog::unsaved`] on) and trim each list by sequence in its store.

use std::collections::VecDeque;

use super::{ClientInfo, Outcome};

/// Download records kept per share (the newest).
pub const MAX_DOWNLOAD_RECORDS: usize = 200;
/// Visit records kept per share (the newest).
pub const MAX_VISIT_RECORDS: usize = 200;

/// Which list a record is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// The life of an admitted download.
    Download,
    /// A view of the share, a retried open, or a refusal.
    Visit,
}

impl RecordKind {
    /// The record of an open: a download's only if it admitted a new download
    /// (`admitted`); a retried open of one already open, and every refusal, the
    /// limit's included, are visits, which no caller can make push a download out.
    pub fn of_open(admitted: bool) -> Self {
        match admitted {
            true => Self::Download,
            false => Self::Visit,
        }
    }

    /// The kind named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Download, Self::Visit]
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Visit => "visit",
        }
    }

    /// How many records of this kind a share keeps.
    pub fn cap(self) -> usize {
        match self {
            Self::Download => MAX_DOWNLOAD_RECORDS,
            Self::Visit => MAX_VISIT_RECORDS,
        }
    }
}

/// One access record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// Its place in the share's sequence of records (increasing).
    pub seq: u64,
    /// The list it is kept in.
    pub kind: RecordKind,
    /// When (ms since epoch).
    pub at: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Coarse info on the client (none for a lapse, which no client made).
    pub client: Option<ClientInfo>,
}

/// The two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLog {
    downloads: VecDeque<AccessRecord>,
    visits: VecDeque<AccessRecord>,
    /// The sequence number of the next record.
    next_seq: u64,
    /// Records from this sequence number on are not persisted yet.
    unsaved_from: u64,
}

impl AccessLog {
    /// The log as stored: `records` in any order (each list keeps its newest), all of
    /// them persisted.
    pub fn restore(records: impl IntoIterator<Item = AccessRecord>) -> Self {
        let mut records: Vec<AccessRecord> = records.into_iter().collect();
        records.sort_by_key(|r| r.seq);
        let next_seq = records.last().map_or(0, |r| r.seq.saturating_add(1));
        let mut log = Self {
            next_seq,
            unsaved_from: next_seq,
            ..Self::default()
        };
        for r in records {
            log.keep(r);
        }
        log
    }

    /// Adds a record of `kind` and `outcome` at `at`.
    pub fn push(
        &mut self,
        at: u64,
        kind: RecordKind,
        outcome: Outcome,
        client: Option<ClientInfo>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keep(AccessRecord {
            seq,
            kind,
            at,
            outcome,
            client,
        });
    }

    fn keep(&mut self, record: AccessRecord) {
        let kind = record.kind;
        let list = match kind {
            RecordKind::Download => &mut self.downloads,
            RecordKind::Visit => &mut self.visits,
        };
        list.push_back(record);
        while list.len() > kind.cap() {
            list.pop_front();
        }
    }

    /// The records of one kind, oldest first.
    pub fn of(&self, kind: RecordKind) -> &VecDeque<AccessRecord> {
        match kind {
            RecordKind::Download => &self.downloads,
            RecordKind::Visit => &self.visits,
        }
    }

    /// Both lists merged, newest first: by time, then (a lapse is recorded at its
    /// lease's end, which may be before records made since) by sequence.
    pub fn newest_first(&self) -> Vec<&AccessRecord> {
        let mut all: Vec<&AccessRecord> = self.downloads.iter().chain(&self.visits).collect();
        all.sort_by_key(|r| std::cmp::Reverse((r.at, r.seq)));
        all
    }

    /// The records added since [`AccessLog::saved`] (those still kept), in sequence
    /// order.
    pub fn unsaved(&self) -> Vec<&AccessRecord> {
        let mut new: Vec<&AccessRecord> = self
            .downloads
            .iter()
            .chain(&self.visits)
            .filter(|r| r.seq >= self.unsaved_from)
            .collect();
        new.sort_by_key(|r| r.seq);
        new
    }

    /// Everything so far is persisted.
    pub fn saved(&mut self) {
        self.unsaved_from = self.next_seq;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api_error::ApiErrorCode;

    const D: RecordKind = RecordKind::Download;
    const V: RecordKind = RecordKind::Visit;

    fn client() -> Option<ClientInfo> {
        Some(ClientInfo::new(Some("DE"), Some("curl/8")))
    }

    #[test]
    fn only_an_admitted_open_is_a_download_record() {
        assert_eq!(RecordKind::of_open(true), RecordKind::Download);
        assert_eq!(RecordKind::of_open(false), RecordKind::Visit);
        for kind in [RecordKind::Download, RecordKind::Visit] {
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RecordKind::parse("view"), None);
    }

    #[test]
    fn a_flood_of_visits_keeps_every_download_and_merges_in_time_order() {
        let mut log = AccessLog::default();
        log.push(10, D, Outcome::Opened, client());
        log.push(20, D, Outcome::Completed, client());
        for n in 0..MAX_VISIT_RECORDS as u64 * 3 {
            let refused = Outcome::Refused(ApiErrorCode::WrongPassword);
            log.push(30 + n, V, refused, client());
            // A view of the used-up share is refused as an open would be; a visit.
            let exhausted = Outcome::Refused(ApiErrorCode::ShareExhausted);
            log.push(30 + n, V, exhausted, client());
        }
        assert_eq!(log.of(RecordKind::Download).len(), 2);
        assert_eq!(log.of(RecordKind::Visit).len(), MAX_VISIT_RECORDS);
        let merged = log.newest_first();
        assert_eq!(merged.len(), MAX_VISIT_RECORDS + 2);
        let outcomes: Vec<Outcome> = merged.iter().rev().take(2).map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Opened, Outcome::Completed]);
        // The oldest visit kept is the newest MAX_VISIT_RECORDS'th (two per `at`).
        assert_eq!(
            log.of(RecordKind::Visit).front().unwrap().at,
            30 + MAX_VISIT_RECORDS as u64 * 3 - MAX_VISIT_RECORDS as u64 / 2
        );
        // Downloads are capped on their own.
        for n in 0..MAX_DOWNLOAD_RECORDS as u64 {
            log.push(10_000 + n, D, Outcome::Opened, client());
        }
        assert_eq!(log.of(RecordKind::Download).len(), MAX_DOWNLOAD_RECORDS);
        assert_eq!(log.of(RecordKind::Visit).len(), MAX_VISIT_RECORDS);
        assert!(
            !log.newest_first()
                .iter()
                .any(|r| r.outcome == Outcome::Completed)
        );
    }

    #[test]
    fn a_lapse_recorded_late_merges_at_its_time() {
        let mut log = AccessLog::default();
        log.push(50, V, Outcome::Viewed, client());
        log.push(40, D, Outcome::Lapsed, None);
        let ats: Vec<u64> = log.newest_first().iter().map(|r| r.at).collect();
        assert_eq!(ats, [50, 40]);
    }

    #[test]
    fn unsaved_is_what_came_after_the_last_save_and_restore_round_trips() {
        let mut log = AccessLog::default();
        log.push(1, V, Outcome::Viewed, client());
        log.push(2, D, Outcome::Opened, client());
        assert_eq!(log.unsaved().len(), 2);
        log.saved();
        assert!(log.unsaved().is_empty());
        log.push(3, D, Outcome::Completed, client());
        let new: Vec<u64> = log.unsaved().iter().map(|r| r.seq).collect();
        assert_eq!(new, [2]);
        log.saved();
        // Stored rows come back in any order; the log continues after them.
        let rows: Vec<AccessRecord> = log.newest_first().into_iter().cloned().collect();
        let mut back = AccessLog::restore(rows);
        assert_eq!(back, log);
        back.push(4, V, Outcome::Viewed, client());
        assert_eq!(back.unsaved()[0].seq, 3);
        // More stored rows than a list keeps: the newest of each are kept.
        let many = (0..MAX_VISIT_RECORDS as u64 + 7).map(|seq| AccessRecord {
            seq,
            kind: V,
            at: seq,
            outcome: Outcome::Viewed,
            client: client(),
        });
        let restored = AccessLog::restore(many);
        assert_eq!(restored.of(RecordKind::Visit).len(), MAX_VISIT_RECORDS);
        assert_eq!(restored.of(RecordKind::Visit).front().unwrap().seq, 7);
    }
}
