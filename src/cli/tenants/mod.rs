//! `mfactl plan|apply MANIFEST --tenants TENANTS.yaml [--out-dir DIR] [--max-tenants-in-flight
//! N]`: one manifest across a managed service provider's customer tenants, in one run.
//!
//! One app identity (a multi-tenant app's secret, certificate or federated credential) signs in
//! to each tenant at that tenant's authority; the tenants run side by side, each under its own
//! budgets and all under the app's ([`mfactl::graph::AppBudgets`]); a tenant whose sign-in,
//! consent, preflight or Graph fails fails alone. Each tenant's plan, journal and reports go to
//! `DIR/<tenant>/`, and a roll-up to `DIR/summary.{md,json,html}` and stdout. The exit code is
//! the most severe of the tenants' ([`run::most_severe`]).
//!
//! The command layer only: `run` holds what every tenant shares (the checked inputs, sign-in,
//! the folders, the roll-up), `plan` and `apply` the two commands as named steps. The per-tenant
//! work calls the same library the single-tenant commands call.

mod apply;
mod plan;
mod run;

pub use apply::apply;
pub use plan::plan;
