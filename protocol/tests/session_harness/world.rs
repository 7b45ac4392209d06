//! The simulated world: a fake storage, the Durable Object shell around the session
//! machine (a persisted snapshot plus an in-memory cache that eviction drops), the
//! clock, and the concurrent actors (part writers, complete, DELETE, the alarm) as small
//! processes whose every atomic action the explorer chooses the order of.
//!
//! The shell is modelled on `edge-worker/src/session/object.rs`: a request loads the
//! session (from the cache, or the snapshot after an eviction), first carries out any
//! step left due ("settle", its errors ignored), applies its own call, then carries out
//! the steps that call made due, answering the first step error. A step's storage effect
//! and the delivery of its outcome are separate actions, so an eviction between them is
//! exactly "storage did it, the shell never heard".
//!
//! What storage may do late is modelled too: a CompleteMultipartUpload storage received
//! but answered too late (the shell saw a failure) is carried out whenever the explorer
//! chooses ([`Action::Land`]), and a part write may land after its lease ran out (the
//! writer stopped the pipe, storage committed what it had). Time passes in lease-long
//! ticks, and up to the next retry of a failed step ([`Action::Wait`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sealdrop_protocol::ids::{FileId, OwnerToken};
use sealdrop_protocol::plan::{PartPlan, ProviderLimits};
use sealdrop_protocol::session::{
    CompleteStart, ListedPart, Session, Snapshot, Stage, Step, StepOutcome, StepTiming,
    UploadState, unquote,
};
use sealdrop_protocol::wire::CompletedPart;

/// The lease the harness's writers get (ms).
pub const LEASE: u64 = 1_000;
/// The session lifetime in the harness (ms): a few leases, so expiry is reachable.
pub const TTL: u64 = 10 * LEASE;
/// Start of time.
pub const T0: u64 = 1_000_000;
/// Step retries in the harness: the defaults' shape at the harness's scale, so retries,
/// stalls and the end of a completion's checks are all reachable within a session's
/// lifetime.
pub const TIMING: StepTiming = StepTiming {
    retry_ms: LEASE / 2,
    retry_cap_ms: 2 * LEASE,
    max_failures: 4,
    completion_checks: 3,
    deadline_ms: 100 * TTL,
};

/// Which side answers "which parts exist".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// The r2-binding provider: part bodies pass through the worker, fenced by the
    /// session, and the listing is the session's record.
    Session,
    /// The s3 provider: clients PUT straight to storage, which lists its parts.
    Storage,
}

// ---------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------

/// The multipart upload's life in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadLife {
    Open,
    Completed,
    Aborted,
}

/// An S3-like store holding one multipart upload and, once completed, its object.
#[derive(Debug, Clone)]
pub struct FakeStorage {
    pub life: UploadLife,
    /// The parts of the open upload: part → (ETag, size).
    pub parts: BTreeMap<u32, (String, u64)>,
    /// The completed object: its parts, in order (`None` once deleted, too).
    pub object: Option<Vec<(u32, String)>>,
    /// Completions storage received but has not carried out yet (their answer was
    /// lost to a timeout): each lands, or is refused, when the explorer says.
    pub pending: Vec<Vec<CompletedPart>>,
    next_etag: u32,
}

impl FakeStorage {
    fn new() -> Self {
        Self {
            life: UploadLife::Open,
            parts: BTreeMap::new(),
            object: None,
            pending: Vec::new(),
            next_etag: 1,
        }
    }

    /// UploadPart: a fresh ETag each time (as R2 gives), `None` once not open.
    pub fn upload_part(&mut self, part: u32, size: u64) -> Option<String> {
        if self.life != UploadLife::Open {
            return None;
        }
        let etag = format!("\"e{}\"", self.next_etag);
        self.next_etag += 1;
        self.parts.insert(part, (etag.clone(), size));
        Some(etag)
    }

    fn list(&self) -> Option<Vec<ListedPart>> {
        (self.life == UploadLife::Open).then(|| {
            self.parts
                .iter()
                .map(|(&part_number, (etag, size))| ListedPart {
                    part_number,
                    etag: etag.clone(),
                    size: *size,
                })
                .collect()
        })
    }

    /// CompleteMultipartUpload: `Refused` if a part is not held with that ETag, `Gone`
    /// if the upload is not open.
    fn complete(&mut self, parts: &[CompletedPart]) -> StepOutcome {
        if self.life != UploadLife::Open {
            return StepOutcome::Gone;
        }
        let held = parts.iter().all(|p| {
            self.parts
                .get(&p.part_number)
                .is_some_and(|(e, _)| e == &p.etag)
        });
        if !held {
            return StepOutcome::Refused;
        }
        self.object = Some(
            parts
                .iter()
                .map(|p| (p.part_number, p.etag.clone()))
                .collect(),
        );
        self.parts.clear();
        self.life = UploadLife::Completed;
        StepOutcome::Completed
    }

    /// Carries out the completion received `k`-th among those still pending.
    pub fn land(&mut self, k: usize) {
        let parts = self.pending.remove(k);
        self.complete(&parts);
    }

    /// AbortMultipartUpload: `Gone` if the upload is not open any more.
    fn abort(&mut self) -> StepOutcome {
        if self.life != UploadLife::Open {
            return StepOutcome::Gone;
        }
        self.parts.clear();
        self.life = UploadLife::Aborted;
        StepOutcome::Aborted
    }

    /// Carries a step out against storage: its effect and its true outcome.
    fn carry_out(&mut self, step: &Step, truth: Truth, session: &Session) -> StepOutcome {
        match step {
            Step::ListParts => match truth {
                Truth::Session => StepOutcome::Listed(session.recorded_listing()),
                Truth::Storage => self.list().map_or(StepOutcome::Gone, StepOutcome::Listed),
            },
            Step::Complete(parts) => self.complete(parts),
            Step::CheckObject => StepOutcome::Exists(self.object.is_some()),
            Step::Abort => self.abort(),
            Step::DeleteObject => {
                self.object = None;
                StepOutcome::Deleted
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The shell
// ---------------------------------------------------------------------------------

/// The Durable Object: what SQLite holds, and the instance's memory.
#[derive(Debug, Clone)]
pub struct Shell {
    pub persisted: Snapshot,
    pub cache: Option<Session>,
}

impl Shell {
    /// The session as the instance sees it (reloaded after an eviction).
    pub fn session(&mut self) -> &mut Session {
        let persisted = &self.persisted;
        self.cache.get_or_insert_with(|| {
            Session::restore(persisted.clone())
                .expect("the persisted snapshot restores")
                .with_timing(TIMING)
        })
    }

    /// When the step due may be retried, from what is persisted.
    pub fn retry_at(&self) -> Option<u64> {
        (self.persisted.step_failures > 0)
            .then(|| Session::restore(self.persisted.clone()).ok())
            .flatten()
            .and_then(|s| s.with_timing(TIMING).retry_at())
    }

    /// Writes the session through (every change is persisted before anything else).
    fn persist(&mut self) {
        let snap = self.session().snapshot();
        self.persisted = snap;
    }
}

// ---------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------

/// What a part writer's worker does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutStage {
    /// Ask the session to begin the write.
    Begin,
    /// Streaming under a lease (session truth) / about to PUT to storage (storage truth).
    Write { fence: u64, lease_until: u64 },
    /// Report to the session: `Some(etag)` stored, `None` failed.
    Report { fence: u64, stored: Option<String> },
}

/// Which request a request process makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `POST complete` with the parts the client knows at the time it sends it.
    Complete,
    /// `DELETE`.
    Abort,
    /// The alarm.
    Alarm,
}

/// Where a request is inside the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Carrying out steps left due before its own call.
    Settle,
    /// Its own call.
    Apply,
    /// Carrying out the steps its call made due.
    Drive,
}

/// A step taken and, once storage answered, its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carrying {
    pub step: Step,
    pub outcome: Option<StepOutcome>,
}

/// One concurrent actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proc {
    Put {
        part: u32,
        stage: PutStage,
    },
    Request {
        call: Call,
        phase: Phase,
        carrying: Option<Carrying>,
        started: bool,
    },
}

impl Proc {
    pub fn put(part: u32) -> Self {
        Proc::Put {
            part,
            stage: PutStage::Begin,
        }
    }
    pub fn request(call: Call) -> Self {
        Proc::Request {
            call,
            phase: Phase::Settle,
            carrying: None,
            started: false,
        }
    }
}

/// What a client (or the alarm) was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A part PUT: 200 with this ETag, or an error code.
    Put(u32, Result<String, String>),
    /// `complete`: 200 (with the parts claimed), or an error code.
    Complete(Result<Vec<CompletedPart>, String>),
    /// `DELETE`: 204, or an error code.
    Abort(Result<(), String>),
    /// The request died with the instance: the client saw a network error.
    Lost,
}

/// A choice the explorer makes at a process's next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The one thing this stage does.
    Go,
    /// Storage does it and the shell hears it.
    Ok,
    /// Storage does nothing and the shell sees a failure.
    Fail,
    /// Storage does it, the shell sees a failure (a lost answer).
    Lost,
    /// The writer's worker dies before its bytes land.
    Die,
    /// The writer's bytes land, then its worker dies before reporting.
    LandDie,
    /// The writer renews its lease.
    Renew,
    /// Storage receives the step but answers too late: the shell sees a failure, and
    /// storage carries it out later ([`Action::Land`]).
    Later,
}

/// One atomic action of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Process `i` takes its next action with this choice.
    Proc(usize, Choice),
    /// The instance is evicted: memory is lost, requests inside it die.
    Evict,
    /// The clock moves on.
    Tick(u64),
    /// The alarm fires (a new request process).
    Alarm,
    /// Storage carries out the `k`-th completion it received late.
    Land(usize),
    /// Time passes until the step that failed may be retried.
    Wait,
}

// ---------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct World {
    pub truth: Truth,
    pub now: u64,
    pub storage: FakeStorage,
    pub shell: Shell,
    pub procs: Vec<Option<Proc>>,
    pub answers: Vec<Answer>,
    /// The ETags the client got for its parts (what it will claim).
    pub client_etags: BTreeMap<u32, String>,
    /// Budgets for the exploration (so it ends).
    pub evictions_left: u32,
    pub ticks_left: u32,
    pub alarms_left: u32,
    /// Completions storage may receive and carry out late.
    pub laters_left: u32,
    /// Part writes that may land after their lease ran out.
    pub late_lands_left: u32,
    /// Waits for a failed step's backoff.
    pub waits_left: u32,
    /// How often the rare paths were taken (so a run can tell what it tested).
    pub seen: Seen,
}

/// Counts of the rare paths a world went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Seen {
    /// Part writes that landed after their lease ran out.
    pub late_writes: u32,
    /// Completions storage carried out after the shell gave up on their answer.
    pub late_completions: u32,
    /// Completions storage refused, after which the session was open again.
    pub refusals: u32,
    /// Steps storage answered with "no such upload".
    pub gone: u32,
    /// Objects deleted by an abort.
    pub deletions: u32,
}

impl World {
    /// A session of `parts` parts (5 MiB + 16 B each but the last) just created.
    pub fn new(truth: Truth, parts: u32) -> Self {
        // 1 KiB records, 5 MiB parts: `parts` parts, the last one record.
        let record = 1024u64;
        let per_part = (5 * 1024 * 1024u64).div_ceil(record + 16);
        let plaintext = per_part * record * u64::from(parts - 1) + 1;
        let limits = ProviderLimits::S3;
        let plan = PartPlan::new(plaintext, 1024, Some(per_part * (record + 16)), &limits).unwrap();
        assert_eq!(plan.part_count(), parts);
        let session = Session::new(
            FileId::from_random([1; 16]),
            plan,
            OwnerToken::from_random([2; 16]).hash(),
            T0,
            TTL,
        )
        .with_timing(TIMING);
        World {
            truth,
            now: T0,
            storage: FakeStorage::new(),
            shell: Shell {
                persisted: session.snapshot(),
                cache: Some(session),
            },
            procs: Vec::new(),
            answers: Vec::new(),
            client_etags: BTreeMap::new(),
            evictions_left: 0,
            ticks_left: 0,
            alarms_left: 0,
            laters_left: 0,
            late_lands_left: 0,
            waits_left: 0,
            seen: Seen::default(),
        }
    }

    pub fn size_of(&mut self, part: u32) -> u64 {
        self.shell.session().plan().size_of_part(part).unwrap()
    }

    pub fn spawn(&mut self, p: Proc) -> usize {
        self.procs.push(Some(p));
        self.procs.len() - 1
    }

    /// Runs `p` to its end choosing `Go`/`Ok` at every action (for setup).
    pub fn run_to_end(&mut self, p: Proc) {
        let i = self.spawn(p);
        while self.procs[i].is_some() {
            let choice = self
                .choices(i)
                .into_iter()
                .find(|c| matches!(c, Choice::Go | Choice::Ok))
                .expect("a straight path");
            self.apply(Action::Proc(i, choice));
        }
    }

    /// Every action possible now.
    pub fn actions(&self) -> Vec<Action> {
        let mut out = Vec::new();
        for i in 0..self.procs.len() {
            for c in self.choices(i) {
                out.push(Action::Proc(i, c));
            }
        }
        if self.evictions_left > 0 && self.shell.cache.is_some() {
            out.push(Action::Evict);
        }
        if self.ticks_left > 0 {
            out.push(Action::Tick(LEASE));
        }
        if self.alarms_left > 0 {
            out.push(Action::Alarm);
        }
        out.extend((0..self.storage.pending.len()).map(Action::Land));
        if self.waits_left > 0 && self.shell.retry_at().is_some_and(|at| at > self.now) {
            out.push(Action::Wait);
        }
        out
    }

    /// The choices process `i` has at its next action.
    pub fn choices(&self, i: usize) -> Vec<Choice> {
        use Choice::*;
        match &self.procs[i] {
            None => vec![],
            Some(Proc::Put { stage, .. }) => match stage {
                PutStage::Begin | PutStage::Report { .. } => vec![Go],
                PutStage::Write { lease_until, .. } => match self.truth {
                    Truth::Storage => vec![Ok],
                    Truth::Session if self.now < *lease_until => {
                        vec![Ok, Fail, Lost, Die, LandDie, Renew]
                    }
                    // The writer stopped once its lease ran out, but what storage was
                    // committing may still land.
                    Truth::Session if self.late_lands_left > 0 => {
                        vec![Fail, Die, Ok, Lost, LandDie]
                    }
                    Truth::Session => vec![Fail, Die],
                },
            },
            Some(Proc::Request { carrying, .. }) => match carrying {
                Some(Carrying {
                    step,
                    outcome: None,
                }) => match step {
                    Step::ListParts | Step::CheckObject => vec![Ok, Fail],
                    Step::Complete(_) if self.laters_left > 0 => vec![Ok, Fail, Lost, Later],
                    Step::Complete(_) | Step::Abort | Step::DeleteObject => {
                        vec![Ok, Fail, Lost]
                    }
                },
                _ => vec![Go],
            },
        }
    }

    /// Applies one action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Proc(i, choice) => self.step_proc(i, choice),
            Action::Evict => {
                self.evictions_left = self.evictions_left.saturating_sub(1);
                self.shell.cache = None;
                for p in &mut self.procs {
                    if let Some(Proc::Request { started: true, .. }) = p {
                        *p = None;
                        self.answers.push(Answer::Lost);
                    }
                }
            }
            Action::Tick(ms) => {
                self.ticks_left = self.ticks_left.saturating_sub(1);
                self.now += ms;
            }
            Action::Alarm => {
                self.alarms_left = self.alarms_left.saturating_sub(1);
                self.spawn(Proc::request(Call::Alarm));
            }
            Action::Land(k) => {
                self.storage.land(k);
                if self.storage.life == UploadLife::Completed {
                    self.seen.late_completions += 1;
                }
            }
            Action::Wait => {
                self.waits_left = self.waits_left.saturating_sub(1);
                if let Some(at) = self.shell.retry_at() {
                    self.now = self.now.max(at);
                }
            }
        }
    }

    fn step_proc(&mut self, i: usize, choice: Choice) {
        let Some(p) = self.procs[i].take() else {
            return;
        };
        self.procs[i] = match p {
            Proc::Put { part, stage } => self.step_put(part, stage, choice),
            Proc::Request {
                call,
                phase,
                carrying,
                ..
            } => self.step_request(call, phase, carrying, choice),
        };
    }

    fn step_put(&mut self, part: u32, stage: PutStage, choice: Choice) -> Option<Proc> {
        let size = self.size_of(part);
        let now = self.now;
        let put = |stage| Some(Proc::Put { part, stage });
        match (stage, self.truth) {
            (PutStage::Begin, Truth::Storage) => put(PutStage::Write {
                fence: 0,
                lease_until: u64::MAX,
            }),
            (PutStage::Write { .. }, Truth::Storage) => {
                let answer = self.storage.upload_part(part, size);
                if let Some(etag) = &answer {
                    self.client_etags.insert(part, etag.clone());
                }
                self.answers.push(Answer::Put(
                    part,
                    answer.ok_or_else(|| "NoSuchUpload".to_owned()),
                ));
                None
            }
            (PutStage::Begin, Truth::Session) => {
                let result = self.shell.session().begin_part(part, size, now, LEASE);
                self.shell.persist();
                match result {
                    Ok(grant) => put(PutStage::Write {
                        fence: grant.fence,
                        lease_until: grant.lease_until,
                    }),
                    Err(e) => {
                        self.answers
                            .push(Answer::Put(part, Err(e.code.as_str().to_owned())));
                        None
                    }
                }
            }
            (PutStage::Write { fence, lease_until }, Truth::Session) => match choice {
                Choice::Ok | Choice::Lost | Choice::LandDie => {
                    if now >= lease_until {
                        self.late_lands_left = self.late_lands_left.saturating_sub(1);
                        self.seen.late_writes += 1;
                    }
                    let landed = self.storage.upload_part(part, size);
                    match choice {
                        Choice::LandDie => {
                            self.answers.push(Answer::Lost);
                            None
                        }
                        Choice::Lost => put(PutStage::Report {
                            fence,
                            stored: None,
                        }),
                        _ => put(PutStage::Report {
                            fence,
                            stored: landed,
                        }),
                    }
                }
                Choice::Renew => {
                    let result = self.shell.session().renew_part(part, fence, now, LEASE);
                    self.shell.persist();
                    match result {
                        Ok(grant) => put(PutStage::Write {
                            fence,
                            lease_until: grant.lease_until,
                        }),
                        // Told to stop: nothing lands, and it reports the failure.
                        Err(_) => put(PutStage::Report {
                            fence,
                            stored: None,
                        }),
                    }
                }
                Choice::Die => {
                    self.answers.push(Answer::Lost);
                    None
                }
                _ => put(PutStage::Report {
                    fence,
                    stored: None,
                }),
            },
            (PutStage::Report { fence, stored }, Truth::Session) => {
                let s = self.shell.session();
                let result = match &stored {
                    Some(etag) => s
                        .finish_part(part, fence, etag.clone(), size, now)
                        .map(|()| etag.clone()),
                    // The shell answers its own 502 when the session is still open.
                    None => s
                        .fail_part(part, fence, now)
                        .and_then(|()| Err(sealdrop_protocol::api_error::ApiError::storage())),
                };
                self.shell.persist();
                if let Ok(etag) = &result {
                    self.client_etags.insert(part, etag.clone());
                    // Invariant: a 200 for a part means the session recorded what
                    // storage answered (which `check` holds against storage's bytes).
                    let recorded = self.shell.session().recorded_parts()[&part].etag.clone();
                    assert_eq!(&recorded, etag);
                }
                self.answers.push(Answer::Put(
                    part,
                    result.map_err(|e| e.code.as_str().to_owned()),
                ));
                None
            }
            (PutStage::Report { .. }, Truth::Storage) => unreachable!("no reports in s3 mode"),
        }
    }

    fn step_request(
        &mut self,
        call: Call,
        phase: Phase,
        carrying: Option<Carrying>,
        choice: Choice,
    ) -> Option<Proc> {
        match carrying {
            // Storage acts on the step in flight (the await).
            Some(Carrying {
                step,
                outcome: None,
            }) => {
                let session = self.shell.session().clone();
                let outcome = match (choice, &step) {
                    (Choice::Ok, _) => self.storage.carry_out(&step, self.truth, &session),
                    (Choice::Lost, _) => {
                        self.storage.carry_out(&step, self.truth, &session);
                        StepOutcome::Failed
                    }
                    (Choice::Later, Step::Complete(parts)) => {
                        self.laters_left -= 1;
                        self.storage.pending.push(parts.clone());
                        StepOutcome::Failed
                    }
                    _ => StepOutcome::Failed,
                };
                Some(Proc::Request {
                    call,
                    phase,
                    carrying: Some(Carrying {
                        step,
                        outcome: Some(outcome),
                    }),
                    started: true,
                })
            }
            // The shell resumes: delivers the outcome, then runs on to the next await.
            Some(Carrying {
                outcome: Some(outcome),
                ..
            }) => {
                let before = self.shell.persisted.stage;
                match outcome {
                    StepOutcome::Gone => self.seen.gone += 1,
                    StepOutcome::Deleted => self.seen.deletions += 1,
                    _ => {}
                }
                let result = self.shell.session().on_step(outcome, self.now);
                self.shell.persist();
                if before == Stage::CheckingRefused && self.shell.persisted.stage == Stage::Open {
                    self.seen.refusals += 1;
                    // A refused completion drops every record that is not what storage
                    // holds, so the client sends exactly those parts again.
                    if let Err(e) = self.records_match_storage(false) {
                        panic!("after a refused completion: {e}");
                    }
                }
                match (result, &phase) {
                    (Err(e), Phase::Drive) => self.finish(&call, Err(e.code.as_str())),
                    // Settling: errors are not this request's.
                    _ => self.run_sync(call, phase),
                }
            }
            None => self.run_sync(call, phase),
        }
    }

    /// Runs a request inside the object up to its next await (a step taken) or its end,
    /// as the Durable Object does: nothing else runs in between.
    fn run_sync(&mut self, call: Call, mut phase: Phase) -> Option<Proc> {
        let now = self.now;
        loop {
            match phase {
                Phase::Settle | Phase::Drive => match self.shell.session().take_step(now) {
                    Ok(Some(step)) => {
                        return Some(Proc::Request {
                            call,
                            phase,
                            carrying: Some(Carrying {
                                step,
                                outcome: None,
                            }),
                            started: true,
                        });
                    }
                    Ok(None) if phase == Phase::Settle => phase = Phase::Apply,
                    Ok(None) => return self.finish(&call, Ok(())),
                    // Another request carries the step out: this call decides itself.
                    Err(_) if phase == Phase::Settle && call != Call::Alarm => {
                        phase = Phase::Apply;
                    }
                    Err(e) => return self.finish(&call, Err(e.code.as_str())),
                },
                Phase::Apply => {
                    let claim = self.claim();
                    let s = self.shell.session();
                    let result = match &call {
                        Call::Complete => s
                            .request_complete(&claim, now)
                            .map(|started| started == CompleteStart::AlreadyCompleted),
                        Call::Abort => s.request_abort().map(|()| false),
                        Call::Alarm => {
                            s.on_alarm(now);
                            Ok(false)
                        }
                    };
                    self.shell.persist();
                    match result {
                        Ok(true) => return self.finish(&call, Ok(())),
                        Ok(false) => phase = Phase::Drive,
                        Err(e) => return self.finish(&call, Err(e.code.as_str())),
                    }
                }
            }
        }
    }

    /// The claim the client sends: every part with the ETag it was answered.
    fn claim(&self) -> Vec<CompletedPart> {
        self.client_etags
            .iter()
            .map(|(&part_number, etag)| CompletedPart {
                part_number,
                etag: etag.clone(),
            })
            .collect()
    }

    /// A request ends: its answer, from the state it leaves.
    fn finish(&mut self, call: &Call, result: Result<(), &str>) -> Option<Proc> {
        let state = self.shell.session().state();
        let answer = match call {
            Call::Complete => Answer::Complete(match result {
                Ok(()) if state == UploadState::Completed => {
                    Ok(self.shell.session().completed_parts().unwrap().to_vec())
                }
                Ok(()) => Err(format!("no error but {state:?}")),
                Err(code) => Err(code.to_owned()),
            }),
            Call::Abort => Answer::Abort(match result {
                Ok(()) if state == UploadState::Aborted => Ok(()),
                Ok(()) => Err(format!("no error but {state:?}")),
                Err(code) => Err(code.to_owned()),
            }),
            Call::Alarm => return None,
        };
        self.answers.push(answer);
        None
    }

    /// Every process is done (or waits for nothing).
    pub fn is_quiet(&self) -> bool {
        self.procs.iter().all(Option::is_none)
    }

    /// Runs the alarm (with storage answering) until no step is due, letting time pass
    /// to each retry: a committed intent must finish once storage works again. Evicts
    /// first: whatever was in memory is gone by the time the alarm fires.
    pub fn settle_with_alarms(&mut self) {
        self.shell.cache = None;
        for _ in 0..20 {
            let session = self.shell.session();
            if session.due_step().is_none() && !session.is_expired(self.now) {
                return;
            }
            if let Some(at) = session.retry_at() {
                self.now = self.now.max(at);
            }
            self.run_to_end(Proc::request(Call::Alarm));
        }
        panic!(
            "steps still due after 20 alarms: {:?}",
            self.shell.persisted
        );
    }

    /// The end of a path: storage carries out (or refuses) every completion it holds,
    /// the alarm settles what is due, then the session expires and its alarm runs. By
    /// then the session and storage must agree exactly: completed with the object made of
    /// its parts, or aborted with neither the upload nor any object left.
    pub fn converge(&mut self) -> Result<(), String> {
        while !self.storage.pending.is_empty() {
            self.storage.land(0);
        }
        self.settle_with_alarms();
        self.check()?;
        // Storage completed behind the open session's back: a client that retries
        // `complete` (whatever ETags it claims) must be answered the record, not 502s.
        let parts = self.shell.session().plan().part_count() as usize;
        if self.shell.persisted.stage == Stage::Open
            && self.storage.object.is_some()
            && self.client_etags.len() == parts
        {
            for _ in 0..5 {
                if self.shell.persisted.stage != Stage::Open {
                    break;
                }
                self.run_to_end(Proc::request(Call::Complete));
                self.settle_with_alarms();
                self.check()?;
            }
            if self.shell.persisted.stage != Stage::Completed {
                return Err(format!(
                    "storage completed the upload, but retried completes left the session {:?}",
                    self.shell.persisted.stage
                ));
            }
        }
        self.now = self.now.max(self.shell.persisted.expires_at);
        self.settle_with_alarms();
        self.check()?;
        match self.shell.persisted.stage {
            Stage::Completed | Stage::Aborted => {}
            other => return Err(format!("converged to {other:?}")),
        }
        if self.shell.persisted.stage == Stage::Aborted && self.storage.life == UploadLife::Open {
            return Err("aborted over an open upload".into());
        }
        Ok(())
    }

    /// Whether every recorded part is what storage holds (`lapsed_ok`: or has a lapsed
    /// write, which may have landed over it), while storage has the upload open.
    fn records_match_storage(&self, lapsed_ok: bool) -> Result<(), String> {
        let snap = &self.shell.persisted;
        if self.storage.life != UploadLife::Open {
            return Ok(());
        }
        for (n, r) in &snap.recorded {
            let lapsed = lapsed_ok && snap.lapsed.iter().any(|(part, _)| part == n);
            match self.storage.parts.get(n) {
                Some((etag, _)) if etag == &r.etag => {}
                _ if lapsed => {}
                other => {
                    return Err(format!(
                        "part {n} recorded {} but storage has {other:?}",
                        r.etag
                    ));
                }
            }
        }
        Ok(())
    }

    /// A compact description for failure messages and state hashing.
    pub fn key(&self) -> String {
        let mut k = String::new();
        let _ = write!(
            k,
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}{}{}{}{}{}",
            self.now,
            self.storage,
            self.shell.persisted,
            self.shell.cache,
            self.procs,
            self.answers,
            self.client_etags,
            self.evictions_left,
            self.ticks_left,
            self.alarms_left,
            self.laters_left,
            self.late_lands_left,
            self.waits_left
        );
        k
    }

    /// The invariants of PLAN.md, checked after every action. Storage may complete behind
    /// an open session's back (a completion that landed late), but only with the parts
    /// the session remembers as pending; a lapsed part write may land over a record.
    pub fn check(&self) -> Result<(), String> {
        let snap = &self.shell.persisted;
        let st = &self.storage;
        let object_is_pending = st.life == UploadLife::Completed
            && st.object.as_ref().is_some_and(|object| {
                object.len() == snap.pending_completion.len()
                    && object
                        .iter()
                        .zip(&snap.pending_completion)
                        .all(|((n, e), p)| *n == p.part_number && *e == p.etag)
            });
        match snap.stage {
            // Open ⇒ storage has the multipart upload, or completed the one pending.
            Stage::Open | Stage::Listing if st.life != UploadLife::Open && !object_is_pending => {
                return Err(format!(
                    "session {:?} over storage {:?} (pending {:?}, object {:?})",
                    snap.stage, st.life, snap.pending_completion, st.object
                ));
            }
            Stage::Aborting if st.life == UploadLife::Completed && !object_is_pending => {
                return Err("aborting over an object it does not know of".into());
            }
            Stage::AbortingObject if st.life == UploadLife::Open => {
                return Err("deleting the object of an open upload".into());
            }
            // Completed ⇒ storage has the object made of exactly the recorded parts.
            Stage::Completed => {
                let parts: Vec<(u32, String)> = snap
                    .completion
                    .iter()
                    .map(|p| (p.part_number, p.etag.clone()))
                    .collect();
                if st.object.as_ref() != Some(&parts) {
                    return Err(format!(
                        "completed {parts:?} but storage has {:?}",
                        st.object
                    ));
                }
            }
            // Aborted ⇒ storage has no parts and no object.
            Stage::Aborted if st.life == UploadLife::Open || !st.parts.is_empty() => {
                return Err(format!("aborted but storage upload is {:?}", st.life));
            }
            Stage::Aborted if st.object.is_some() => {
                return Err("aborted but the object exists".into());
            }
            _ => {}
        }
        // A recorded ETag differs from storage's only where a lapsed write may have
        // landed over it.
        if snap.stage == Stage::Open {
            self.records_match_storage(true)?;
        }
        // Answers agree with each other and with storage.
        let completed = self.answers.iter().find_map(|a| match a {
            Answer::Complete(Ok(parts)) => Some(parts),
            _ => None,
        });
        let aborted = self
            .answers
            .iter()
            .any(|a| matches!(a, Answer::Abort(Ok(()))));
        if completed.is_some() && aborted {
            return Err("one client was told completed and another aborted".into());
        }
        if let Some(parts) = completed {
            let object = st
                .object
                .as_ref()
                .ok_or("a 200 complete without an object")?;
            let claimed: Vec<(u32, &str)> = parts
                .iter()
                .map(|p| (p.part_number, unquote(&p.etag)))
                .collect();
            let held: Vec<(u32, &str)> = object.iter().map(|(n, e)| (*n, unquote(e))).collect();
            if claimed != held {
                return Err(format!(
                    "a 200 complete for {claimed:?} but storage has {held:?}"
                ));
            }
        }
        if aborted && (st.life == UploadLife::Open || st.object.is_some()) {
            return Err("a 204 DELETE but storage still has the upload or an object".into());
        }
        for a in &self.answers {
            if let Answer::Complete(Err(e)) | Answer::Abort(Err(e)) = a
                && e.starts_with("no error but")
            {
                return Err(e.clone());
            }
        }
        Ok(())
    }
}
