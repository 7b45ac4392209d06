//! Coarse client info for access records: a country code and a user-agent family,
//! never an address or a full user-agent string (which can single a user out).

/// What an access record says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// ISO 3166 country code as the platform geolocated the request (two capital
    /// letters; anything else is dropped).
    pub country: Option<String>,
    /// The user agent's family ([`agent_family`]).
    pub agent: &'static str,
}

impl ClientInfo {
    /// The info for a request's country and `User-Agent`, reduced to what is kept.
    pub fn new(country: Option<&str>, user_agent: Option<&str>) -> Self {
        let country = country
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            .map(str::to_owned);
        Self {
            country,
            agent: agent_family(user_agent.unwrap_or_default()),
        }
    }
}

/// Every family [`agent_family`] answers.
pub const FAMILIES: [&str; 8] = [
    "edge", "opera", "firefox", "chrome", "safari", "curl", "node", "other",
];

impl ClientInfo {
    /// The info as stored: a country, and a family name (one of [`FAMILIES`]; anything
    /// else reads as `other`).
    pub fn stored(country: Option<String>, family: &str) -> Self {
        Self {
            country,
            agent: FAMILIES
                .into_iter()
                .find(|f| *f == family)
                .unwrap_or("other"),
        }
    }
}

/// A user agent's family: `edge`, `opera`, `firefox`, `chrome`, `safari`, `curl`,
/// `node`, or `other`. The order matters: Edge and Opera also say Chrome, Chrome also
/// says Safari.
pub fn agent_family(user_agent: &str) -> &'static str {
    const FAMILIES: [(&str, &str); 8] = [
        ("Edg/", "edge"),
        ("OPR/", "opera"),
        ("Firefox/", "firefox"),
        ("Chrome/", "chrome"),
        ("Chromium/", "chrome"),
        ("Safari/", "safari"),
        ("curl/", "curl"),
        ("node", "node"),
    ];
    FAMILIES
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map_or("other", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_countries() {
        for (ua, family) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/142.0.0.0 Safari/537.36",
                "chrome",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36 Edg/120",
                "edge",
            ),
            (
                "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17 Safari/605.1.15",
                "safari",
            ),
            (
                "Mozilla/5.0 (X11; rv:128.0) Gecko/20100101 Firefox/128.0",
                "firefox",
            ),
            ("curl/8.5.0", "curl"),
            ("node", "node"),
            ("", "other"),
            ("Wget/1.21", "other"),
        ] {
            assert_eq!(agent_family(ua), family, "{ua}");
        }
        assert_eq!(
            ClientInfo::new(Some("DE"), None).country.as_deref(),
            Some("DE")
        );
        for bad in ["de", "DEU", "", "1A", "<script>"] {
            assert_eq!(ClientInfo::new(Some(bad), None).country, None, "{bad}");
        }
    }
}
