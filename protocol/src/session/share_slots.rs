//! The share list of one file: a slot per share object that may exist, so that the
//! file's deletion purges every one, and at most [`MAX_SHARES_PER_FILE`] of them.
//!
//! A create reserves its slot **pending** before it makes the share's object, and
//! confirms it once the object answered ([`ShareSlots::made`]). A create that never
//! finishes (its object's write failed, the answer was lost, the client gave up its
//! idempotent retries) leaves its slot pending; a pending slot is never dropped on the
//! creator's word alone, since with an idempotency key a racing twin of the request may
//! be making the same object at that moment. Instead, once the file is at the cap, a
//! slot pending for [`PENDING_SHARE_MS`] is **checked**: its object is asked, in one
//! atomic call, whether it holds a share. One that does is confirmed (its create
//! succeeded, the confirmation was lost); one that does not frees the slot, unless a
//! create reserved it again meanwhile (a retry or a twin renews the reservation).
//! The object is not purged: it holds nothing, and a create that reaches it later (a
//! late twin, a retry, one slower than the bound) makes the share and then confirms
//! it, which takes a slot again, even past the cap: a share that exists always has a
//! slot (purging it there could destroy the share a twin was just answered), and only
//! a create that outlived [`PENDING_SHARE_MS`] can pass the cap, by one. So every
//! object that holds a share has a slot, whatever the order of the calls, and two
//! simultaneous creates with one key (one object, made once) take one slot.
//!
//! No clock and no I/O: the session feeds the time, its shell talks to the objects.

use std::collections::{BTreeMap, BTreeSet};

use crate::api_error::{ApiError, ApiErrorCode};

/// Most shares one file may have (revoked ones included): each is an object the
/// file's deletion must purge.
pub const MAX_SHARES_PER_FILE: usize = 100;

/// How long a slot may stay pending before a create at the cap asks its object
/// whether it was made: far longer than a create takes (two object calls) and than
/// the platform keeps a request waiting (100 s), so a create in flight is left alone.
pub const PENDING_SHARE_MS: u64 = 5 * 60 * 1000;

/// What reserving a slot answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Reserve {
    /// The slot is the share's (pending until [`ShareSlots::made`]): make its object.
    Reserved,
    /// The file is at the cap, and the slot of share `id`, pending since `since`, is
    /// old: ask its object whether it holds a share, answer [`ShareSlots::checked`],
    /// then reserve again.
    Check {
        /// The pending share (its token's random part).
        id: String,
        /// When it was reserved, as the check must report it.
        since: u64,
    },
}

/// The share list: every share's slot, and when the pending ones were reserved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareSlots {
    /// Every slot (tokens' random parts), pending or confirmed.
    ids: BTreeSet<String>,
    /// The pending slots (a subset of `ids`) and when each was last reserved.
    pending: BTreeMap<String, u64>,
}

impl ShareSlots {
    /// The list as stored: `ids`, of which `pending` (with their reservation times) are
    /// not confirmed. `None` if a pending slot is not in `ids`.
    pub fn restore(ids: BTreeSet<String>, pending: BTreeMap<String, u64>) -> Option<Self> {
        pending
            .keys()
            .all(|id| ids.contains(id))
            .then_some(Self { ids, pending })
    }

    /// Every slot, pending or confirmed.
    pub fn ids(&self) -> &BTreeSet<String> {
        &self.ids
    }

    /// The pending slots and when each was reserved.
    pub fn pending(&self) -> &BTreeMap<String, u64> {
        &self.pending
    }

    /// Whether there is no slot.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Reserves the slot of share `id` at `now_ms`. A slot it has already is answered
    /// again (an idempotent create's retry or twin; a pending one's reservation is
    /// renewed, so no check frees it under the create now in flight). At the cap: the
    /// oldest slot pending for [`PENDING_SHARE_MS`] to check, else `409
    /// too_many_shares`.
    pub fn reserve(&mut self, id: &str, now_ms: u64) -> Result<Reserve, ApiError> {
        if self.ids.contains(id) {
            if let Some(since) = self.pending.get_mut(id) {
                *since = (*since).max(now_ms);
            }
            return Ok(Reserve::Reserved);
        }
        if self.ids.len() < MAX_SHARES_PER_FILE {
            self.ids.insert(id.to_owned());
            self.pending.insert(id.to_owned(), now_ms);
            return Ok(Reserve::Reserved);
        }
        let stale = self
            .pending
            .iter()
            .filter(|(_, since)| since.saturating_add(PENDING_SHARE_MS) <= now_ms)
            .min_by_key(|(id, since)| (**since, *id));
        match stale {
            Some((id, since)) => Ok(Reserve::Check {
                id: id.clone(),
                since: *since,
            }),
            None => Err(too_many_shares()),
        }
    }

    /// Share `id`'s object holds the share now (its create answered): its slot is
    /// confirmed. If a check freed the slot before the object was made (a create slower
    /// than [`PENDING_SHARE_MS`]), it takes one again, even past the cap: a share that
    /// exists is always listed, so the file's deletion purges it.
    pub fn made(&mut self, id: &str) {
        self.pending.remove(id);
        self.ids.insert(id.to_owned());
    }

    /// The answer to [`Reserve::Check`]: share `id`'s object holds a share (`made`: the
    /// slot is confirmed, as [`ShareSlots::made`] does, taking it again if another
    /// check's earlier "nothing" freed it) or nothing (the slot is freed, if it is still
    /// pending since `since`: a create that renewed it is in flight).
    pub fn checked(&mut self, id: &str, since: u64, made: bool) {
        if made {
            self.made(id);
        } else if self.pending.get(id) == Some(&since) {
            self.pending.remove(id);
            self.ids.remove(id);
        }
    }

    /// Forgets share `id`, whose object holds nothing (purged, or never made).
    pub fn drop(&mut self, id: &str) {
        self.pending.remove(id);
        self.ids.remove(id);
    }

    /// The first share in order, to purge next.
    pub fn first(&self) -> Option<&String> {
        self.ids.first()
    }

    /// Forgets the first share in order (purged).
    pub fn pop_first(&mut self) {
        if let Some(id) = self.ids.pop_first() {
            self.pending.remove(&id);
        }
    }
}

/// `409 too_many_shares`.
pub fn too_many_shares() -> ApiError {
    ApiError::new(
        ApiErrorCode::TooManyShares,
        format!("a file has at most {MAX_SHARES_PER_FILE} shares"),
    )
}

#[cfg(test)]
mod tests {
    //! The slot rules alone, then every interleaving of creates (twins with one key, a
    //! create that dies, a slow one) with the clock, against a model of the share
    //! objects, each run checked for what the list promises.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::api_error::ApiErrorCode;
    use crate::explore::{Interleaving, explore};

    const T0: u64 = 1_764_000_000_000;

    /// A list at the cap less `free`, every share made and confirmed.
    fn filled(free: usize) -> ShareSlots {
        let mut slots = ShareSlots::default();
        for n in 0..MAX_SHARES_PER_FILE - free {
            assert_eq!(
                slots.reserve(&format!("old{n:03}"), T0),
                Ok(Reserve::Reserved)
            );
            slots.made(&format!("old{n:03}"));
        }
        slots
    }

    #[test]
    fn two_checks_of_one_slot_answered_nothing_then_made_keep_the_share_listed() {
        // Two creates at the cap both check the same stale slot; the first check reads
        // the object before a slow create made it, the second after. The share exists,
        // so it must keep a slot even if its own create dies before confirming.
        let mut slots = filled(1);
        assert_eq!(slots.reserve("slow", T0), Ok(Reserve::Reserved));
        let later = T0 + PENDING_SHARE_MS;
        let check = Reserve::Check {
            id: "slow".into(),
            since: T0,
        };
        assert_eq!(slots.reserve("c1", later), Ok(check.clone()));
        assert_eq!(slots.reserve("c2", later), Ok(check));
        slots.checked("slow", T0, false);
        assert!(
            !slots.ids().contains("slow"),
            "the first check freed the slot"
        );
        slots.checked("slow", T0, true);
        assert!(
            slots.ids().contains("slow"),
            "the second check saw the share: listed again"
        );
        assert!(!slots.pending().contains_key("slow"), "and confirmed");
    }

    #[test]
    fn a_create_reserves_pending_then_confirms_and_a_retry_renews_it() {
        let mut slots = filled(2);
        assert_eq!(slots.reserve("a", T0), Ok(Reserve::Reserved));
        assert_eq!(slots.pending().get("a"), Some(&T0));
        // Its retry (or twin) renews the reservation; no second slot.
        assert_eq!(slots.reserve("a", T0 + 5), Ok(Reserve::Reserved));
        assert_eq!(slots.pending().get("a"), Some(&(T0 + 5)));
        assert_eq!(slots.ids().len(), MAX_SHARES_PER_FILE - 1);
        slots.made("a");
        assert!(slots.pending().is_empty());
        // A confirmed slot is not renewed into a pending one.
        assert_eq!(slots.reserve("a", T0 + 6), Ok(Reserve::Reserved));
        assert!(slots.pending().is_empty());
        assert_eq!(slots.reserve("b", T0), Ok(Reserve::Reserved));
        assert_eq!(code(slots.reserve("c", T0)), ApiErrorCode::TooManyShares);
    }

    #[test]
    fn at_the_cap_the_oldest_stale_pending_slot_is_checked() {
        let mut slots = filled(3);
        for (id, at) in [("b", T0 + 10), ("a", T0 + 20), ("c", T0 + 30)] {
            assert_eq!(slots.reserve(id, at), Ok(Reserve::Reserved));
        }
        // None pending long enough: refused.
        let early = T0 + 10 + PENDING_SHARE_MS - 1;
        assert_eq!(
            code(slots.reserve("new", early)),
            ApiErrorCode::TooManyShares
        );
        let late = T0 + 30 + PENDING_SHARE_MS;
        let check = |id: &str, since| {
            Ok(Reserve::Check {
                id: id.into(),
                since,
            })
        };
        assert_eq!(slots.reserve("new", late), check("b", T0 + 10));
        // Its object holds the share (the confirmation was lost): confirmed, kept.
        slots.checked("b", T0 + 10, true);
        assert!(slots.ids().contains("b"));
        assert_eq!(slots.reserve("new", late), check("a", T0 + 20));
        // A retry renewed "a" while its object was asked: the answer is stale.
        assert_eq!(slots.reserve("a", late), Ok(Reserve::Reserved));
        slots.checked("a", T0 + 20, false);
        assert!(slots.ids().contains("a"));
        assert_eq!(slots.reserve("new", late), check("c", T0 + 30));
        slots.checked("c", T0 + 30, false);
        assert!(!slots.ids().contains("c"));
        assert_eq!(slots.reserve("new", late), Ok(Reserve::Reserved));
        // "c" is made after all (a create slower than the bound): listed again, past
        // the cap, so that deletion purges it.
        slots.made("c");
        assert_eq!(slots.ids().len(), MAX_SHARES_PER_FILE + 1);
        // Purged or dropped shares leave no pending row behind.
        slots.drop("a");
        slots.pop_first();
        let back = ShareSlots::restore(slots.ids().clone(), slots.pending().clone());
        assert_eq!(back.as_ref(), Some(&slots));
        assert!(slots.pending().keys().all(|id| slots.ids().contains(id)));
        let stray = BTreeMap::from([("stray".to_owned(), T0)]);
        assert_eq!(ShareSlots::restore(slots.ids().clone(), stray), None);
    }

    fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ApiErrorCode {
        r.unwrap_err().code
    }

    // -----------------------------------------------------------------------------
    // Races: the file's session, the share objects (made or not) and the clock
    // -----------------------------------------------------------------------------

    /// Where one create is: the steps of the session's shell, one call at a time.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Create {
        Reserve,
        /// Asking share `id`'s object whether it was made.
        Ask(String, u64),
        /// Answering the check.
        Checked(String, u64, bool),
        /// Making its object (an idempotent create: made once, answered alike).
        Make,
        /// Confirming its slot.
        Confirm,
        /// Answered: `Ok` (201, the share) or the refusal.
        Done(Result<(), ApiErrorCode>),
    }

    #[derive(Debug, Clone)]
    struct Creator {
        id: &'static str,
        at: Create,
        /// It dies (the request is lost) once it reaches this step.
        dies_at: Option<Create>,
    }

    #[derive(Debug, Clone)]
    enum Actor {
        Creator(Creator),
        /// The clock jumps past the pending bound, once.
        Tick,
        Ticked,
    }

    #[derive(Debug, Clone)]
    struct World {
        slots: ShareSlots,
        /// Share objects: whether each holds a share.
        objects: BTreeMap<String, bool>,
        now: u64,
        actors: Vec<Actor>,
    }

    impl World {
        fn new(slots: ShareSlots, actors: Vec<Actor>) -> Self {
            let objects = slots.ids().iter().map(|id| (id.clone(), true)).collect();
            Self {
                slots,
                objects,
                now: T0,
                actors,
            }
        }

        fn runnable(&self) -> Vec<usize> {
            (0..self.actors.len())
                .filter(|&i| match &self.actors[i] {
                    Actor::Creator(c) => {
                        !matches!(c.at, Create::Done(_)) && c.dies_at.as_ref() != Some(&c.at)
                    }
                    Actor::Tick => true,
                    Actor::Ticked => false,
                })
                .collect()
        }

        /// Runs actor `i`'s next step.
        fn step(&mut self, i: usize) {
            let Actor::Creator(c) = &self.actors[i] else {
                self.now += PENDING_SHARE_MS;
                self.actors[i] = Actor::Ticked;
                return;
            };
            let id = c.id;
            let next = match c.at.clone() {
                Create::Reserve => match self.slots.reserve(id, self.now) {
                    Ok(Reserve::Reserved) => Create::Make,
                    Ok(Reserve::Check { id, since }) => Create::Ask(id, since),
                    Err(e) => Create::Done(Err(e.code)),
                },
                Create::Ask(other, since) => {
                    let made = self.objects.get(&other).copied().unwrap_or(false);
                    Create::Checked(other, since, made)
                }
                Create::Checked(other, since, made) => {
                    self.slots.checked(&other, since, made);
                    Create::Reserve
                }
                Create::Make => {
                    self.objects.insert(id.to_owned(), true);
                    Create::Confirm
                }
                Create::Confirm => {
                    self.slots.made(id);
                    Create::Done(Ok(()))
                }
                Create::Done(_) => unreachable!(),
            };
            if let Actor::Creator(c) = &mut self.actors[i] {
                c.at = next;
            }
        }

        /// What the list promises, once every actor is done or dead.
        fn check(&self) {
            for (id, &made) in &self.objects {
                assert!(
                    !made || self.slots.ids().contains(id),
                    "{id} unlisted: {self:?}"
                );
            }
            for actor in &self.actors {
                if let Actor::Creator(c) = actor
                    && c.at == Create::Done(Ok(()))
                {
                    assert!(self.slots.ids().contains(c.id) && self.objects[c.id]);
                    assert!(!self.slots.pending().contains_key(c.id));
                }
            }
            assert!(
                self.slots
                    .pending()
                    .keys()
                    .all(|id| self.slots.ids().contains(id))
            );
            // Nothing holds a slot for ever: later, a new create finds one unless every
            // slot's object holds a share.
            let mut later = self.clone();
            later.now += PENDING_SHARE_MS;
            let made = later
                .slots
                .ids()
                .iter()
                .filter(|id| later.objects.get(*id) == Some(&true));
            let room = made.count() < MAX_SHARES_PER_FILE;
            later.actors = vec![creator("fresh", None)];
            while later.runnable() == [0] {
                later.step(0);
            }
            let Actor::Creator(fresh) = &later.actors[0] else {
                unreachable!()
            };
            assert_eq!(fresh.at == Create::Done(Ok(())), room, "{later:?}");
        }
    }

    fn creator(id: &'static str, dies_at: Option<Create>) -> Actor {
        Actor::Creator(Creator {
            id,
            at: Create::Reserve,
            dies_at,
        })
    }

    impl Interleaving for World {
        type Step = usize;
        fn next_steps(&self) -> Vec<usize> {
            self.runnable()
        }
        fn take(&mut self, i: usize) {
            self.step(i);
        }
        fn finish(self) {
            self.check();
        }
    }

    #[test]
    fn twins_with_one_key_take_one_slot_whatever_the_order() {
        // Two creates with one key (one object), a create that dies before making its
        // object and one that dies after (its confirmation lost), the clock passing
        // the bound, and two slots left.
        let w = World::new(
            filled(2),
            vec![
                creator("k", None),
                creator("k", None),
                creator("lost", Some(Create::Make)),
                Actor::Tick,
            ],
        );
        assert!(explore(w) > 100);
        let w = World::new(
            filled(2),
            vec![
                creator("k", None),
                creator("k", Some(Create::Confirm)),
                creator("unconfirmed", Some(Create::Confirm)),
                Actor::Tick,
            ],
        );
        assert!(explore(w) > 100);
    }

    #[test]
    fn a_slot_checked_while_its_create_is_in_flight_is_never_lost() {
        // One slot: a slow create holds it, the clock passes the bound, a new create
        // checks the slow one's object before or after it is made; and the slow one's
        // retry may renew it meanwhile (and be lost before it makes the object).
        let w = World::new(
            filled(1),
            vec![creator("slow", None), creator("new", None), Actor::Tick],
        );
        assert!(explore(w) > 50);
        let w = World::new(
            filled(1),
            vec![
                creator("slow", None),
                creator("slow", Some(Create::Make)),
                creator("new", None),
                Actor::Tick,
            ],
        );
        assert!(explore(w) > 200);
    }
}
