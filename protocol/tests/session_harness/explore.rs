//! Exploring interleavings: every order (depth-first, with states already seen pruned),
//! and seeded random long runs. Invariants are checked after every action; at the end
//! of every path storage carries out what it still holds, the alarm brings any step left
//! due to its end, and after expiry session and storage must agree exactly.

use std::collections::HashSet;

use crate::world::{Action, Choice, Seen, World};

/// What an exhaustive exploration covered.
#[derive(Debug, Default)]
pub struct Explored {
    /// Distinct states visited.
    pub states: usize,
    /// Paths that ended with every process done.
    pub ends: usize,
    /// Of those, how many went through each rare path (before converging).
    pub seen: Seen,
}

/// Explores every interleaving of the actions possible from `start`. Panics with the
/// path that broke an invariant.
pub fn exhaustive(start: World) -> Explored {
    let mut seen = HashSet::new();
    let mut stats = Explored::default();
    let mut path = Vec::new();
    dfs(start, &mut seen, &mut stats, &mut path);
    eprintln!("explored {stats:?}"); // shown with --nocapture
    stats
}

fn dfs(world: World, seen: &mut HashSet<String>, stats: &mut Explored, path: &mut Vec<Action>) {
    if !seen.insert(world.key()) {
        return;
    }
    stats.states += 1;
    let actions = world.actions();
    if world.is_quiet() {
        stats.ends += 1;
        let s = &mut stats.seen;
        s.late_writes += u32::from(world.seen.late_writes > 0);
        s.late_completions += u32::from(world.seen.late_completions > 0);
        s.refusals += u32::from(world.seen.refusals > 0);
        s.gone += u32::from(world.seen.gone > 0);
        s.deletions += u32::from(world.seen.deletions > 0);
        let mut end = world.clone();
        if let Err(e) = end.converge() {
            panic!("converging: {e}\npath: {path:?}\nworld: {end:#?}");
        }
    }
    for action in actions {
        let mut next = world.clone();
        next.apply(action);
        path.push(action);
        if let Err(e) = next.check() {
            panic!("{e}\npath: {path:?}\nworld: {next:#?}");
        }
        dfs(next, seen, stats, path);
        path.pop();
    }
}

/// SplitMix64: a tiny deterministic generator, so a failing seed replays exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs `steps` random actions from `start`, where `spawn` may add new processes
/// (clients arriving) before each step. Panics with the seed and path that broke an
/// invariant; answers the world at the end (settled by alarms).
pub fn random_run(
    start: World,
    seed: u64,
    steps: usize,
    mut spawn: impl FnMut(&mut World, &mut Rng),
) -> World {
    let mut rng = Rng::new(seed);
    let mut world = start;
    let mut path = Vec::new();
    for _ in 0..steps {
        // Time flows a little at every step (about 4 s in 400 steps, inside the
        // session's 10 s), besides the occasional lease-long tick.
        world.now += rng.below(20) as u64;
        spawn(&mut world, &mut rng);
        let actions = world.actions();
        if actions.is_empty() {
            continue; // nobody active: wait for a client to arrive
        }
        // Faults are the point, but a world where they are as likely as success never
        // finishes anything: the ordinary outcome is drawn several times as often.
        let weighted: Vec<Action> = actions
            .iter()
            .flat_map(|&a| {
                let n = match a {
                    Action::Proc(_, Choice::Go | Choice::Ok) => 6,
                    _ => 1,
                };
                std::iter::repeat_n(a, n)
            })
            .collect();
        let action = weighted[rng.below(weighted.len())];
        world.apply(action);
        path.push(action);
        if let Err(e) = world.check() {
            panic!("seed {seed}: {e}\npath: {path:?}\nworld: {world:#?}");
        }
    }
    // Let everyone finish, storage answering, then the alarm settles what is left.
    while !world.is_quiet() {
        let i = world
            .procs
            .iter()
            .position(Option::is_some)
            .expect("a process");
        let choice = world.choices(i)[0];
        world.apply(Action::Proc(i, choice));
        if let Err(e) = world.check() {
            panic!("seed {seed} (draining): {e}\npath: {path:?}\nworld: {world:#?}");
        }
    }
    world.settle_with_alarms();
    if let Err(e) = world.check() {
        panic!("seed {seed} (settled): {e}\npath: {path:?}\nworld: {world:#?}");
    }
    let mut end = world.clone();
    if let Err(e) = end.converge() {
        panic!("seed {seed} (converging): {e}\npath: {path:?}\nworld: {end:#?}");
    }
    world
}
