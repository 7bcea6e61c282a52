//! camu-pipe: a declarative, cached, parallel orchestrator for machine-unlearning experiments.
//!
//! Layers, each with its own error type: [`spec`] (YAML schema, matrix expansion, validation),
//! [`graph`] (the stage DAG), [`cache`] (content-addressed records and objects), [`engine`]
//! (selection, status, scheduling), [`executor`] (where stage processes run), [`stages`] (the
//! stage kinds), [`progress`] (what the user sees).

pub mod cache;
pub mod data;
pub mod engine;
pub mod executor;
pub mod graph;
pub mod methods;
pub mod metrics;
pub mod ml;
pub mod models;
pub mod params;
pub mod progress;
pub mod report;
pub mod spec;
pub mod stages;
pub mod train;

/// libtorch's generator is process-wide: unit tests that seed it and compare draws hold this lock,
/// since the test harness runs tests on parallel threads. (Stage processes draw from one thread.)
#[cfg(test)]
pub(crate) static TEST_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TEST_RNG.lock().unwrap_or_else(|e| e.into_inner())
}
