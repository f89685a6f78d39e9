//! National clouds and their Graph roots (graph-api.md §8). Tokens do not cross clouds.

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
    /// The Graph root, without a version segment.
    pub fn graph_root(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::Dod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}
