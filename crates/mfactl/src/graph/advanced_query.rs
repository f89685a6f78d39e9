//! Which requests are Graph's advanced queries on directory objects (Microsoft's "advanced query
//! capabilities"): Graph answers them only with `ConsistencyLevel: eventual`. It exists so that
//! the transport (a request sent alone) and `$batch` (an item) add the header to the same
//! requests without either importing the other.

/// Whether a request asks for `$count=true`: on directory objects an advanced query; the
/// transport adds `ConsistencyLevel: eventual` to such a request, alone or as a `$batch` item.
pub(super) fn wants_eventual_consistency(path: &str) -> bool {
    path.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = key.strip_prefix("%24").or(key.strip_prefix('$'));
            key.is_some_and(|k| k.eq_ignore_ascii_case("count"))
                && value.eq_ignore_ascii_case("true")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_count_true_asks_for_eventual_consistency() {
        assert!(wants_eventual_consistency("/beta/users?$count=true&$top=1"));
        assert!(wants_eventual_consistency(
            "/beta/users?%24top=1&%24count=TRUE"
        ));
        assert!(!wants_eventual_consistency("/beta/users?$count=false"));
        assert!(!wants_eventual_consistency("/beta/users?$select=count"));
        assert!(!wants_eventual_consistency("/beta/users/count=true"));
    }
}
