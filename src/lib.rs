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
