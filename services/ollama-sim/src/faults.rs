//! Seeded fault dice: which requests error, hang, drop or run slow, reproducibly.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::SimConfig;

/// The faults drawn for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Close the connection without an HTTP answer.
    pub drop: bool,
    /// Answer 500 "simulated backend error".
    pub error: bool,
    /// Stall this long before serving.
    pub hang: Option<Duration>,
    /// Multiply the service time by this (1.0 when not a slow-tail request).
    pub slow_factor: f64,
}

/// The RNG behind fault decisions, reseeded when `fault_seed` changes.
#[derive(Debug)]
pub struct FaultDice {
    seed: u64,
    rng: StdRng,
}

impl FaultDice {
    pub fn new(seed: u64) -> Self {
        Self { seed, rng: StdRng::seed_from_u64(seed) }
    }

    /// Draws one request's faults. Every request consumes the same number of draws
    /// whatever the rates, so the n-th request's fate depends only on the seed and n.
    pub fn roll(&mut self, config: &SimConfig) -> FaultPlan {
        if config.fault_seed != self.seed {
            *self = Self::new(config.fault_seed);
        }
        let drop = self.rng.random::<f64>() < config.drop_rate;
        let error = self.rng.random::<f64>() < config.error_rate;
        let hang = self.rng.random::<f64>() < config.timeout_rate;
        let slow = self.rng.random::<f64>() < config.slow_tail_rate;
        // Precedence: a dropped connection cannot also answer 500, and neither hangs.
        FaultPlan {
            drop,
            error: error && !drop,
            hang: (hang && !drop && !error).then(|| Duration::from_millis(config.hang_ms)),
            slow_factor: if slow { config.slow_tail_factor } else { 1.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_rates_hold_roughly() {
        let config = SimConfig { error_rate: 0.3, fault_seed: 9, ..SimConfig::default() };
        let mut a = FaultDice::new(config.fault_seed);
        let mut b = FaultDice::new(config.fault_seed);
        let plans: Vec<_> = (0..1000).map(|_| a.roll(&config)).collect();
        assert_eq!(plans, (0..1000).map(|_| b.roll(&config)).collect::<Vec<_>>());
        let errors = plans.iter().filter(|p| p.error).count();
        assert!((200..400).contains(&errors), "{errors}");
        assert!(plans.iter().all(|p| !p.drop && p.hang.is_none() && p.slow_factor == 1.0));
    }

    #[test]
    fn certain_rates_always_fire() {
        let config = SimConfig { drop_rate: 1.0, error_rate: 1.0, ..SimConfig::default() };
        let plan = FaultDice::new(0).roll(&config);
        assert!(plan.drop && !plan.error);
    }
}
