//! BUGGIFY (FoundationDB): rare-but-legal paths that machine code can take on purpose under
//! simulation, so the tests reach them far more often than production would.
//!
//! A machine owns a [`Buggify`] given to it by its driver. In production it is [`Buggify::off`]
//! and [`Buggify::fire`] is always false. Under simulation every call site (named by a static
//! string) is **activated once per run** with probability `activate_ppm`, decided by hashing the
//! run's seed with the site's name, so every machine of the run agrees; an activated site then
//! **fires** on each call with probability `fire_ppm`, drawn from the machine's own seeded RNG.
//! FoundationDB uses 25% and 25%.
//!
//! Only legal behaviour may hide behind a site (a smaller read, an earlier close): the peer and
//! the oracles must accept it. Sites are listed in [`SITES`] so a sweep can report which ran.

/// Every site used in `core`, for coverage reports.
pub const SITES: &[&str] = &["backend.tiny_first_read"];

#[derive(Clone, Debug, Default)]
pub struct Buggify {
    run_seed: u64,
    activate_ppm: u32,
    fire_ppm: u32,
    rng: Option<fastrand::Rng>,
    /// How often each site fired (for coverage reports).
    fired: Vec<(&'static str, u64)>,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Buggify {
    /// Never fires (production).
    pub fn off() -> Self {
        Buggify::default()
    }
    /// Sites of run `run_seed` activate with `activate_ppm` and fire with `fire_ppm`; this
    /// machine's draws come from `machine_seed`.
    pub fn seeded(run_seed: u64, machine_seed: u64, activate_ppm: u32, fire_ppm: u32) -> Self {
        Buggify {
            run_seed,
            activate_ppm,
            fire_ppm,
            rng: Some(fastrand::Rng::with_seed(machine_seed)),
            fired: Vec::new(),
        }
    }
    /// True when `site` is active in this run (the same answer for every machine of the run).
    pub fn active(&self, site: &str) -> bool {
        if self.rng.is_none() {
            return false;
        }
        let h = site
            .bytes()
            .fold(self.run_seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
        mix(h) % 1_000_000 < self.activate_ppm as u64
    }
    /// True when the caller should take the rare path now.
    pub fn fire(&mut self, site: &'static str) -> bool {
        if !self.active(site) {
            return false;
        }
        let ppm = self.fire_ppm;
        let fire = self.rng.as_mut().is_some_and(|r| r.u32(..1_000_000) < ppm);
        if fire {
            match self.fired.iter_mut().find(|(s, _)| *s == site) {
                Some((_, n)) => *n += 1,
                None => self.fired.push((site, 1)),
            }
        }
        fire
    }
    /// The sites that fired on this machine, with counts.
    pub fn fired(&self) -> &[(&'static str, u64)] {
        &self.fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_fires() {
        let mut b = Buggify::off();
        assert!((0..1000).all(|_| !b.fire("backend.tiny_first_read")));
    }

    #[test]
    fn activation_is_per_run_and_firing_per_call() {
        let mut active_runs = 0;
        for run in 0..400u64 {
            let a = Buggify::seeded(run, 1, 250_000, 250_000);
            let b = Buggify::seeded(run, 2, 250_000, 250_000);
            assert_eq!(
                a.active("x.site"),
                b.active("x.site"),
                "machines of a run agree"
            );
            if a.active("x.site") {
                active_runs += 1;
                let mut a = a;
                let fired = (0..4000).filter(|_| a.fire("x.site")).count();
                assert!((800..1200).contains(&fired), "{fired}");
            }
        }
        assert!((60..140).contains(&active_runs), "{active_runs}");
    }
}
