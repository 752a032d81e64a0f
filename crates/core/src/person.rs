//! Telling a named person from a team, channel or alias.
//!
//! Seed 001 item 3 ("'The team' is on call (i.e., no one)") and its pitfall table ("On-call =
//! 'team' — One name. One pager. Backup also named.") make a named individual the rule for
//! on-call, dashboard watchers and open-item owners. A name is *not* a person when it:
//!
//! - is empty, or starts with `#` (a chat channel) or `@` (a handle or group mention);
//! - looks like an address without a personal name (contains `@` and no space);
//! - contains a group word: team, squad, group, channel, crew, department, dept, ops, on-call,
//!   oncall, rotation, everyone, all, alias, pool, staff, desk, committee, office, support;
//! - joins several people ("and", "&", "+", ",", "/").
//!
//! This is a heuristic over the text; the registry still records the name as given.

/// Why a name is not one named person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAPerson {
    /// Empty or blank.
    Empty,
    /// A channel (`#…`) or handle/group mention (`@…`).
    Channel,
    /// A bare address or alias.
    Alias,
    /// Contains a word naming a group.
    Group(String),
    /// Names several people.
    Several,
}

impl std::fmt::Display for NotAPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAPerson::Empty => f.write_str("is empty"),
            NotAPerson::Channel => f.write_str("is a channel or group mention, not a person"),
            NotAPerson::Alias => f.write_str("is an address or alias, not a named person"),
            NotAPerson::Group(w) => write!(f, "names a group (\"{w}\"), not a person"),
            NotAPerson::Several => f.write_str("names several people; one name is required"),
        }
    }
}

const GROUP_WORDS: &[&str] = &[
    "team",
    "teams",
    "squad",
    "group",
    "channel",
    "crew",
    "department",
    "dept",
    "ops",
    "on-call",
    "oncall",
    "rotation",
    "everyone",
    "all",
    "alias",
    "pool",
    "staff",
    "desk",
    "committee",
    "office",
    "support",
];

/// Checks that `name` reads as one named individual.
///
/// # Errors
/// [`NotAPerson`] saying why not.
pub fn check_named_person(name: &str) -> Result<(), NotAPerson> {
    let n = name.trim();
    if n.is_empty() {
        return Err(NotAPerson::Empty);
    }
    if n.starts_with('#') || n.starts_with('@') {
        return Err(NotAPerson::Channel);
    }
    if n.contains('@') && !n.contains(' ') {
        return Err(NotAPerson::Alias);
    }
    let lower = n.to_lowercase();
    if lower.contains('&') || lower.contains('+') || lower.contains(',') || lower.contains('/') {
        return Err(NotAPerson::Several);
    }
    for word in lower.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        if word == "and" {
            return Err(NotAPerson::Several);
        }
        if GROUP_WORDS.contains(&word) {
            return Err(NotAPerson::Group(word.to_owned()));
        }
        for part in word.split('-') {
            if GROUP_WORDS.contains(&part) && !word.is_empty() {
                return Err(NotAPerson::Group(word.to_owned()));
            }
        }
    }
    if !n.chars().any(char::is_alphabetic) {
        return Err(NotAPerson::Empty);
    }
    Ok(())
}

/// Whether two names denote the same person: case-insensitive, whitespace-normalised.
pub fn same_person(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_pass_and_groups_fail() {
        for ok in ["Mike Chen", "Morteza Moradi", "Zoë Ångström", "Sarah"] {
            assert_eq!(check_named_person(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("the finance team", NotAPerson::Group("team".into())),
            ("#finance-ai", NotAPerson::Channel),
            ("@oncall", NotAPerson::Channel),
            ("finance-ai@acme.com", NotAPerson::Alias),
            ("Finance Ops", NotAPerson::Group("ops".into())),
            ("finance-oncall", NotAPerson::Group("finance-oncall".into())),
            ("Mike Chen and Sarah Li", NotAPerson::Several),
            ("Mike Chen + Sarah Li", NotAPerson::Several),
            ("  ", NotAPerson::Empty),
            (
                "Platform on-call rotation",
                NotAPerson::Group("on-call".into()),
            ),
        ];
        for (name, want) in cases {
            assert_eq!(check_named_person(name), Err(want), "{name}");
        }
    }

    #[test]
    fn same_person_ignores_case_and_spacing() {
        assert!(same_person("Morteza  Moradi", "morteza moradi"));
        assert!(!same_person("Morteza Moradi", "Mike Chen"));
    }
}
