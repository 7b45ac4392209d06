//! The states of one upload as the client's JS API shows them (`upload.state`), and
//! which requests move it where: the rules behind `pause()`, `resume()` and `cancel()`.
//!
//! An upload works through three stages: *starting* (sealing the name, persisting,
//! creating the session), *uploading* (the parts) and *completing*. It can be
//! *paused* in the first two, by the person or because a request ran out of attempts
//! (then with a resumable error); a resume returns it to the stage it was in. It ends
//! *done*, *failed* (an error no retry can fix) or *cancelled*; those are final, except
//! that a failed upload may still be cancelled, which deletes what the server holds.
//!
//! ```text
//!   starting ──► uploading ──► completing ──► done
//!      │  ▲          │  ▲          │
//!      ▼  │          ▼  │          ▼ (attempts exhausted only)
//!      paused ◄──────┘  └────── paused
//!   any unfinished ──► failed ──► cancelled;  any unfinished ──► cancelled
//! ```

/// What `upload.state` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Sealing the metadata, persisting, creating the session.
    Starting,
    /// Sending parts.
    Uploading,
    /// Stopped until `resume()`: asked for, or attempts ran out (`upload.error` says).
    Paused,
    /// Asking the server to complete the object.
    Completing,
    /// Complete: the link works.
    Done,
    /// Stopped by an error no retry can fix (`upload.error` says).
    Failed,
    /// Cancelled: the server's session is deleted, nothing is kept.
    Cancelled,
}

impl State {
    /// The name JS sees.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Uploading => "uploading",
            State::Paused => "paused",
            State::Completing => "completing",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more happens to the upload by itself.
    pub fn is_final(self) -> bool {
        matches!(self, State::Done | State::Failed | State::Cancelled)
    }
}

/// The stage of the work an unfinished upload is in, whether or not it is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// See [`State::Starting`].
    Starting,
    /// See [`State::Uploading`].
    Uploading,
    /// See [`State::Completing`].
    Completing,
}

impl Stage {
    fn state(self) -> State {
        match self {
            Stage::Starting => State::Starting,
            Stage::Uploading => State::Uploading,
            Stage::Completing => State::Completing,
        }
    }
}

/// One upload's state. Every method answers whether the state changed, so the shell
/// tells `onStateChange` exactly when something happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    state: State,
    stage: Stage,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            state: State::Starting,
            stage: Stage::Starting,
        }
    }
}

impl Lifecycle {
    /// The state now.
    pub fn state(&self) -> State {
        self.state
    }

    /// The stage the upload is in (or returns to on resume).
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The person asks to pause. Only while starting or uploading: a completion runs on
    /// the server whatever the page does, and a finished upload has nothing to pause.
    pub fn pause(&mut self) -> bool {
        self.set_if(
            matches!(self.state, State::Starting | State::Uploading),
            State::Paused,
        )
    }

    /// A request ran out of attempts: paused, with a resumable error, from any
    /// unfinished stage (the completion request can run out too).
    pub fn pause_on_error(&mut self) -> bool {
        self.set_if(
            matches!(
                self.state,
                State::Starting | State::Uploading | State::Completing
            ),
            State::Paused,
        )
    }

    /// Continues a paused upload in the stage it was in.
    pub fn resume(&mut self) -> bool {
        self.set_if(self.state == State::Paused, self.stage.state())
    }

    /// The work moved on to `stage` (never back). A paused upload stays paused and
    /// resumes there.
    pub fn advance(&mut self, stage: Stage) -> bool {
        if self.state.is_final() || stage <= self.stage {
            return false;
        }
        self.stage = stage;
        self.set_if(self.state != State::Paused, stage.state())
    }

    /// The server completed the object.
    pub fn finish(&mut self) -> bool {
        self.set_if(self.state == State::Completing, State::Done)
    }

    /// An error no retry can fix.
    pub fn fail(&mut self) -> bool {
        self.set_if(!self.state.is_final(), State::Failed)
    }

    /// The person cancels: from any state but done and cancelled (a failed upload's
    /// session is still deleted).
    pub fn cancel(&mut self) -> bool {
        self.set_if(
            !matches!(self.state, State::Done | State::Cancelled),
            State::Cancelled,
        )
    }

    fn set_if(&mut self, allowed: bool, state: State) -> bool {
        if !allowed || self.state == state {
            return false;
        }
        self.state = state;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Pause,
        PauseOnError,
        Resume,
        Advance(Stage),
        Finish,
        Fail,
        Cancel,
    }

    const EVENTS: [Event; 9] = [
        Event::Pause,
        Event::PauseOnError,
        Event::Resume,
        Event::Advance(Stage::Starting),
        Event::Advance(Stage::Uploading),
        Event::Advance(Stage::Completing),
        Event::Finish,
        Event::Fail,
        Event::Cancel,
    ];

    fn apply(l: &mut Lifecycle, e: Event) -> bool {
        match e {
            Event::Pause => l.pause(),
            Event::PauseOnError => l.pause_on_error(),
            Event::Resume => l.resume(),
            Event::Advance(stage) => l.advance(stage),
            Event::Finish => l.finish(),
            Event::Fail => l.fail(),
            Event::Cancel => l.cancel(),
        }
    }

    #[test]
    fn the_happy_path_and_a_pause() {
        let mut l = Lifecycle::default();
        assert_eq!(l.state(), State::Starting);
        assert!(l.advance(Stage::Uploading));
        assert!(l.pause());
        assert_eq!(l.state().as_str(), "paused");
        assert!(!l.pause());
        assert!(l.resume());
        assert_eq!(l.state(), State::Uploading);
        assert!(l.advance(Stage::Completing));
        assert!(!l.pause(), "a completion cannot be paused");
        assert!(l.pause_on_error(), "but it can run out of attempts");
        assert!(l.resume());
        assert_eq!(l.state(), State::Completing);
        assert!(l.finish());
        assert_eq!(l.state(), State::Done);
        assert!(!l.cancel(), "a finished upload is not cancelled");
    }

    #[test]
    fn paused_while_starting_resumes_where_the_work_is() {
        let mut l = Lifecycle::default();
        assert!(l.pause());
        // The create answered just before the pause took effect.
        assert!(
            !l.advance(Stage::Uploading),
            "still paused: no visible change"
        );
        assert_eq!(l.state(), State::Paused);
        assert!(l.resume());
        assert_eq!(l.state(), State::Uploading);
    }

    #[test]
    fn failed_can_still_be_cancelled() {
        let mut l = Lifecycle::default();
        assert!(l.fail());
        assert!(!l.resume());
        assert!(!l.advance(Stage::Completing));
        assert!(l.cancel());
        assert_eq!(l.state(), State::Cancelled);
        assert!(!l.fail());
    }

    /// Every sequence of up to 6 events from the start: the invariants hold after each,
    /// and a method answers `true` exactly when the state changed.
    #[test]
    fn every_sequence_keeps_the_invariants() {
        fn walk(l: &Lifecycle, depth: usize, seen_paths: &mut usize) {
            *seen_paths += 1;
            if depth == 0 {
                return;
            }
            for e in EVENTS {
                let mut next = l.clone();
                let changed = apply(&mut next, e);
                assert_eq!(changed, next.state() != l.state(), "{l:?} {e:?}");
                // Final states absorb everything, but a failed upload may be cancelled.
                if l.state().is_final() {
                    let allowed = l.state() == State::Failed && matches!(e, Event::Cancel);
                    assert!(!changed || allowed, "{l:?} {e:?}");
                }
                // The stage only moves forward.
                assert!(next.stage() >= l.stage(), "{l:?} {e:?}");
                // Done is reached only from completing, by finish.
                if next.state() == State::Done && l.state() != State::Done {
                    assert_eq!(l.state(), State::Completing);
                    assert!(matches!(e, Event::Finish));
                }
                // An unfinished, unpaused upload shows its stage.
                if !next.state().is_final() && next.state() != State::Paused {
                    assert_eq!(next.state(), next.stage().state());
                }
                // Only the person pauses a start or an upload; a completion pauses only
                // when attempts run out.
                if next.state() == State::Paused && changed {
                    match l.state() {
                        State::Starting | State::Uploading => {
                            assert!(matches!(e, Event::Pause | Event::PauseOnError));
                        }
                        State::Completing => assert!(matches!(e, Event::PauseOnError)),
                        other => panic!("paused from {other:?}"),
                    }
                }
                walk(&next, depth - 1, seen_paths);
            }
        }
        let mut paths = 0;
        walk(&Lifecycle::default(), 6, &mut paths);
        assert_eq!(paths, (0..=6).map(|d| 9usize.pow(d)).sum::<usize>());
    }
}
