//! National clouds, their Graph roots and sign-in authorities (graph-api.md §8). Tokens do not
//! cross clouds.

use clap::ValueEnum;

/// A Microsoft cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    /// Microsoft Entra global service.
    #[default]
    Global,
    /// US Government L4 (GCC High).
    Usgov,
    /// US Government L5 (DoD).
    Dod,
    /// Microsoft Azure operated by 21Vianet.
    China,
}

impl Cloud {
    /// Every cloud.
    pub const ALL: [Cloud; 4] = [Cloud::Global, Cloud::Usgov, Cloud::Dod, Cloud::China];

    /// The Graph root, without a version segment.
    pub fn graph_root(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::Dod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// The sign-in authority host (scheme and host, no tenant): where tokens for this cloud's
    /// Graph are issued. China: the long-standing `login.chinacloudapi.cn`, which the Azure SDKs
    /// still use (newer Microsoft docs also name `login.partner.microsoftonline.cn`).
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::Usgov | Cloud::Dod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
}

impl Cloud {
    /// Whether the cloud's Graph serves `/users/{id}/authentication/methods`. Microsoft's
    /// availability table for the authentication methods APIs (`authentication-list-methods`,
    /// v1.0) marks "China operated by 21Vianet" as not available, while `signInPreferences` and
    /// `requirements` (`authentication-get`) are available in every cloud.
    pub fn serves_authentication_methods(self) -> bool {
        self != Cloud::China
    }

    /// The cloud's name in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Cloud::Global => "the global cloud",
            Cloud::Usgov => "the US Government L4 cloud",
            Cloud::Dod => "the US Government L5 (DoD) cloud",
            Cloud::China => "the China cloud (operated by 21Vianet)",
        }
    }
}

/// The app-only scope for a Graph root: `{root}/.default` (graph-api.md §9), i.e. every
/// permission granted to the application.
pub fn default_scope(graph_root: &str) -> String {
    format!("{}/.default", graph_root.trim_end_matches('/'))
}

/// A delegated scope for a Graph root: `{root}/{permission}`, e.g.
/// `https://graph.microsoft.com/User.Read.All`.
pub fn delegated_scope(graph_root: &str, permission: &str) -> String {
    format!("{}/{permission}", graph_root.trim_end_matches('/'))
}

/// The v1 resource a managed identity endpoint (IMDS, App Service) is asked for: the Graph root
/// itself, without `/.default` or a trailing slash. Both the Azure SDK for Python
/// (`_scopes_to_resource`) and MSAL Python (`_scope_to_resource`) turn `{root}/.default` into
/// exactly this.
pub fn resource(graph_root: &str) -> String {
    graph_root.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_cloud_the_command_line_takes() {
        assert_eq!(Cloud::ALL.as_slice(), Cloud::value_variants());
    }

    #[test]
    fn each_cloud_signs_in_at_its_own_authority() {
        assert_eq!(
            Cloud::Global.authority_host(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            Cloud::Dod.authority_host(),
            Cloud::Usgov.authority_host(),
            "both US Government clouds share one authority"
        );
        assert_eq!(
            Cloud::China.authority_host(),
            "https://login.chinacloudapi.cn"
        );
        assert_eq!(
            default_scope("https://graph.microsoft.us/"),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            delegated_scope("http://127.0.0.1:9000", "User.Read.All"),
            "http://127.0.0.1:9000/User.Read.All"
        );
        assert_eq!(
            resource("https://graph.microsoft.com/"),
            "https://graph.microsoft.com"
        );
    }
}
