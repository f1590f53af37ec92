//! Resume tokens written by builds before `Resume` held a `Cursor` (fixtures/tokens/, one per
//! kind of place a run stops at) still read, as the cursor they meant, and are written back
//! the same: a token a schedule stored, or a state machine's parts file, survives an upgrade.

use acl_audit::Resume;
use acl_audit::model::{Cursor, KeyRange, ObjectRef};

fn token(name: &str) -> (String, Resume) {
    let text = test_support::docs::read(&format!("fixtures/tokens/{name}"));
    let text = text.trim().to_owned();
    let resume = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
    (text, resume)
}

#[test]
fn tokens_of_every_kind_read_as_their_cursor_and_write_back_the_same() {
    let after = |key: &str, version_id: Option<&str>| Cursor::After {
        key: Some(key.to_owned()),
        version_id: version_id.map(str::to_owned),
    };
    let range = |after: &str, through: Option<&str>| KeyRange {
        after: Some(after.to_owned()),
        through: through.map(str::to_owned),
    };
    for (name, cursor) in [
        ("listing.json", after("logs/0999", None)),
        ("versions.json", after("k9", Some("v7"))),
        (
            "ranges.json",
            Cursor::Ranges(vec![range("m", Some("t")), range("x", None)]),
        ),
        ("keys-only.json", Cursor::Listed),
    ] {
        let (text, resume) = token(name);
        assert_eq!(resume.cursor, cursor, "{name}");
        assert_eq!(
            serde_json::to_string(&resume).unwrap(),
            text,
            "{name} writes back the same"
        );
    }
    let (_, versions) = token("versions.json");
    assert!(versions.versions);
    assert_eq!(versions.keys, [ObjectRef::version("k1", "v3"), ObjectRef::from("k2")]);
}

#[test]
fn an_inventory_token_names_its_place_whether_or_not_the_report_was_read() {
    for (name, read_to_end, file) in [("inventory.json", false, 2), ("inventory-read.json", true, 3)] {
        let (text, resume) = token(name);
        let Cursor::Inventory {
            place,
            read_to_end: read,
        } = &resume.cursor
        else {
            panic!("{name}: {resume:?}")
        };
        assert_eq!((*read, place.file), (read_to_end, file), "{name}");
        assert!(place.manifest.ends_with("/manifest.json"));
        assert_eq!(resume.cursor.is_done(), read_to_end);
        assert_eq!(
            serde_json::to_string(&resume).unwrap(),
            text,
            "{name} writes back the same"
        );
    }
}

/// Earlier builds named the last key listed even when the listing was complete; the key meant
/// nothing then, and is not written again.
#[test]
fn a_complete_listing_that_named_its_last_key_reads_as_listed() {
    let (_, resume) = token("listed-with-last-key.json");
    assert_eq!(resume.cursor, Cursor::Listed);
    let written = serde_json::to_value(&resume).unwrap();
    assert_eq!(
        (&written["start_after"], &written["listing_complete"]),
        (&serde_json::Value::Null, &true.into())
    );
}
