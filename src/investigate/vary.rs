//! The conditions `totofs repro` can vary between two builds (`--vary path,time,...`), by name.

use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// Extra variable set in the varied build when `--vary env` is given.
pub const ENV_VARIATION: &str = "TOTOFS_REPRO_VARIATION";

/// What can be varied between the two builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vary {
    Path,
    Time,
    Env,
    Umask,
    Order,
    Locale,
}

impl Vary {
    pub const ALL: [Vary; 6] = [Vary::Path, Vary::Time, Vary::Env, Vary::Umask, Vary::Order, Vary::Locale];

    pub fn as_str(self) -> &'static str {
        match self {
            Vary::Path => "path",
            Vary::Time => "time",
            Vary::Env => "env",
            Vary::Umask => "umask",
            Vary::Order => "order",
            Vary::Locale => "locale",
        }
    }

    /// Parse `path,time,...` (empty entries ignored).
    pub fn parse_list(s: &str) -> Result<BTreeSet<Vary>> {
        let mut out = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v = Vary::ALL.iter().copied().find(|v| v.as_str() == part).ok_or_else(|| {
                Error::Usage(format!("--vary: unknown variation '{part}' (known: path,time,env,umask,order,locale)"))
            })?;
            out.insert(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_list_parses_and_rejects_unknown_names() {
        let all = Vary::parse_list("path,time,env,umask,order,locale").unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(Vary::parse_list(" time, ,path").unwrap(), [Vary::Path, Vary::Time].into());
        let e = Vary::parse_list("path,weather").unwrap_err();
        assert!(e.to_string().contains("'weather'"));
        assert_eq!(e.exit_code(), 2);
    }
}
