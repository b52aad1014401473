//! The property tests' configuration, shared by the library's and the
//! binary's test modules (each includes this file with `#[path]`): 96 cases
//! per property in every `cargo test` (`PROPTEST_CASES` runs more), from a
//! seed printed before the cases run, so `PROPTEST_RNG_SEED` replays a
//! failure.

use proptest::test_runner::{Config, RngSeed};

pub fn config() -> Config {
    let defaults = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        defaults.cases
    } else {
        96
    };
    let seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => rand::random(),
    };
    eprintln!("proptest seed {seed}: PROPTEST_RNG_SEED={seed} runs these cases again");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        ..defaults
    }
}
