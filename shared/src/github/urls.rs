//! Building API paths safely and following `Link` pagination headers.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

use super::GithubError;

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a `/`-separated path (file path, branch name); refuses empty, `.` and `..` parts.
pub(crate) fn segments(what: &str, s: &str) -> Result<String, GithubError> {
    if s.is_empty() || s.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(GithubError::InvalidInput(format!("bad {what}: {s:?}")));
    }
    Ok(s.split('/').map(segment).collect::<Vec<_>>().join("/"))
}

/// Validates `owner/name` and returns it ready for a path.
pub(crate) fn repo(full_name: &str) -> Result<String, GithubError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    match full_name.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(full_name.to_owned()),
        _ => Err(GithubError::InvalidInput(format!(
            "repository must be owner/name, got {full_name:?}"
        ))),
    }
}

/// The `rel="next"` URL of a `Link` header, if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// Whether `url` is on the API's origin (a token is only ever sent there).
pub(crate) fn same_origin(url: &Url, api: &Url) -> bool {
    url.origin() == api.origin() && url.path().starts_with(api.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_validates() {
        assert_eq!(segments("path", "src/a b.rs").unwrap(), "src/a%20b.rs");
        assert!(segments("path", "a/../b").is_err());
        assert!(segments("path", "/etc").is_err());
        assert_eq!(repo("octo-org/hello.world").unwrap(), "octo-org/hello.world");
        assert!(repo("octo/../x").is_err());
        assert!(repo("octo").is_err());
    }

    #[test]
    fn parses_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://api.github.com/x?page=2"));
        h.insert(LINK, "<https://api.github.com/x?page=1>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
    }
}
