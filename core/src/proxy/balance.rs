//! Choosing an upstream for a request: the five `dist_policy` values, backups, and passive
//! health (ejection with backoff, then probing with live traffic).
//!
//! # Contract
//! One [`Balancer`] per location (its upstreams in configuration order). For each attempt the
//! proxy calls [`Balancer::pick`] with the time, the client's address (for `ip-hash`) and the
//! upstreams this request already tried; it gets an index or `None` (every upstream is down or
//! tried: answer 502 at once, never wait or spin). It then reports [`Balancer::started`] when the
//! exchange begins and exactly one of [`Balancer::succeeded`] / [`Balancer::failed`] when it
//! ends (a connect failure, timeout or malformed response is a failure; any response the
//! upstream sent whole, 4xx and 5xx included, is a success: its health is the transport's).
//!
//! # Decisions
//! * `round-robin` takes the available primaries in turn: A, B, A, B.
//! * `weighted` is nginx's smooth weighted round-robin: weights 5, 1, 1 give A A B A C A A,
//!   never five A's in a row.
//! * `least-conn` takes the primary with the fewest exchanges in flight, ties in turn.
//! * `random` draws with the weights from the balancer's own seeded RNG.
//! * `ip-hash` maps the client address to a primary; if that one is down, the next one in
//!   order, so a client sticks to one backend while it is up.
//! * `backup` upstreams are used only when no primary is available.
//! * Passive health: [`MAX_FAILS`] consecutive failures eject an upstream for a backoff that
//!   starts at [`BACKOFF_START`] and doubles with every ejection in a row up to [`BACKOFF_MAX`].
//!   When it ends the upstream is probed with live traffic, one exchange at a time: a success
//!   restores it (and resets the backoff), a failure ejects it again.

use super::config::{Policy, Upstream};
use crate::time::{Duration, Instant};

/// Consecutive failures that eject an upstream.
pub const MAX_FAILS: u32 = 3;
pub const BACKOFF_START: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The health of one upstream.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Ejected until the instant; then probed.
    Ejected {
        until: Instant,
    },
    /// One live exchange decides (no other goes there meanwhile).
    Probing,
}

#[derive(Clone, Debug)]
struct Slot {
    weight: i64,
    backup: bool,
    in_flight: u32,
    fails: u32,
    health: Health,
    backoff: Duration,
    /// Smooth weighted round-robin state.
    current: i64,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Balancer {
    policy: Policy,
    slots: Vec<Slot>,
    /// Where round-robin and least-conn ties continue.
    next: usize,
    rng: fastrand::Rng,
}

impl Balancer {
    pub fn new(policy: Policy, upstreams: &[Upstream], seed: u64) -> Balancer {
        Balancer {
            policy,
            slots: upstreams
                .iter()
                .map(|u| Slot {
                    weight: u.weight.max(1) as i64,
                    backup: u.backup,
                    in_flight: 0,
                    fails: 0,
                    health: Health::Up,
                    backoff: BACKOFF_START,
                    current: 0,
                })
                .collect(),
            next: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn health(&self, i: usize) -> Health {
        self.slots[i].health
    }
    pub fn in_flight(&self, i: usize) -> u32 {
        self.slots[i].in_flight
    }

    /// Whether upstream `i` may take an exchange now.
    fn available(&self, i: usize, now: Instant, tried: &[usize]) -> bool {
        let s = &self.slots[i];
        !tried.contains(&i)
            && match s.health {
                Health::Up => true,
                Health::Ejected { until } => now >= until && s.in_flight == 0,
                Health::Probing => s.in_flight == 0,
            }
    }

    /// The upstream for the next attempt (see the module docs), or `None` when none can take it.
    pub fn pick(&mut self, now: Instant, client: &[u8], tried: &[usize]) -> Option<usize> {
        let primaries: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].backup && self.available(i, now, tried))
            .collect();
        let candidates = if primaries.is_empty() {
            (0..self.slots.len())
                .filter(|&i| self.slots[i].backup && self.available(i, now, tried))
                .collect()
        } else {
            primaries
        };
        if candidates.is_empty() {
            return None;
        }
        let i = match self.policy {
            Policy::RoundRobin => self.in_turn(&candidates),
            Policy::LeastConn => {
                let least = candidates
                    .iter()
                    .map(|&i| self.slots[i].in_flight)
                    .min()
                    .unwrap_or(0);
                let tied: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&i| self.slots[i].in_flight == least)
                    .collect();
                self.in_turn(&tied)
            }
            Policy::Weighted => {
                let total: i64 = candidates.iter().map(|&i| self.slots[i].weight).sum();
                for &i in &candidates {
                    self.slots[i].current += self.slots[i].weight;
                }
                let best = candidates
                    .iter()
                    .copied()
                    .max_by_key(|&i| (self.slots[i].current, std::cmp::Reverse(i)))
                    .unwrap_or(candidates[0]);
                self.slots[best].current -= total;
                best
            }
            Policy::Random => {
                let total: i64 = candidates.iter().map(|&i| self.slots[i].weight).sum();
                let mut r = self.rng.i64(0..total.max(1));
                let mut chosen = candidates[0];
                for &i in &candidates {
                    if r < self.slots[i].weight {
                        chosen = i;
                        break;
                    }
                    r -= self.slots[i].weight;
                }
                chosen
            }
            Policy::IpHash => {
                // Hash over every primary (not just the available ones), so a client keeps its
                // backend while that backend is up; fall forward in order when it is not.
                let all: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].backup == self.slots[candidates[0]].backup)
                    .collect();
                let h = client.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
                });
                let start = (h % all.len() as u64) as usize;
                (0..all.len())
                    .map(|k| all[(start + k) % all.len()])
                    .find(|i| candidates.contains(i))
                    .unwrap_or(candidates[0])
            }
        };
        Some(i)
    }

    /// The first of `candidates` at or after the turn pointer; moves the pointer past it.
    fn in_turn(&mut self, candidates: &[usize]) -> usize {
        let n = self.slots.len();
        let i = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|i| candidates.contains(i))
            .unwrap_or(candidates[0]);
        self.next = (i + 1) % n;
        i
    }

    /// An exchange with upstream `i` begins.
    pub fn started(&mut self, i: usize, now: Instant) {
        let s = &mut self.slots[i];
        s.in_flight += 1;
        if let Health::Ejected { until } = s.health {
            if now >= until {
                s.health = Health::Probing;
            }
        }
    }

    /// The exchange with `i` ended for reasons not its own: no verdict on its health.
    pub fn abandoned(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.in_flight = s.in_flight.saturating_sub(1);
    }
    /// How many upstreams the balancer holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The exchange with `i` ended well: a probe restores the upstream.
    pub fn succeeded(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.in_flight = s.in_flight.saturating_sub(1);
        s.fails = 0;
        if s.health == Health::Probing {
            s.health = Health::Up;
            s.backoff = BACKOFF_START;
        }
    }

    /// The exchange with `i` failed (transport): count it, eject at [`MAX_FAILS`] in a row,
    /// eject a failed probe again with a doubled backoff.
    pub fn failed(&mut self, i: usize, now: Instant) {
        let s = &mut self.slots[i];
        s.in_flight = s.in_flight.saturating_sub(1);
        s.fails += 1;
        let eject = match s.health {
            Health::Probing => true,
            Health::Up => s.fails >= MAX_FAILS,
            Health::Ejected { .. } => false,
        };
        if eject {
            if s.health == Health::Probing {
                s.backoff = (s.backoff * 2).min(BACKOFF_MAX);
            }
            s.health = Health::Ejected {
                until: now + s.backoff,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ups(weights: &[u32]) -> Vec<Upstream> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Upstream {
                host: format!("10.0.0.{i}"),
                port: 80,
                weight: w,
                backup: false,
            })
            .collect()
    }
    const T0: Instant = Instant::ZERO;

    /// Picks `n` times, finishing each exchange at once (successfully).
    fn picks(b: &mut Balancer, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                let i = b.pick(T0, b"client", &[]).unwrap();
                b.started(i, T0);
                b.succeeded(i);
                i
            })
            .collect()
    }

    #[test]
    fn round_robin_alternates() {
        let mut b = Balancer::new(Policy::RoundRobin, &ups(&[1, 1]), 0);
        assert_eq!(picks(&mut b, 6), [0, 1, 0, 1, 0, 1]);
        let mut b = Balancer::new(Policy::RoundRobin, &ups(&[1, 1, 1]), 0);
        assert_eq!(picks(&mut b, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_hold_over_a_thousand_picks_and_are_spread() {
        let mut b = Balancer::new(Policy::Weighted, &ups(&[5, 1, 1]), 0);
        let p = picks(&mut b, 7);
        assert_eq!(p, [0, 0, 1, 0, 2, 0, 0], "nginx's smooth order");
        let p = picks(&mut b, 1000);
        let count = |i| p.iter().filter(|&&x| x == i).count();
        assert!((709..=720).contains(&count(0)), "{}", count(0));
        assert!((140..=146).contains(&count(1)), "{}", count(1));
        let mut b = Balancer::new(Policy::Random, &ups(&[3, 1]), 7);
        let p = picks(&mut b, 1000);
        let first = p.iter().filter(|&&x| x == 0).count();
        assert!((700..=800).contains(&first), "weighted random: {first}");
    }

    #[test]
    fn least_conn_prefers_the_idle_one() {
        let mut b = Balancer::new(Policy::LeastConn, &ups(&[1, 1, 1]), 0);
        let a = b.pick(T0, b"", &[]).unwrap();
        b.started(a, T0);
        let c = b.pick(T0, b"", &[]).unwrap();
        b.started(c, T0);
        assert_ne!(a, c);
        let d = b.pick(T0, b"", &[]).unwrap();
        assert!(d != a && d != c, "the one with nothing in flight");
        b.started(d, T0);
        b.succeeded(c);
        assert_eq!(
            b.pick(T0, b"", &[]),
            Some(c),
            "c finished: it is the idle one"
        );
    }

    #[test]
    fn ip_hash_sticks_and_falls_forward_when_down() {
        let mut b = Balancer::new(Policy::IpHash, &ups(&[1, 1, 1, 1]), 0);
        let home = b.pick(T0, b"192.0.2.7", &[]).unwrap();
        for _ in 0..10 {
            assert_eq!(b.pick(T0, b"192.0.2.7", &[]), Some(home));
        }
        let spread: std::collections::BTreeSet<usize> = (0..64u8)
            .map(|k| b.pick(T0, &[10, 0, 0, k], &[]).unwrap())
            .collect();
        assert_eq!(spread.len(), 4, "clients spread over every backend");
        assert_eq!(b.pick(T0, b"192.0.2.7", &[home]), Some((home + 1) % 4));
    }

    #[test]
    fn backups_only_when_every_primary_is_unavailable() {
        let mut list = ups(&[1, 1, 1]);
        list[2].backup = true;
        let mut b = Balancer::new(Policy::RoundRobin, &list, 0);
        assert!(picks(&mut b, 10).iter().all(|&i| i != 2));
        assert_eq!(b.pick(T0, b"", &[0, 1]), Some(2));
        assert_eq!(b.pick(T0, b"", &[0, 1, 2]), None, "all tried: 502 at once");
    }

    #[test]
    fn failures_eject_then_a_probe_decides() {
        let mut b = Balancer::new(Policy::RoundRobin, &ups(&[1, 1]), 0);
        for k in 0..MAX_FAILS {
            assert_eq!(b.health(0), Health::Up, "after {k} failures");
            b.started(0, T0);
            b.failed(0, T0);
        }
        let until = T0 + BACKOFF_START;
        assert_eq!(b.health(0), Health::Ejected { until });
        assert!(
            (0..5).all(|_| b.pick(T0, b"", &[]) == Some(1)),
            "ejected: not picked"
        );
        // After the backoff: one probe with live traffic, nothing else meanwhile.
        let later = until + Duration::from_millis(1);
        let p = (0..2).find_map(|_| b.pick(later, b"", &[]).filter(|&i| i == 0));
        assert_eq!(p, Some(0));
        b.started(0, later);
        assert_eq!(b.health(0), Health::Probing);
        assert_eq!(b.pick(later, b"", &[1]), None, "one probe at a time");
        // A failed probe: ejected again for twice as long.
        b.failed(0, later);
        assert_eq!(
            b.health(0),
            Health::Ejected {
                until: later + BACKOFF_START + BACKOFF_START
            }
        );
        // A successful probe restores it.
        let again = later + Duration::from_secs(10);
        b.started(0, again);
        b.succeeded(0);
        assert_eq!(b.health(0), Health::Up);
        assert_eq!(
            picks(&mut b, 4).iter().filter(|&&i| i == 0).count(),
            2,
            "back in rotation"
        );
    }

    #[test]
    fn a_success_resets_the_count_of_failures() {
        let mut b = Balancer::new(Policy::RoundRobin, &ups(&[1]), 0);
        for _ in 0..10 {
            for _ in 0..MAX_FAILS - 1 {
                b.started(0, T0);
                b.failed(0, T0);
            }
            b.started(0, T0);
            b.succeeded(0);
        }
        assert_eq!(b.health(0), Health::Up);
    }
}
