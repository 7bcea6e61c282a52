//! camu-torch: everything that touches tensors (libtorch through tch): datasets ([`data`]),
//! models ([`models`]), the training loop ([`train`]) and its helpers ([`ml`]), the unlearning
//! methods' computations ([`methods`]), the metrics ([`metrics`]), and the runs of the ML stage
//! kinds ([`stages`]) that the `camu-worker` binary binary executes.

pub mod data;
pub mod methods;
pub mod metrics;
pub mod ml;
pub mod models;
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
