//! The engine joins the manifest, the planner and the Graph client: it fetches live state
//! concurrently and plans as results stream in, and it executes a plan's writes with a journal.
//! Order, concurrency and progress live here; pacing and retry live in the transport.

mod apply;
mod fetch;
mod journal;
mod progress;

pub use apply::apply;
pub use fetch::plan;
pub use journal::{Journal, JournalError};
pub use progress::Progress;

/// The tracing target of progress spans (the CLI draws bars for it alone).
pub fn progress_target() -> &'static str {
    progress::PROGRESS_TARGET
}
