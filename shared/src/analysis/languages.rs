//! Language statistics by file extension and well-known file names.

use std::collections::BTreeMap;

use super::LanguageStat;
use super::index::RepoIndex;
use super::walk::FileKind;

/// (extension, language, is source code that should have tests)
const EXTENSIONS: &[(&str, &str, bool)] = &[
    ("rs", "Rust", true),
    ("go", "Go", true),
    ("py", "Python", true),
    ("pyi", "Python", true),
    ("js", "JavaScript", true),
    ("mjs", "JavaScript", true),
    ("cjs", "JavaScript", true),
    ("jsx", "JavaScript", true),
    ("ts", "TypeScript", true),
    ("mts", "TypeScript", true),
    ("cts", "TypeScript", true),
    ("tsx", "TypeScript", true),
    ("java", "Java", true),
    ("kt", "Kotlin", true),
    ("kts", "Kotlin", true),
    ("scala", "Scala", true),
    ("groovy", "Groovy", true),
    ("gradle", "Groovy", false),
    ("rb", "Ruby", true),
    ("rake", "Ruby", true),
    ("gemspec", "Ruby", false),
    ("c", "C", true),
    ("h", "C", true),
    ("cc", "C++", true),
    ("cpp", "C++", true),
    ("cxx", "C++", true),
    ("hpp", "C++", true),
    ("hh", "C++", true),
    ("hxx", "C++", true),
    ("cs", "C#", true),
    ("fs", "F#", true),
    ("php", "PHP", true),
    ("swift", "Swift", true),
    ("dart", "Dart", true),
    ("ex", "Elixir", true),
    ("exs", "Elixir", true),
    ("erl", "Erlang", true),
    ("hs", "Haskell", true),
    ("clj", "Clojure", true),
    ("lua", "Lua", true),
    ("pl", "Perl", true),
    ("pm", "Perl", true),
    ("r", "R", true),
    ("zig", "Zig", true),
    ("vue", "Vue", true),
    ("svelte", "Svelte", true),
    ("sh", "Shell", false),
    ("bash", "Shell", false),
    ("zsh", "Shell", false),
    ("ps1", "PowerShell", false),
    ("html", "HTML", false),
    ("htm", "HTML", false),
    ("css", "CSS", false),
    ("scss", "SCSS", false),
    ("sass", "SCSS", false),
    ("sql", "SQL", false),
    ("tf", "HCL", false),
    ("yml", "YAML", false),
    ("yaml", "YAML", false),
    ("json", "JSON", false),
    ("toml", "TOML", false),
    ("xml", "XML", false),
    ("md", "Markdown", false),
    ("markdown", "Markdown", false),
];

/// (exact file name, language)
const FILE_NAMES: &[(&str, &str)] = &[
    ("Dockerfile", "Dockerfile"),
    ("Containerfile", "Dockerfile"),
    ("Makefile", "Makefile"),
    ("makefile", "Makefile"),
    ("GNUmakefile", "Makefile"),
    ("CMakeLists.txt", "CMake"),
    ("Gemfile", "Ruby"),
    ("Rakefile", "Ruby"),
    ("Vagrantfile", "Ruby"),
    ("Jenkinsfile", "Groovy"),
];

/// Language of a file name, if known.
pub(crate) fn language_of(name: &str) -> Option<&'static str> {
    if let Some((_, lang)) = FILE_NAMES.iter().find(|(n, _)| *n == name) {
        return Some(lang);
    }
    if is_dockerfile(name) {
        return Some("Dockerfile");
    }
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    EXTENSIONS.iter().find(|(e, _, _)| *e == ext).map(|(_, lang, _)| *lang)
}

/// Whether the file is program source code (as opposed to config, markup or scripts).
pub(crate) fn is_source_code(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ext = ext.to_ascii_lowercase();
    EXTENSIONS.iter().any(|(e, _, code)| *e == ext && *code)
}

/// `Dockerfile`, `Containerfile`, `Dockerfile.dev`, `api.dockerfile`.
pub(crate) fn is_dockerfile(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "dockerfile"
        || lower == "containerfile"
        || (lower.starts_with("dockerfile.") && !has_known_extension(&lower))
        || lower.ends_with(".dockerfile")
}

/// `dockerfile.rs` or `dockerfile.py` is source code about Dockerfiles, not a Dockerfile.
fn has_known_extension(lower: &str) -> bool {
    lower
        .rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.iter().any(|(e, _, _)| *e == ext))
}

/// Per-language file and byte counts over the text files, sorted by bytes desc then name.
pub(crate) fn count(index: &RepoIndex) -> Vec<LanguageStat> {
    let mut stats: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for file in index.files.iter().filter(|f| f.kind == FileKind::Text) {
        if let Some(lang) = language_of(file.name()) {
            let entry = stats.entry(lang).or_default();
            entry.0 += 1;
            entry.1 += file.size;
        }
    }
    let mut out: Vec<LanguageStat> = stats
        .into_iter()
        .map(|(name, (files, bytes))| LanguageStat {
            name: name.to_string(),
            files,
            bytes,
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_extension_and_name() {
        assert_eq!(language_of("main.rs"), Some("Rust"));
        assert_eq!(language_of("App.TSX"), Some("TypeScript"));
        assert_eq!(language_of("Dockerfile"), Some("Dockerfile"));
        assert_eq!(language_of("Dockerfile.prod"), Some("Dockerfile"));
        assert_eq!(language_of("dockerfile.rs"), Some("Rust"));
        assert!(!is_dockerfile("dockerfile.py"));
        assert_eq!(language_of("Makefile"), Some("Makefile"));
        assert_eq!(language_of("LICENSE"), None);
        assert!(is_source_code("a.py"));
        assert!(!is_source_code("a.yml"));
    }
}
