//! Small, forgiving readers for manifest formats (no TOML/XML parser is available, and a
//! line-based look is enough for the handful of keys the analyser needs).

/// Whether a TOML document declares `[table]` or a `[table.sub]` table.
pub(crate) fn toml_has_table(text: &str, table: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        line.strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .is_some_and(|name| {
                let name = name.trim();
                name == table || name.starts_with(&format!("{table}."))
            })
    })
}

/// First `key = "value"` assignment in a TOML document (any table).
pub(crate) fn toml_string(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| unquote(v.trim()).to_string())
    })
}

/// Content of the first `<tag>value</tag>` in an XML document.
pub(crate) fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("</")? + start;
    Some(text[start..end].trim().to_string()).filter(|v| !v.is_empty())
}

/// Value of the `go 1.22` directive of a go.mod.
pub(crate) fn go_directive(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("go "))
        .map(|v| v.trim().to_string())
}

/// The first non-empty, non-comment line (version files such as `.nvmrc`).
pub(crate) fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

/// The first version number in a requirement such as `>=3.10,<4` or `^18.2`, cut to `parts`
/// components: `version_number(">=3.10.1", 2)` = `3.10`.
pub(crate) fn version_number(spec: &str, parts: usize) -> Option<String> {
    let start = spec.find(|c: char| c.is_ascii_digit())?;
    let rest = &spec[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let version: Vec<&str> = rest[..end].split('.').filter(|p| !p.is_empty()).take(parts).collect();
    Some(version.join("."))
}

/// Whether a requirements file pins every requirement exactly (`name==1.2.3`), which makes it
/// a lock file in practice.
pub(crate) fn requirements_pinned(text: &str) -> bool {
    let mut reqs = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .peekable();
    reqs.peek().is_some() && reqs.all(|l| l.contains("=="))
}

fn unquote(v: &str) -> &str {
    let v = v.split(" #").next().unwrap_or(v).trim();
    v.trim_matches(|c| c == '"' || c == '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_helpers() {
        let text = "[package]\nname = \"x\"\n\n[workspace.dependencies]\nserde = \"1\"\n[project]\nrequires-python = \">=3.11\" # comment\n";
        assert!(toml_has_table(text, "workspace"));
        assert!(!toml_has_table(text, "tool.poetry"));
        assert_eq!(toml_string(text, "requires-python").as_deref(), Some(">=3.11"));
        assert_eq!(toml_string(text, "missing"), None);
    }

    #[test]
    fn version_numbers() {
        assert_eq!(version_number(">=3.10.1,<4", 2).as_deref(), Some("3.10"));
        assert_eq!(version_number("^18.2.0", 1).as_deref(), Some("18"));
        assert_eq!(version_number("v20", 1).as_deref(), Some("20"));
        assert_eq!(version_number("lts/iron", 1), None);
    }

    #[test]
    fn misc_readers() {
        assert_eq!(go_directive("module x\n\ngo 1.22.1\n").as_deref(), Some("1.22.1"));
        assert_eq!(
            xml_tag(
                "<properties><java.version>17</java.version></properties>",
                "java.version"
            )
            .as_deref(),
            Some("17")
        );
        assert!(requirements_pinned(
            "# deps\nflask==3.0.0\n-r base.txt\nrequests==2.31.0\n"
        ));
        assert!(!requirements_pinned("flask>=3\n"));
        assert!(!requirements_pinned("# empty\n"));
    }
}
