//! # scoreline-loadgen
//!
//! A load generator for the Scoreline service, the tool behind `docs/benchmarks.md`: it opens
//! many WebSocket fans on loopback, subscribes them per a scenario, publishes numbered events
//! through Redis at a fixed rate for a fixed time, and measures on the client side what fans
//! care about: every event delivered, in order, quickly.
//!
//! - [`plan`]: scenarios S1–S5 of issue 6, per-topic `seq` numbering, the publishing schedule
//!   and how events are published.
//! - [`tally`]: per-client order and loss accounting, publish→receive latency histograms.
//! - [`server_stats`]: CPU seconds and RSS of a process, read from `/proc`.
//! - [`source_ports`]: each client's local port, so 16,667 clients per process connect in
//!   constant kernel time.
//! - [`report`]: the human line and the JSON line a run ends with.
//! - [`mod@run`]: the I/O: client tasks, the publisher, the phases of a run.
//!
//! Several processes can follow the same topics ([`SharedRun`]), one of them publishing, for
//! more fans of one match than one process has descriptors (`loadgen/c100k.sh`).
//!
//! Every run is bounded in clients and time and stops by itself; it refuses non-loopback
//! addresses.

pub mod plan;
pub mod report;
pub mod run;
pub mod server_stats;
pub mod source_ports;
pub mod tally;

pub use plan::{Phase, Plan, PublishMode, Scenario};
pub use report::Report;
pub use run::{RunConfig, SharedRun, run};
