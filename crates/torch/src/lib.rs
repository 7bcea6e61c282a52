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

/// Why a computation on tensors failed.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error(transparent)]
    Params(#[from] camu_core::params::ParamError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Model(#[from] models::ModelError),
    #[error(transparent)]
    Stage(#[from] camu_core::stage::StageError),
    /// A value a method takes from the original model's training record is not there.
    #[error("the original model's training record has no `{key}`: give it in `with`")]
    MissingRecord { key: String },
    /// A split that cannot be drawn as asked.
    #[error("split: {0}")]
    Split(String),
    /// The requested device is not here.
    #[error("{0}")]
    Device(String),
    /// Training or relearning produced a non-finite loss.
    #[error("{0}")]
    Diverged(String),
    /// A metric's inputs do not allow it (too few samples, non-finite outputs).
    #[error("{0}")]
    Metric(String),
    /// A method does not apply to this split.
    #[error("{0}")]
    NotApplicable(String),
    /// An audit's runs do not form one comparable set.
    #[error("audit: {0}")]
    Audit(String),
    /// A test set part the split does not have.
    #[error(transparent)]
    TestPart(#[from] camu_lab::protocol::NoValidationPart),
}

impl From<MlError> for camu_core::stage::StageError {
    fn from(e: MlError) -> Self {
        match e {
            MlError::Stage(s) => s,
            MlError::Params(p) => p.into(),
            other => camu_core::stage::StageError::Kind(Box::new(other)),
        }
    }
}
