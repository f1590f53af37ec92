//! What changed since the last completed run of the same target: each finding new or resolved,
//! a line each in `changes.jsonl` beside the findings file, and `first_seen` on every findings
//! line (docs/report.md, "Changes between runs").
//!
//! The last run's findings file is read once into a [`Baseline`]: per object a 64-bit hash of
//! its account, bucket, key and version, the kinds it listed, the kinds that took effect and the
//! day it was first seen, 16 bytes in a sorted vector, plus two bytes of marks, so a
//! million findings cost about 18 MB whatever their keys' lengths (docs/benchmark.md, "Changes
//! between runs"). During the run the recorder asks it each line's `first_seen` and marks each
//! object audited or failed; afterwards [`compare`] reads this run's file and the last one's,
//! line by line, and writes the changes. A finding is compared by the kinds that take effect: a
//! grant Block Public Access now ignores, or a bucket whose ACLs are now disabled, resolves it.
//! Two objects whose hashes collide (odds about 1 in 10^7 for a million findings) would share
//! one entry.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::findings::{FindingKind, Place, Suppressed};
use crate::model::S3Location;
use crate::s3::upload::NotWritten;

/// The changes file, beside `findings.jsonl`.
pub const CHANGES_FILE: &str = "changes.jsonl";

/// The longest line read from a findings file: far above any line this tool writes (a line
/// holds at most an ACL's 100 grants).
const MOST_LINE_BYTES: usize = 8 << 20;

/// Marks set during a run on a baseline object: the low byte holds the kinds it has now.
const AUDITED: u16 = 1 << 8;
const FAILED: u16 = 1 << 9;
const COMPARED: u16 = 1 << 10;

/// Whether a finding appeared or went since the last completed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    New,
    Resolved,
}

/// A line of `changes.jsonl`: one kind of finding on one object, new or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLine {
    pub account_id: Option<String>,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub kind: FindingKind,
    pub change: Change,
    /// The day the object's finding was first seen (a new one: this run's day).
    pub first_seen: String,
    /// A new finding that a suppression entry accepts: counted, but raising no alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
}

/// The report's `changes`: what this run found against the last completed run of its target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// The last completed run's findings file; `None` on a target's first run, when every
    /// finding is new.
    pub baseline: Option<String>,
    /// Where the change lines went.
    pub uri: String,
    /// Findings (an object's kind) that took effect now and not in the baseline.
    pub new: usize,
    /// Findings of the baseline that no longer take effect: the object made private, deleted,
    /// neutralised by Block Public Access, or in a bucket whose ACLs are now disabled.
    pub resolved: usize,
    /// Findings in both.
    pub persisting: usize,
    /// Objects with a new exposure (public or any AWS account) that no suppression accepts:
    /// what the `NewExposedObjects` metric counts and its alarm fires on.
    pub new_exposed_objects: usize,
    /// Objects of the baseline with an exposure that is resolved.
    pub resolved_exposed_objects: usize,
    /// False when the run stopped early, started from a resume token, or could not reach a
    /// bucket or account: then only the objects it audited are compared, and a finding of any
    /// other is neither resolved nor persisting (`not_compared` counts them).
    pub complete: bool,
    pub not_compared: usize,
    /// Per bucket with a new or resolved exposure: the two object counts (the per-bucket
    /// metrics of a sweep).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_bucket: Vec<BucketChanges>,
}

/// One bucket's part of [`ChangeCounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketChanges {
    pub account_id: Option<String>,
    pub bucket: String,
    pub new_exposed_objects: usize,
    pub resolved_exposed_objects: usize,
}

impl ChangeCounts {
    /// `bucket`'s counts (zero when it had no change).
    pub fn of_bucket(&self, account_id: Option<&str>, bucket: &str) -> (usize, usize) {
        self.by_bucket
            .iter()
            .find(|changes| changes.account_id.as_deref() == account_id && changes.bucket == bucket)
            .map_or((0, 0), |changes| {
                (changes.new_exposed_objects, changes.resolved_exposed_objects)
            })
    }

    fn count_bucket(&mut self, view: &LineView, new: usize, resolved: usize) {
        // Lines come bucket by bucket: the last entry first, so that a sweep's many changes
        // do not each search every bucket.
        let found = self
            .by_bucket
            .iter_mut()
            .rev()
            .find(|changes| changes.account_id == view.account_id && changes.bucket == view.bucket);
        let changes = match found {
            Some(changes) => changes,
            None => {
                self.by_bucket.push(BucketChanges {
                    account_id: view.account_id.clone(),
                    bucket: view.bucket.clone(),
                    ..BucketChanges::default()
                });
                let last = self.by_bucket.len() - 1;
                &mut self.by_bucket[last]
            }
        };
        changes.new_exposed_objects += new;
        changes.resolved_exposed_objects += resolved;
    }
}

/// The last completed run's findings, held as hashes (module docs).
#[derive(Debug, Default)]
pub struct Baseline {
    uri: Option<String>,
    entries: Vec<Entry>,
    marks: Vec<AtomicU16>,
    dates: Vec<String>,
    today: String,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    listed: u8,
    active: u8,
    first_seen: u16,
}

/// A findings file that cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the findings file {uri}: {detail}")]
pub struct ChangesError {
    pub uri: String,
    pub detail: String,
}

/// What this module reads of a findings file's line (a finding's or a failure's).
#[derive(Deserialize)]
struct LineView {
    #[serde(default)]
    account_id: Option<String>,
    bucket: String,
    key: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    findings: Option<Vec<FindingKind>>,
    #[serde(default)]
    effective: Option<bool>,
    #[serde(default)]
    neutralised: Vec<FindingKind>,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    suppressed: Option<Suppressed>,
}

impl LineView {
    fn place(&self) -> Place<'_> {
        Place {
            account_id: self.account_id.as_deref(),
            bucket: &self.bucket,
            region: None,
        }
    }

    fn id(&self) -> u64 {
        object_id(&self.place(), &self.key, self.version_id.as_deref())
    }

    /// The change line of `kind` on this line's object (a new one keeps its suppression).
    fn change(&self, kind: FindingKind, change: Change, today: &str) -> ChangeLine {
        ChangeLine {
            account_id: self.account_id.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            kind,
            change,
            first_seen: self.first_seen.clone().unwrap_or_else(|| today.to_owned()),
            suppressed: (change == Change::New).then(|| self.suppressed.clone()).flatten(),
        }
    }

    /// The kinds listed, and those of them that take effect.
    fn kinds(&self) -> (u8, u8) {
        let listed = mask(self.findings.as_deref().unwrap_or_default());
        let active = if self.effective == Some(false) {
            0
        } else {
            listed & !mask(&self.neutralised)
        };
        (listed, active)
    }
}

/// A bit per kind, in [`FindingKind::ALL`]'s order.
pub fn mask(kinds: &[FindingKind]) -> u8 {
    kinds.iter().fold(0, |mask, kind| mask | bit(*kind))
}

fn bit(kind: FindingKind) -> u8 {
    let index = FindingKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    1 << index
}

fn kinds_of(mask: u8) -> impl Iterator<Item = FindingKind> {
    FindingKind::ALL.into_iter().filter(move |kind| mask & bit(*kind) != 0)
}

fn object_id(place: &Place<'_>, key: &str, version_id: Option<&str>) -> u64 {
    let mut hasher = DefaultHasher::new();
    (place.account_id, place.bucket, key, version_id).hash(&mut hasher);
    hasher.finish()
}

impl Baseline {
    /// No earlier run: every finding is new, first seen `today` (`YYYY-MM-DD`).
    pub fn none(today: &str) -> Self {
        Baseline {
            today: today.to_owned(),
            ..Baseline::default()
        }
    }

    /// The findings file at `source`, read line by line.
    pub async fn read(source: &mut LineSource, today: &str) -> Result<Self, ChangesError> {
        let mut baseline = Baseline::none(today);
        baseline.uri = Some(source.uri());
        let mut dates = std::collections::HashMap::new();
        while let Some(line) = source.next_line().await? {
            let view = source.parse(&line)?;
            let (listed, active) = view.kinds();
            if listed == 0 {
                continue; // a failure's line: nothing was known of the object
            }
            let first_seen = view.first_seen.as_deref().unwrap_or(today);
            let date = match dates.get(first_seen) {
                Some(index) => *index,
                None => {
                    baseline.dates.push(first_seen.to_owned());
                    dates.insert(first_seen.to_owned(), baseline.dates.len() - 1);
                    baseline.dates.len() - 1
                }
            };
            baseline.entries.push(Entry {
                id: view.id(),
                listed,
                active,
                first_seen: u16::try_from(date).map_err(|_| source.error("more than 65 536 first-seen days"))?,
            });
        }
        baseline.entries.sort_unstable_by_key(|entry| entry.id);
        baseline.entries.dedup_by(|later, kept| {
            let same = later.id == kept.id;
            if same {
                kept.listed |= later.listed;
                kept.active |= later.active;
            }
            same
        });
        baseline.marks = baseline.entries.iter().map(|_| AtomicU16::new(0)).collect();
        Ok(baseline)
    }

    /// The last completed run's findings file, if there was one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The objects it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |entry| entry.id).ok()
    }

    fn mark(&self, place: &Place<'_>, key: &str, version_id: Option<&str>, marks: u16) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let index = self.find(object_id(place, key, version_id))?;
        self.marks[index].fetch_or(marks, Ordering::Relaxed);
        Some(index)
    }

    /// A findings line's `first_seen` for an object found with `listed` now: the baseline's day
    /// when it listed the object already, today's otherwise. Marks the object audited.
    pub fn first_seen(&self, place: &Place<'_>, key: &str, version_id: Option<&str>) -> &str {
        match self.mark(place, key, version_id, AUDITED) {
            Some(index) => &self.dates[usize::from(self.entries[index].first_seen)],
            None => &self.today,
        }
    }

    /// An object audited and found clean: any finding the baseline has for it is resolved.
    pub fn audited_clean(&self, place: &Place<'_>, key: &str, version_id: Option<&str>) {
        self.mark(place, key, version_id, AUDITED);
    }

    /// An object whose ACL could not be fetched: its baseline findings are not compared.
    pub fn failed(&self, place: &Place<'_>, key: &str, version_id: Option<&str>) {
        self.mark(place, key, version_id, FAILED);
    }
}

/// Where change lines go (the findings writer's outputs implement it).
pub trait LineSink {
    fn write_line(&mut self, line: &[u8]) -> impl Future<Output = Result<(), NotWritten>> + Send;
}

/// Compares this run's findings (`current`, the file it has just written) with `baseline`'s
/// (`previous`, read again) and writes each new and resolved finding to `sink`. A baseline
/// object this run neither audited nor failed is resolved when `covered` says its bucket was
/// audited whole (it was deleted, made clean, or its bucket's ACLs are now disabled), and not
/// compared otherwise.
pub async fn compare<S: LineSink>(
    baseline: &Baseline,
    current: &mut LineSource,
    previous: Option<&mut LineSource>,
    covered: impl Fn(Option<&str>, &str) -> bool,
    sink: &mut S,
) -> Result<ChangeCounts, CompareError> {
    let mut counts = ChangeCounts {
        baseline: baseline.uri.clone(),
        complete: true,
        ..ChangeCounts::default()
    };
    while let Some(line) = current.next_line().await.map_err(CompareError::Read)? {
        let view = current.parse(&line).map_err(CompareError::Read)?;
        let (listed, active) = view.kinds();
        let index = if baseline.is_empty() {
            None
        } else {
            baseline.find(view.id())
        };
        if listed == 0 {
            if let Some(index) = index {
                baseline.marks[index].fetch_or(FAILED, Ordering::Relaxed);
            }
            continue;
        }
        let before = index.map_or(0, |index| {
            baseline.marks[index].fetch_or(AUDITED | u16::from(active), Ordering::Relaxed);
            baseline.entries[index].active
        });
        let new = active & !before;
        counts.persisting += (active & before).count_ones() as usize;
        counts.new += new.count_ones() as usize;
        if view.suppressed.is_none() && kinds_of(new).any(FindingKind::is_exposure) {
            counts.new_exposed_objects += 1;
            counts.count_bucket(&view, 1, 0);
        }
        for kind in kinds_of(new) {
            write(sink, &view.change(kind, Change::New, &baseline.today)).await?;
        }
    }
    let Some(previous) = previous else {
        return Ok(counts);
    };
    while let Some(line) = previous.next_line().await.map_err(CompareError::Read)? {
        let view = previous.parse(&line).map_err(CompareError::Read)?;
        let (_, before) = view.kinds();
        let Some(index) = baseline.find(view.id()).filter(|_| before != 0) else {
            continue;
        };
        let marks = baseline.marks[index].load(Ordering::Relaxed);
        if marks & COMPARED != 0 {
            continue; // each baseline object once, though a file may name it twice
        }
        let now = (marks & 0xff) as u8;
        let resolved =
            if marks & FAILED == 0 && (marks & AUDITED != 0 || covered(view.account_id.as_deref(), &view.bucket)) {
                before & !now
            } else {
                counts.complete = false;
                counts.not_compared += before.count_ones() as usize;
                0
            };
        counts.resolved += resolved.count_ones() as usize;
        if kinds_of(resolved).any(FindingKind::is_exposure) {
            counts.resolved_exposed_objects += 1;
            counts.count_bucket(&view, 0, 1);
        }
        for kind in kinds_of(resolved) {
            write(sink, &view.change(kind, Change::Resolved, &baseline.today)).await?;
        }
        baseline.marks[index].fetch_or(COMPARED, Ordering::Relaxed);
    }
    Ok(counts)
}

async fn write<S: LineSink>(sink: &mut S, change: &ChangeLine) -> Result<(), CompareError> {
    // Plain data with string keys: serialising cannot fail.
    let mut json = serde_json::to_vec(change).unwrap_or_default();
    json.push(b'\n');
    sink.write_line(&json).await.map_err(CompareError::NotWritten)
}

/// Why the changes were not written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Read(#[from] ChangesError),
    #[error(transparent)]
    NotWritten(NotWritten),
}

/// A findings file read line by line, from S3 or a local file, in bounded memory.
pub enum LineSource {
    S3 {
        location: S3Location,
        body: Option<aws_sdk_s3::primitives::ByteStream>,
        client: Client,
        buffer: BytesMut,
        done: bool,
    },
    File {
        path: PathBuf,
        reader: std::io::BufReader<std::fs::File>,
    },
}

impl LineSource {
    /// The object at `location`, fetched when first read.
    pub fn s3(client: &Client, location: &S3Location) -> Self {
        LineSource::S3 {
            location: location.clone(),
            body: None,
            client: client.clone(),
            buffer: BytesMut::new(),
            done: false,
        }
    }

    pub fn file(path: impl Into<PathBuf>) -> Result<Self, ChangesError> {
        let path = path.into();
        let file = std::fs::File::open(&path).map_err(|err| ChangesError {
            uri: path.display().to_string(),
            detail: err.to_string(),
        })?;
        Ok(LineSource::File {
            path,
            reader: std::io::BufReader::new(file),
        })
    }

    /// `s3://bucket/key` or a local path.
    pub fn open(client: &Client, uri: &str) -> Result<Self, ChangesError> {
        match uri.parse::<S3Location>() {
            Ok(location) if uri.starts_with("s3://") => Ok(LineSource::s3(client, &location)),
            _ => LineSource::file(uri),
        }
    }

    pub fn uri(&self) -> String {
        match self {
            LineSource::S3 { location, .. } => location.to_string(),
            LineSource::File { path, .. } => path.display().to_string(),
        }
    }

    fn error(&self, detail: impl Into<String>) -> ChangesError {
        ChangesError {
            uri: self.uri(),
            detail: detail.into(),
        }
    }

    fn parse(&self, line: &[u8]) -> Result<LineView, ChangesError> {
        crate::ocsf::parse_line(line).map_err(|err| self.error(format!("a line is not a findings line: {err}")))
    }

    /// The next line without its newline; blank lines are skipped.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ChangesError> {
        loop {
            let line = match self {
                LineSource::File { path, reader } => {
                    let mut line = Vec::new();
                    let read = reader
                        .by_ref()
                        .take(MOST_LINE_BYTES as u64 + 1)
                        .read_until(b'\n', &mut line)
                        .map_err(|err| ChangesError {
                            uri: path.display().to_string(),
                            detail: err.to_string(),
                        })?;
                    if read == 0 {
                        return Ok(None);
                    }
                    line
                }
                LineSource::S3 { .. } => match self.next_s3_line().await? {
                    Some(line) => line,
                    None => return Ok(None),
                },
            };
            if line.len() > MOST_LINE_BYTES {
                return Err(self.error(format!("a line is longer than {MOST_LINE_BYTES} bytes")));
            }
            let trimmed = line.trim_ascii();
            if !trimmed.is_empty() {
                return Ok(Some(trimmed.to_vec()));
            }
        }
    }

    async fn next_s3_line(&mut self) -> Result<Option<Vec<u8>>, ChangesError> {
        let LineSource::S3 {
            location,
            body,
            client,
            buffer,
            done,
        } = self
        else {
            return Ok(None);
        };
        loop {
            if let Some(end) = buffer.iter().position(|byte| *byte == b'\n') {
                return Ok(Some(buffer.split_to(end + 1).to_vec()));
            }
            if *done {
                return Ok((!buffer.is_empty()).then(|| buffer.split().to_vec()));
            }
            if buffer.len() > MOST_LINE_BYTES {
                return Ok(Some(buffer.split().to_vec()));
            }
            let error = |detail: String| ChangesError {
                uri: location.to_string(),
                detail,
            };
            if body.is_none() {
                let object = Box::pin(
                    client
                        .get_object()
                        .bucket(&location.bucket)
                        .key(&location.prefix)
                        .send(),
                )
                .await
                .map_err(|err| error(DisplayErrorContext(&err).to_string()))?;
                *body = Some(object.body);
            }
            let Some(stream) = body.as_mut() else {
                return Ok(None);
            };
            match stream.try_next().await.map_err(|err| error(err.to_string()))? {
                Some(chunk) => buffer.extend_from_slice(&chunk),
                None => *done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lines(Vec<String>);

    impl LineSink for Lines {
        async fn write_line(&mut self, line: &[u8]) -> Result<(), NotWritten> {
            self.0.push(String::from_utf8_lossy(line).trim_end().to_owned());
            Ok(())
        }
    }

    /// A test's file, removed when the test ends, passed or failed.
    struct TestFile(PathBuf);

    impl Drop for TestFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file(name: &str, lines: &[serde_json::Value]) -> TestFile {
        let path = std::env::temp_dir().join(format!("acl-audit-changes-{}-{name}", std::process::id()));
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&path, text).unwrap();
        TestFile(path)
    }

    fn finding(key: &str, kinds: &[&str], first_seen: &str) -> serde_json::Value {
        serde_json::json!({"account_id": "111", "bucket": "b", "key": key, "version_id": null,
            "findings": kinds, "effective": true, "grants": [], "first_seen": first_seen})
    }

    #[tokio::test]
    async fn new_resolved_and_persisting_findings_are_told_apart() {
        let previous = file(
            "previous.jsonl",
            &[
                finding("stays", &["public_read"], "2026-01-01"),
                finding("fixed", &["public_read"], "2026-01-02"),
                finding("deleted", &["other_account_grant"], "2026-01-03"),
                finding("grew", &["public_read"], "2026-01-04"),
            ],
        );
        let baseline = Baseline::read(&mut LineSource::file(&previous.0).unwrap(), "2026-02-01")
            .await
            .unwrap();
        let place = Place {
            account_id: Some("111"),
            bucket: "b",
            region: None,
        };
        assert_eq!(baseline.first_seen(&place, "stays", None), "2026-01-01");
        assert_eq!(baseline.first_seen(&place, "grew", None), "2026-01-04");
        assert_eq!(baseline.first_seen(&place, "fresh", None), "2026-02-01");
        baseline.audited_clean(&place, "fixed", None);
        let current = file(
            "current.jsonl",
            &[
                finding("stays", &["public_read"], "2026-01-01"),
                finding("grew", &["public_read", "public_write_acp"], "2026-01-04"),
                finding("fresh", &["authenticated_read"], "2026-02-01"),
            ],
        );
        let mut sink = Lines(Vec::new());
        let counts = compare(
            &baseline,
            &mut LineSource::file(&current.0).unwrap(),
            Some(&mut LineSource::file(&previous.0).unwrap()),
            |_, _| true,
            &mut sink,
        )
        .await
        .unwrap();
        let changes: Vec<(String, String, String)> = sink
            .0
            .iter()
            .map(|line| {
                let line: ChangeLine = serde_json::from_str(line).unwrap();
                (line.key, format!("{:?}", line.kind), format!("{:?}", line.change))
            })
            .collect();
        let expected = [
            ("grew", "PublicWriteAcp", "New"),
            ("fresh", "AuthenticatedRead", "New"),
            ("fixed", "PublicRead", "Resolved"),
            ("deleted", "OtherAccountGrant", "Resolved"),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(changes, expected);
        assert_eq!((counts.new, counts.resolved, counts.persisting), (2, 2, 2));
        assert_eq!((counts.new_exposed_objects, counts.resolved_exposed_objects), (2, 1));
        assert!(counts.complete);
    }

    #[tokio::test]
    async fn a_neutralised_finding_is_resolved_and_an_unreached_one_not_compared() {
        let previous = file(
            "previous-2.jsonl",
            &[
                finding("ignored", &["public_read"], "2026-01-01"),
                finding("unreached", &["public_read"], "2026-01-01"),
                finding("failed", &["public_read"], "2026-01-01"),
            ],
        );
        let baseline = Baseline::read(&mut LineSource::file(&previous.0).unwrap(), "2026-02-01")
            .await
            .unwrap();
        let mut neutralised = finding("ignored", &["public_read"], "2026-01-01");
        neutralised["effective"] = false.into();
        let failure = serde_json::json!({"account_id": "111", "bucket": "b", "key": "failed",
            "version_id": null, "error": {"code": "AccessDenied", "message": "no"}});
        let current = file("current-2.jsonl", &[neutralised, failure]);
        let mut sink = Lines(Vec::new());
        let counts = compare(
            &baseline,
            &mut LineSource::file(&current.0).unwrap(),
            Some(&mut LineSource::file(&previous.0).unwrap()),
            |_, _| false,
            &mut sink,
        )
        .await
        .unwrap();
        assert_eq!(sink.0.len(), 1, "{:?}", sink.0);
        assert!(sink.0[0].contains("\"ignored\"") && sink.0[0].contains("resolved"));
        assert_eq!((counts.resolved, counts.not_compared, counts.complete), (1, 2, false));
    }

    #[tokio::test]
    async fn a_line_that_is_not_a_finding_is_an_error_naming_the_file() {
        let path = file("broken.jsonl", &[serde_json::json!({"no": "bucket"})]);
        let err = Baseline::read(&mut LineSource::file(&path.0).unwrap(), "2026-02-01")
            .await
            .unwrap_err();
        assert!(
            err.uri.ends_with("broken.jsonl") && err.detail.contains("not a findings line"),
            "{err}"
        );
    }
}
