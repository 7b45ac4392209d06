//! Every interleaving of a test world's steps, depth first: how the machines' race
//! tests prove a rule for every order the calls can arrive in, not for the orders a
//! scheduler happens to produce.

/// A world of actors whose next steps may happen in any order.
pub(crate) trait Interleaving: Clone {
    /// One thing that can happen next.
    type Step;
    /// What can happen next; none once the run is over.
    fn next_steps(&self) -> Vec<Self::Step>;
    /// Makes `step` happen.
    fn take(&mut self, step: Self::Step);
    /// Checks what a finished run promises (panics if it is broken).
    fn finish(self);
}

/// Runs every order of `world`'s steps to its end and checks each; answers how many
/// runs there were (so a test can tell its world did not shrink to nothing).
pub(crate) fn explore<W: Interleaving>(world: W) -> usize {
    let steps = world.next_steps();
    if steps.is_empty() {
        world.finish();
        return 1;
    }
    steps
        .into_iter()
        .map(|step| {
            let mut next = world.clone();
            next.take(step);
            explore(next)
        })
        .sum()
}
