//! camu-core: the pipeline engine, with no knowledge of machine learning and no libtorch.
//!
//! Layers, bottom up: [`params`] (typed access to `with`), [`spec`] (YAML schema, matrix
//! expansion, validation against a [`spec::Registry`] of kinds passed in by the program),
//! [`graph`] (the stage DAG), [`cache`] (content-addressed records and objects), [`process`]
//! (child processes), [`stage`] (the stage process: job description, runners, `command`),
//! [`executor`] (where stage processes run), [`progress`] (what the user sees), [`engine`]
//! (selection, resolution, scheduling, running).

pub mod cache;
pub mod engine;
pub mod executor;
pub mod graph;
pub mod params;
pub mod process;
pub mod progress;
pub mod spec;
pub mod stage;
