//! Who is on the other end of a request, in the coarse terms we record: the IP address and the
//! browser and OS *families* from the user agent (X3 needs families, never full strings).

use std::net::IpAddr;
use std::sync::LazyLock;

static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub browser_family: Option<String>,
    pub os_family: Option<String>,
}

impl ClientInfo {
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> ClientInfo {
        let parsed = user_agent.and_then(|ua| PARSER.parse(ua));
        let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_string());
        ClientInfo {
            ip,
            browser_family: parsed.as_ref().and_then(|p| known(p.name)),
            os_family: parsed.as_ref().and_then(|p| known(p.os)),
        }
    }

    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// "Firefox on Windows 10", for security emails and the sessions list.
    pub fn describe(&self) -> String {
        match (&self.browser_family, &self.os_family) {
            (Some(b), Some(o)) => format!("{b} on {o}"),
            (Some(b), None) => b.clone(),
            (None, Some(o)) => format!("a browser on {o}"),
            (None, None) => "an unknown browser".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_come_from_the_user_agent() {
        let c = ClientInfo::new(
            None,
            Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
        );
        assert_eq!(c.browser_family.as_deref(), Some("Firefox"));
        assert_eq!(c.os_family.as_deref(), Some("Windows 10"));
        assert_eq!(
            ClientInfo::new(None, Some("")).describe(),
            "an unknown browser"
        );
    }
}
