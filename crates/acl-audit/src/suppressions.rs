//! Suppressions: findings a team has accepted, with the reason (a bucket serving a public
//! website, say). A suppression file is a JSON list of entries
//! `{"account_id"?, "bucket", "key"? (a glob; absent: every key), "kinds"? (absent: every
//! kind), "reason", "until"? (YYYY-MM-DD)}`. A finding whose every kind an active entry covers
//! is still written, marked `suppressed` with its reason, and counted apart from the exposures
//! (so it raises no alarm); an entry past its `until` no longer applies, and the report names it
//! (docs/report.md, "Suppressions").

use serde::{Deserialize, Serialize};

use crate::findings::{FindingKind, Suppressed};
use crate::model::{excerpt, glob_matches};

/// One entry of a suppression file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub bucket: String,
    /// A glob (`*`, `?`) over the key; every key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The kinds it accepts; every kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<FindingKind>>,
    pub reason: String,
    /// The last day it applies (UTC), `YYYY-MM-DD`; for good when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A suppression file, read on a given day: the entries that apply, and those past their end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    active: Vec<Entry>,
    expired: Vec<Entry>,
}

/// What a report says of the suppressions it ran with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionsUsed {
    /// Entries that applied.
    pub active: usize,
    /// Entries past their `until`, which no longer apply: renew or remove them.
    pub expired: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the suppression file {source_name}: {problem}")]
pub struct SuppressionsError {
    pub source_name: String,
    pub problem: String,
}

impl Suppressions {
    /// The file `text` (named `source` in errors) as read on `today` (`YYYY-MM-DD`). A file
    /// that is not a list of well-formed entries is an error naming the first bad entry.
    pub fn parse(text: &[u8], source: &str, today: &str) -> Result<Self, SuppressionsError> {
        let error = |problem: String| SuppressionsError {
            source_name: excerpt(source),
            problem,
        };
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(text).map_err(|err| error(format!("not a JSON list of entries ({err})")))?;
        let mut suppressions = Suppressions::default();
        for (n, value) in entries.into_iter().enumerate() {
            let entry: Entry = serde_json::from_value(value).map_err(|err| error(format!("entry {n}: {err}")))?;
            let blank = |text: &str| text.trim().is_empty();
            if blank(&entry.bucket) || blank(&entry.reason) {
                return Err(error(format!("entry {n}: bucket and reason must not be blank")));
            }
            if entry.kinds.as_ref().is_some_and(Vec::is_empty) {
                return Err(error(format!(
                    "entry {n}: kinds is empty (leave it out for every kind)"
                )));
            }
            match &entry.until {
                Some(until) if !is_date(until) => {
                    return Err(error(format!(
                        "entry {n}: until {:?} is not a date (YYYY-MM-DD)",
                        excerpt(until)
                    )));
                }
                // Dates of one format compare as text.
                Some(until) if until.as_str() < today => suppressions.expired.push(entry),
                _ => suppressions.active.push(entry),
            }
        }
        Ok(suppressions)
    }

    /// The entry that accepts a finding of `kinds` on `key` of `bucket` in `account_id`, when
    /// one active entry covers every kind; the first such entry's reason.
    pub fn covering(
        &self,
        account_id: Option<&str>,
        bucket: &str,
        key: &str,
        kinds: &[FindingKind],
    ) -> Option<Suppressed> {
        if kinds.is_empty() {
            return None;
        }
        self.active
            .iter()
            .find(|entry| {
                entry.bucket == bucket
                    && entry.account_id.as_deref().is_none_or(|id| Some(id) == account_id)
                    && entry.key.as_deref().is_none_or(|glob| glob_matches(glob, key))
                    && entry
                        .kinds
                        .as_ref()
                        .is_none_or(|accepted| kinds.iter().all(|kind| accepted.contains(kind)))
            })
            .map(|entry| Suppressed {
                reason: entry.reason.clone(),
                until: entry.until.clone(),
            })
    }

    /// What a report says of them.
    pub fn used(&self) -> SuppressionsUsed {
        SuppressionsUsed {
            active: self.active.len(),
            expired: self.expired.clone(),
        }
    }
}

fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
        && matches!(text[5..7].parse::<u32>(), Ok(1..=12))
        && matches!(text[8..10].parse::<u32>(), Ok(1..=31))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"[
        {"bucket": "site", "reason": "the public website"},
        {"account_id": "111122223333", "bucket": "shared", "key": "exports/*", "kinds": ["authenticated_read"],
         "reason": "partners read exports", "until": "2026-12-31"},
        {"bucket": "old", "reason": "a campaign", "until": "2026-01-31"}
    ]"#;

    fn parsed() -> Suppressions {
        Suppressions::parse(FILE.as_bytes(), "suppressions.json", "2026-12-06").unwrap()
    }

    #[test]
    fn an_entry_covers_its_bucket_account_keys_and_kinds() {
        let s = parsed();
        let public = [FindingKind::PublicRead];
        let authenticated = [FindingKind::AuthenticatedRead];
        assert_eq!(
            s.covering(None, "site", "index.html", &public).unwrap().reason,
            "the public website"
        );
        let exports = |account, key: &str, kinds: &[FindingKind]| s.covering(account, "shared", key, kinds);
        assert!(exports(Some("111122223333"), "exports/a.csv", &authenticated).is_some());
        assert!(
            exports(Some("444455556666"), "exports/a.csv", &authenticated).is_none(),
            "another account"
        );
        assert!(
            exports(None, "exports/a.csv", &authenticated).is_none(),
            "an account it cannot tell"
        );
        assert!(
            exports(Some("111122223333"), "private/a.csv", &authenticated).is_none(),
            "another key"
        );
        let both = [FindingKind::AuthenticatedRead, FindingKind::PublicRead];
        assert!(
            exports(Some("111122223333"), "exports/a.csv", &both).is_none(),
            "a kind it does not accept"
        );
        assert!(
            s.covering(None, "site", "k", &[]).is_none(),
            "no finding, nothing to suppress"
        );
    }

    #[test]
    fn an_entry_past_its_until_no_longer_applies_and_is_named() {
        let s = parsed();
        assert!(s.covering(None, "old", "k", &[FindingKind::PublicRead]).is_none());
        let used = s.used();
        assert_eq!(used.active, 2);
        assert_eq!(used.expired.len(), 1);
        assert_eq!(used.expired[0].bucket, "old");
        let last_day = Suppressions::parse(FILE.as_bytes(), "f", "2026-12-31").unwrap();
        assert_eq!(last_day.used().active, 2, "until is the last day it applies");
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_the_entry() {
        let cases = [
            ("{}", "not a JSON list"),
            (r#"[{"bucket": "b"}]"#, "entry 0: missing field `reason`"),
            (
                r#"[{"bucket": "b", "reason": "r"}, {"bucket": "b", "reason": "r", "until": "31/12/2026"}]"#,
                "entry 1: until",
            ),
            (
                r#"[{"bucket": "b", "reason": "r", "kinds": ["public_reed"]}]"#,
                "entry 0: unknown variant",
            ),
            (
                r#"[{"bucket": "b", "reason": " "}]"#,
                "entry 0: bucket and reason must not be blank",
            ),
            (
                r#"[{"bucket": "b", "reason": "r", "kinds": []}]"#,
                "entry 0: kinds is empty",
            ),
            (
                r#"[{"bucket": "b", "reason": "r", "prefix": "p/"}]"#,
                "entry 0: unknown field `prefix`",
            ),
        ];
        for (text, says) in cases {
            let err = Suppressions::parse(text.as_bytes(), "s3://config/suppressions.json", "2026-12-06").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("the suppression file s3://config/suppressions.json: "),
                "{message}"
            );
            assert!(message.contains(says), "{text}: {message}");
        }
    }
}
