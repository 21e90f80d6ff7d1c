//! GitHub App settings from the environment.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com/";
/// Default timeout of one GitHub request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach GitHub as the App.
#[derive(Clone, Debug)]
pub struct GithubConfig {
    pub app_id: u64,
    /// The App's RSA private key, PEM (PKCS#1 or PKCS#8).
    pub private_key: SecretString,
    /// `https://api.github.com/`, or `https://HOST/api/v3/` for GitHub Enterprise Server.
    /// Always ends with `/`.
    pub api_url: Url,
    pub timeout: Duration,
}

impl GithubConfig {
    /// Reads GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY (PEM, `\n`-escaped on one line accepted) or
    /// GITHUB_APP_PRIVATE_KEY_PATH, GITHUB_API_URL and GITHUB_TIMEOUT_SECS.
    ///
    /// `Ok(None)` when the App is not configured (no id and no key). Every problem is returned
    /// at once as `(VAR, message)`; messages never contain the key.
    pub fn from_vars(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<GithubConfig>, Vec<(&'static str, String)>> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let id_raw = var("GITHUB_APP_ID");
        let key_raw = var("GITHUB_APP_PRIVATE_KEY").map(SecretString::from);
        let key_path = var("GITHUB_APP_PRIVATE_KEY_PATH");
        if id_raw.is_none() && key_raw.is_none() && key_path.is_none() {
            return Ok(None);
        }
        let mut errors: Vec<(&'static str, String)> = Vec::new();

        let app_id = match id_raw.as_deref().map(str::trim) {
            None => {
                errors.push(("GITHUB_APP_ID", "required when a private key is set".into()));
                None
            }
            Some(raw) => match raw.parse::<u64>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    errors.push(("GITHUB_APP_ID", format!("must be a positive integer, got {raw:?}")));
                    None
                }
            },
        };

        let key = match (key_raw, key_path) {
            (Some(_), Some(_)) => {
                errors.push((
                    "GITHUB_APP_PRIVATE_KEY_PATH",
                    "set either GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, not both".into(),
                ));
                None
            }
            (None, None) => {
                errors.push((
                    "GITHUB_APP_PRIVATE_KEY",
                    "required (or GITHUB_APP_PRIVATE_KEY_PATH) when GITHUB_APP_ID is set".into(),
                ));
                None
            }
            (Some(text), None) => {
                let pem = normalize_pem(text.expose_secret());
                match validate_key(&pem) {
                    Ok(()) => Some(pem),
                    Err(msg) => {
                        errors.push(("GITHUB_APP_PRIVATE_KEY", msg));
                        None
                    }
                }
            }
            (None, Some(path)) => match std::fs::read_to_string(path.trim()) {
                Err(e) => {
                    errors.push((
                        "GITHUB_APP_PRIVATE_KEY_PATH",
                        format!("cannot read {:?}: {}", path.trim(), e.kind()),
                    ));
                    None
                }
                Ok(text) => {
                    let pem = normalize_pem(&text);
                    match validate_key(&pem) {
                        Ok(()) => Some(pem),
                        Err(msg) => {
                            errors.push(("GITHUB_APP_PRIVATE_KEY_PATH", msg));
                            None
                        }
                    }
                }
            },
        };

        let api_url = match var("GITHUB_API_URL") {
            None => Some(Url::parse(DEFAULT_API_URL).expect("default API URL")),
            Some(raw) => match parse_api_url(raw.trim()) {
                Ok(u) => Some(u),
                Err(msg) => {
                    errors.push(("GITHUB_API_URL", msg));
                    None
                }
            },
        };

        let timeout = match var("GITHUB_TIMEOUT_SECS") {
            None => Some(DEFAULT_TIMEOUT),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(s) if (1..=600).contains(&s) => Some(Duration::from_secs(s)),
                _ => {
                    errors.push((
                        "GITHUB_TIMEOUT_SECS",
                        format!("must be whole seconds between 1 and 600, got {raw:?}"),
                    ));
                    None
                }
            },
        };

        match (app_id, key, api_url, timeout) {
            (Some(app_id), Some(private_key), Some(api_url), Some(timeout)) if errors.is_empty() => {
                Ok(Some(GithubConfig {
                    app_id,
                    private_key,
                    api_url,
                    timeout,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// A PEM as platforms store it: `\n` escapes become newlines, surrounding quotes and blanks go.
fn normalize_pem(raw: &str) -> SecretString {
    let trimmed = raw.trim().trim_matches('"').trim();
    let text = trimmed.replace("\\r\\n", "\n").replace("\\n", "\n").replace('\r', "");
    SecretString::from(format!("{}\n", text.trim()))
}

/// Checks that `pem` is a usable RSA private key by signing a throwaway JWT with it.
fn validate_key(pem: &SecretString) -> Result<(), String> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
        .map_err(|_| "not a valid RSA private key in PEM format".to_owned())?;
    crate::github::auth::sign_app_jwt(&key, 1)
        .map(|_| ())
        .map_err(|_| "the RSA private key cannot sign (malformed key)".to_owned())
}

/// Parses GITHUB_API_URL: http(s), no credentials, query or fragment; a trailing `/` is added.
fn parse_api_url(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http(s) URL, got scheme {:?}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_not_configured() {
        let none = GithubConfig::from_vars(&|_| None).unwrap();
        assert!(none.is_none());
        let only_url =
            GithubConfig::from_vars(&|k| (k == "GITHUB_API_URL").then(|| "https://ghe.example/api/v3".to_owned()))
                .unwrap();
        assert!(only_url.is_none());
    }

    #[test]
    fn api_url_gets_trailing_slash() {
        let u = parse_api_url("https://ghe.example/api/v3").unwrap();
        assert_eq!(u.as_str(), "https://ghe.example/api/v3/");
        assert!(parse_api_url("ftp://x/").is_err());
        assert!(parse_api_url("https://user:pw@x/").is_err());
        assert!(parse_api_url("not a url").is_err());
    }

    #[test]
    fn escaped_pem_is_unfolded() {
        let raw = "\"-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\nBBBB\\n-----END RSA PRIVATE KEY-----\\n\"";
        let pem = normalize_pem(raw);
        assert_eq!(
            pem.expose_secret(),
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\nBBBB\n-----END RSA PRIVATE KEY-----\n"
        );
    }
}
