//! Whether each variation of `totofs repro` can take effect on this machine, and what it takes:
//! a locale that is not installed is compiled with `localedef` into a private `LOCPATH` when
//! its sources are there; otherwise the variation is reported as not applied, with why.

use crate::investigate::vary::Vary;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The locale the varied builds use (French collation ignores case, unlike C's).
pub const VARIED_LOCALE: &str = "fr_CH.UTF-8";
const LOCALE_SOURCE: &str = "fr_CH";
const LOCALE_CHARMAP: &str = "UTF-8";
/// Where glibc's locale sources live (Debian's `locales` package).
const I18N: &str = "/usr/share/i18n";

/// A variation as it will be applied, or why it cannot be.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub vary: Vary,
    /// `Ok(what is done)`, or `Err(why it is not applied)`.
    pub effect: Result<String, String>,
}

impl Applied {
    pub fn applied(&self) -> bool {
        self.effect.is_ok()
    }

    pub fn to_value(&self) -> serde_json::Value {
        match &self.effect {
            Ok(what) => serde_json::json!({"name": self.vary.as_str(), "applied": true, "detail": what}),
            Err(why) => serde_json::json!({"name": self.vary.as_str(), "applied": false, "detail": why}),
        }
    }

    /// `locale: not applied: ...` / `umask: 022 -> 002`.
    pub fn line(&self) -> String {
        match &self.effect {
            Ok(what) => format!("{}: {what}", self.vary.as_str()),
            Err(why) => format!("{}: not applied: {why}", self.vary.as_str()),
        }
    }
}

/// What the varied builds need beyond their plan: a `LOCPATH` for a compiled locale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preparation {
    pub applied: Vec<Applied>,
    pub locpath: Option<PathBuf>,
}

impl Preparation {
    /// The variations that take effect.
    pub fn effective(&self) -> std::collections::BTreeSet<Vary> {
        self.applied.iter().filter(|a| a.applied()).map(|a| a.vary).collect()
    }
}

/// Check (and where needed prepare) each variation. `scratch` holds a compiled locale when no
/// cache directory is writable.
pub fn prepare(vary: &std::collections::BTreeSet<Vary>, scratch: &Path) -> Preparation {
    let mut p = Preparation::default();
    for v in vary {
        let effect = match v {
            Vary::Path => Ok("the build runs in another directory, at another depth".to_string()),
            Vary::Time => Ok("TZ UTC-12 -> UTC+14 (26 h apart), and the varied build runs later".to_string()),
            Vary::Env => Ok(format!("{}=varied is added", crate::investigate::vary::ENV_VARIATION)),
            Vary::Umask => Ok("umask 022 -> 002".to_string()),
            Vary::Order => Ok("the overlay lists directories in reverse order".to_string()),
            Vary::Locale => match locale(scratch) {
                Ok((how, locpath)) => {
                    p.locpath = locpath;
                    Ok(how)
                }
                Err(why) => Err(why),
            },
        };
        p.applied.push(Applied { vary: *v, effect });
    }
    p
}

/// Does `LC_ALL=<VARIED_LOCALE>` (with `locpath` as `LOCPATH`) load without complaint?
fn locale_loads(locpath: Option<&Path>) -> bool {
    let mut cmd = Command::new("locale");
    cmd.env("LC_ALL", VARIED_LOCALE).stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
    match locpath {
        Some(l) => cmd.env("LOCPATH", l),
        None => cmd.env_remove("LOCPATH"),
    };
    cmd.output().is_ok_and(|o| o.status.success() && o.stderr.is_empty())
}

/// A cache for compiled locales: `$XDG_CACHE_HOME/totofs/locale` or `~/.cache/totofs/locale`.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let dir = base.join("totofs").join("locale");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Make [`VARIED_LOCALE`] usable: installed already, or compiled into a private `LOCPATH`.
fn locale(scratch: &Path) -> Result<(String, Option<PathBuf>), String> {
    if locale_loads(None) {
        return Ok((format!("LC_ALL, LANG C.UTF-8 -> {VARIED_LOCALE} (installed)"), None));
    }
    let dirs: Vec<PathBuf> = cache_dir().into_iter().chain([scratch.join("locale")]).collect();
    build_locale(Path::new(I18N), &dirs)
}

/// Compile [`VARIED_LOCALE`] from the locale sources under `i18n` into the first usable
/// directory of `dirs` (or find it compiled there before).
fn build_locale(i18n: &Path, dirs: &[PathBuf]) -> Result<(String, Option<PathBuf>), String> {
    for dir in dirs {
        if dir.join(VARIED_LOCALE).join("LC_COLLATE").is_file() && locale_loads(Some(dir)) {
            return Ok((format!("LC_ALL, LANG C.UTF-8 -> {VARIED_LOCALE} (compiled with localedef, cached)"), Some(dir.clone())));
        }
    }
    let source = i18n.join("locales").join(LOCALE_SOURCE);
    if !source.is_file() {
        return Err(format!(
            "{VARIED_LOCALE} is not installed and its source {} is missing to build it (install the `locales` package)",
            source.display()
        ));
    }
    let mut last = String::new();
    for dir in dirs {
        if std::fs::create_dir_all(dir).is_err() {
            continue;
        }
        // Build beside, then rename into place: two runs at once never see half a locale.
        let tmp = dir.join(format!(".{VARIED_LOCALE}.{}", std::process::id()));
        let out = Command::new("localedef")
            .args(["-i", LOCALE_SOURCE, "-f", LOCALE_CHARMAP])
            .arg(&tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match out {
            Ok(o) if tmp.join("LC_COLLATE").is_file() => {
                let _ = o;
                let target = dir.join(VARIED_LOCALE);
                let _ = std::fs::remove_dir_all(&target);
                if std::fs::rename(&tmp, &target).is_ok() && locale_loads(Some(dir)) {
                    return Ok((format!("LC_ALL, LANG C.UTF-8 -> {VARIED_LOCALE} (compiled with localedef)"), Some(dir.clone())));
                }
                last = format!("the locale compiled into {} does not load", dir.display());
            }
            Ok(o) => {
                let _ = std::fs::remove_dir_all(&tmp);
                let err = String::from_utf8_lossy(&o.stderr);
                last = format!("localedef failed: {}", err.lines().next().unwrap_or("no output"));
            }
            Err(e) => {
                last = format!("cannot run localedef: {e}");
                break;
            }
        }
    }
    Err(format!("{VARIED_LOCALE} is not installed and could not be built ({last})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locale_without_sources_is_reported_not_applied() {
        let scratch = std::env::temp_dir().join(format!("totofs-locale-test-{}", std::process::id()));
        // Nothing compiled before in the scratch directory, and no sources to compile.
        let e = build_locale(Path::new("/nonexistent/i18n"), std::slice::from_ref(&scratch)).unwrap_err();
        assert!(e.contains("is not installed") && e.contains("/nonexistent/i18n/locales/fr_CH"), "{e}");
        assert!(e.contains("`locales` package"), "{e}");
        let a = Applied { vary: Vary::Locale, effect: Err("why".into()) };
        assert_eq!(a.line(), "locale: not applied: why");
        assert_eq!(a.to_value()["applied"], false);
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
