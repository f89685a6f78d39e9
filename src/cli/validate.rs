//! `mfactl validate`: check a manifest without contacting Graph.

use std::path::PathBuf;

use clap::Args;

use super::args::{ManifestArgs, load_manifest};
use super::exit;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The desired-state file (YAML, or CSV by its .csv extension).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub reading: ManifestArgs,
}

pub fn run(args: &ValidateArgs) -> miette::Result<u8> {
    let manifest = load_manifest(&args.manifest, &args.reading)?;
    let count = |f: fn(&mfactl::manifest::DesiredUser) -> bool| {
        manifest.users.iter().filter(|u| f(u)).count()
    };
    println!(
        "{}: ok, {} users (preferredMethod set for {}, systemPreferred for {}, perUserMfaState for {})",
        args.manifest.display(),
        manifest.users.len(),
        count(|u| u.preferred_method.is_some()),
        count(|u| u.system_preferred.is_some()),
        count(|u| u.per_user_mfa_state.is_some()),
    );
    print_fallback_lists(&manifest);
    let selectors = &manifest.selectors;
    if let Some(all) = &selectors.all_users {
        let enabled = match all.account_enabled {
            Some(true) => " (enabled accounts)",
            Some(false) => " (disabled accounts)",
            None => "",
        };
        println!(
            "allUsers: every {} user{enabled}, resolved at plan time",
            all.user_type.as_str()
        );
    }
    if !selectors.groups.is_empty() {
        let names: Vec<String> = selectors
            .groups
            .iter()
            .map(|g| format!("\"{}\"", mfactl::text::printable(&g.group)))
            .collect();
        println!(
            "groups: {} (members resolved at plan time)",
            names.join(", ")
        );
    }
    if !selectors.exclude.is_empty() {
        println!("exclude: {} entries", selectors.exclude.len());
    }
    if !manifest.protect.is_empty() {
        let count = manifest.protect.len();
        println!(
            "protect: {count} {} never written",
            if count == 1 { "account" } else { "accounts" }
        );
    }
    if let Some(limit) = manifest.max_changes {
        println!("maxChanges: apply refuses a plan with more than {limit} writes");
    }
    if let Some(policy) = &manifest.policy {
        let parts: Vec<&str> = policy.parts.iter().map(|p| p.part.as_str()).collect();
        println!("policy: manages {}", parts.join(", "));
    }
    if manifest.allow_mfa_gap {
        println!(
            "allowMfaGap: per-user MFA is disabled even for users no Conditional Access policy \
             requires MFA for"
        );
    }
    Ok(exit::OK)
}

/// Each `preferredMethod` fallback list the manifest gives and to how many users (selectors
/// too), with what the planner does with it: the first method a user has registered is set.
fn print_fallback_lists(manifest: &mfactl::manifest::Manifest) {
    use mfactl::model::PreferredMethods;
    let mut lists: Vec<(PreferredMethods, String)> = Vec::new();
    let mut add = |list: Option<PreferredMethods>, who: String| {
        if let Some(list) = list.filter(|list| list.is_list()) {
            lists.push((list, who));
        }
    };
    let mut users: Vec<(PreferredMethods, usize)> = Vec::new();
    for list in manifest.users.iter().filter_map(|u| u.preferred_method) {
        match users.iter_mut().find(|(seen, _)| *seen == list) {
            Some((_, count)) => *count += 1,
            None => users.push((list, 1)),
        }
    }
    for (list, count) in users {
        add(
            Some(list),
            format!("{count} {}", if count == 1 { "user" } else { "users" }),
        );
    }
    let selectors = &manifest.selectors;
    if let Some(all) = &selectors.all_users {
        add(all.settings.preferred_method, "allUsers".to_owned());
    }
    for group in &selectors.groups {
        add(
            group.settings.preferred_method,
            format!("group \"{}\"", mfactl::text::printable(&group.group)),
        );
    }
    for (list, who) in lists {
        println!(
            "preferredMethod {list} for {who}: each user gets the first of them they have \
             registered; a user with none is blocked"
        );
    }
}
