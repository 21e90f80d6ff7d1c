//! `/autodevops …` commands in pull request comments.

use serde::{Deserialize, Serialize};

/// The word every command starts with.
pub const PREFIX: &str = "/autodevops";

/// The reply to `/autodevops help`.
pub const HELP: &str = "AutoDevOps commands (comment on a pull request; you need write access to the repository):\n\
\n\
- `/autodevops analyze`: analyse this pull request's latest commit\n\
- `/autodevops ci`: generate a CI workflow for this repository\n\
- `/autodevops help`: show this message";

/// A command given in a pull request comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Analyze,
    Ci,
    Help,
}

/// What the first line of a comment says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The comment does not start with `/autodevops`.
    NotACommand,
    Command(Command),
    /// `/autodevops <word>` with a word we do not know.
    Unknown(String),
}

/// Reads the command at the start of a comment (leading blank space is skipped; `/autodevops`
/// alone means help; the prefix and the word ignore case).
pub fn parse(body: &str) -> Parsed {
    let first_line = body.trim_start().lines().next().unwrap_or("");
    let mut words = first_line.split_whitespace();
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case(PREFIX) => {}
        _ => return Parsed::NotACommand,
    }
    match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("help") => Parsed::Command(Command::Help),
        Some("analyze" | "analyse") => Parsed::Command(Command::Analyze),
        Some("ci") => Parsed::Command(Command::Ci),
        Some(other) => Parsed::Unknown(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_from_the_first_line() {
        assert_eq!(parse("/autodevops analyze"), Parsed::Command(Command::Analyze));
        assert_eq!(
            parse("\n  /AutoDevOps  Analyze please\nmore text"),
            Parsed::Command(Command::Analyze)
        );
        assert_eq!(parse("/autodevops ci"), Parsed::Command(Command::Ci));
        assert_eq!(parse("/autodevops help"), Parsed::Command(Command::Help));
        assert_eq!(parse("/autodevops"), Parsed::Command(Command::Help));
        assert_eq!(parse("/autodevops deploy"), Parsed::Unknown("deploy".into()));
    }

    #[test]
    fn other_text_is_not_a_command() {
        for body in [
            "",
            "LGTM",
            "please run /autodevops analyze",
            "/autodevopsanalyze",
            "text\n/autodevops analyze",
        ] {
            assert_eq!(parse(body), Parsed::NotACommand, "{body:?}");
        }
    }
}
