//! camu-lab: the experiment as the planner sees it, with no libtorch: the per-example privacy
//! audit's arithmetic ([`audit`]), the stage kinds
//! ([`kinds`]) and unlearning methods ([`methods`]) with their parameters, versions and the
//! sources of their defaults, the protocol's vocabulary ([`protocol`]), the metric schema
//! ([`metrics`]), and the comparison tables and plots ([`report`]).

pub mod audit;
pub mod kinds;
pub mod methods;
pub mod metrics;
pub mod protocol;
pub mod python;
pub mod report;
pub mod torch_lib;
