use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::usage_event::tests::{arbitrary_event, sample_event};

fn encoded(event: &UsageEvent) -> Vec<u8> {
    let mut out = Vec::new();
    event.encode_binary(&mut out);
    out
}

fn encoded_as(form: IdForm, event: &UsageEvent) -> Vec<u8> {
    let mut out = Vec::new();
    event.encode_binary_as(form, &mut out);
    out
}

const FORMS: [IdForm; 2] = [IdForm::Text, IdForm::Compact];

/// An event with ids as the proxy and Bedrock make them: the request id is the event id,
/// Bedrock's a lowercase UUID.
fn event_with_uuid_ids() -> UsageEvent {
    let mut event = sample_event(3);
    event.request_id = event.event_id.into();
    event.upstream_request_id = Some("9f2c1a3e-5b7d-4e0f-8a6b-2c4d6e8f0a1b".into());
    event
}

#[test]
fn version_3_carries_uuid_ids_as_uuids_and_version_2_as_text() {
    let event = event_with_uuid_ids();
    let text = encoded_as(IdForm::Text, &event);
    let compact = encoded(&event);
    assert_eq!(compact, encoded_as(IdForm::Compact, &event));
    assert_eq!((text[31], compact[31]), (3, 3 | 4 | 8));
    // The request id (4 + 36 bytes) is gone; Bedrock's is 16 bytes instead of 4 + 36.
    assert_eq!(text.len() - compact.len(), 40 + 24);
    let upstream = *event
        .upstream_request_id
        .as_ref()
        .unwrap()
        .as_uuid()
        .unwrap();
    assert_eq!(&compact[compact.len() - 16..], upstream.as_bytes(), "last");
    for (form, bytes) in [(IdForm::Text, &text), (IdForm::Compact, &compact)] {
        assert_eq!(UsageEvent::decode_binary_as(form, bytes).unwrap(), event);
    }
}

#[test]
fn ids_in_any_other_form_are_carried_as_text_in_version_3() {
    let base = event_with_uuid_ids();
    let upper = base
        .upstream_request_id
        .as_ref()
        .unwrap()
        .to_text()
        .to_uppercase();
    for (request_id, upstream) in [
        // Not the event's id, or not in its lowercase hyphenated form.
        (uuid::Uuid::now_v7().to_string(), upper.clone()),
        (
            base.event_id.to_string().to_uppercase(),
            format!("{{{upper}}}"),
        ),
        (
            base.event_id.simple().to_string(),
            "9f2c1a3e5b7d4e0f8a6b2c4d6e8f0a1b".into(),
        ),
        (String::new(), String::new()),
    ] {
        let event = UsageEvent {
            request_id: request_id.into(),
            upstream_request_id: Some(upstream.into()),
            ..base.clone()
        };
        let bytes = encoded(&event);
        assert_eq!(bytes[31], 3, "{event:?}");
        assert_eq!(bytes, encoded_as(IdForm::Text, &event));
        assert_eq!(UsageEvent::decode_binary(&bytes).unwrap(), event);
    }
}

#[test]
fn an_id_in_the_other_versions_form_is_damage_named() {
    let event = event_with_uuid_ids();
    // Version 2 does not know the compact flags.
    let compact = encoded(&event);
    let error = UsageEvent::decode_binary_as(IdForm::Text, &compact)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("flags 0x0f set bits this build does not know"),
        "{error}"
    );
    // Version 3 has one form per event: its UUID ids are not text.
    let text = encoded_as(IdForm::Text, &event);
    let error = error_of(&text);
    assert!(
        error.contains("request_id is the event id as text"),
        "{error}"
    );
    let mut only_upstream = event.clone();
    only_upstream.request_id = "req-1".into();
    let error = error_of(&encoded_as(IdForm::Text, &only_upstream));
    assert!(
        error.contains("upstream_request_id is a UUID as text"),
        "{error}"
    );
    // A UUID flagged for an absent upstream id, and one cut short.
    let mut bad = compact.clone();
    bad[31] &= !1;
    assert!(error_of(&bad).contains("flagged a UUID but flagged absent"));
    let error = error_of(&compact[..FIXED_LEN + 10]);
    assert!(
        error.contains("upstream_request_id is cut short: 10 bytes, its UUID takes 16"),
        "{error}"
    );
    let error = error_of(&compact[..compact.len() - 1]);
    assert!(
        error.contains("proxy_instance declares 7 bytes but 6 remain"),
        "{error}"
    );
}

#[test]
fn an_event_reads_back_as_it_was_written() {
    let mut event = sample_event(7);
    event.customer_id = "cust-é✓".into();
    let bytes = encoded(&event);
    assert_eq!(UsageEvent::decode_binary(&bytes).unwrap(), event);
    // About half the JSON line's size.
    assert!(bytes.len() * 3 < event.encode_json().unwrap().len() * 2);
}

#[test]
fn absent_optional_fields_read_back_absent() {
    let mut event = sample_event(1);
    event.upstream_request_id = None;
    event.upstream_latency_ms = None;
    event.api = None;
    let bytes = encoded(&event);
    assert_eq!(bytes[27], 0, "api absent");
    assert_eq!(bytes[31], 0, "no flags");
    assert_eq!(UsageEvent::decode_binary(&bytes).unwrap(), event);
}

#[test]
fn the_fixed_fields_sit_where_the_layout_says() {
    let event = sample_event(0x0102_0304_0506_0708);
    let bytes = encoded(&event);
    assert_eq!(&bytes[..16], event.event_id.as_bytes());
    assert_eq!(u16::from_le_bytes([bytes[16], bytes[17]]), 1);
    assert_eq!(
        i64::from_le_bytes(bytes[18..26].try_into().unwrap()),
        1_764_374_400_123
    );
    assert_eq!((bytes[26], bytes[27], bytes[30], bytes[31]), (1, 1, 1, 3));
    assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 200);
    assert_eq!(u64::from_le_bytes(bytes[32..40].try_into().unwrap()), 12);
    assert_eq!(
        u64::from_le_bytes(bytes[96..104].try_into().unwrap()),
        0x0102_0304_0506_0708
    );
    assert_eq!(u32::from_le_bytes(bytes[104..108].try_into().unwrap()), 6);
    assert_eq!(&bytes[108..114], b"cust-1");
}

#[test]
fn every_code_is_distinct_and_known_both_ways() {
    for (table, name) in [
        (OPERATION_CODES.map(|(_, code)| code).to_vec(), "operation"),
        (API_CODES.map(|(_, code)| code).to_vec(), "api"),
        (OUTCOME_CODES.map(|(_, code)| code).to_vec(), "outcome"),
    ] {
        let mut sorted = table.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), table.len(), "{name} codes repeat");
        assert!(!table.contains(&0), "{name} uses 0, which means absent");
    }
    // The decoder's tables by code hold each code's value and nothing else.
    fn find<T: Copy>(codes: &[(T, u8)], code: u8) -> Option<T> {
        codes
            .iter()
            .find(|(_, known)| *known == code)
            .map(|(value, _)| *value)
    }
    for code in 0..=255_u8 {
        let at = usize::from(code);
        assert_eq!(OPERATION_BY_CODE[at], find(&OPERATION_CODES, code));
        assert_eq!(API_BY_CODE[at], find(&API_CODES, code));
        assert_eq!(OUTCOME_BY_CODE[at], find(&OUTCOME_CODES, code));
    }
    for (operation, _) in OPERATION_CODES {
        let mut event = sample_event(1);
        event.operation = operation;
        assert_eq!(UsageEvent::decode_binary(&encoded(&event)).unwrap(), event);
    }
}

fn error_of(bytes: &[u8]) -> String {
    UsageEvent::decode_binary(bytes).unwrap_err().to_string()
}

#[test]
fn damage_is_named() {
    let good = encoded(&sample_event(1));
    assert!(error_of(&good[..50]).contains("the fixed fields alone take 104"));
    assert!(error_of(&good[..good.len() - 1]).contains("proxy_instance declares 7 bytes"));
    assert!(error_of(&good[..106]).contains("customer_id is cut short"));
    let mut longer = good.clone();
    longer.push(0);
    assert!(error_of(&longer).contains("1 bytes follow the last field"));

    let mut bad = good.clone();
    bad[26] = 9;
    assert!(
        error_of(&bad).contains("operation has code 9"),
        "{}",
        error_of(&bad)
    );
    let mut bad = good.clone();
    bad[27] = 200;
    assert!(error_of(&bad).contains("api has code 200"));
    let mut bad = good.clone();
    bad[30] = 0;
    assert!(error_of(&bad).contains("outcome has code 0"));
    let mut bad = good.clone();
    bad[31] = 0x84;
    assert!(error_of(&bad).contains("flags 0x84"));
    let mut bad = good.clone();
    bad[31] = 1;
    assert!(error_of(&bad).contains("upstream_latency_ms is 50 but flagged absent"));
    let mut bad = good.clone();
    bad[16] = 2;
    assert_eq!(
        UsageEvent::decode_binary(&bad),
        Err(DecodeError::UnknownVersion {
            found: 2,
            supported: 1
        })
    );
    let mut bad = good.clone();
    bad[18..26].copy_from_slice(&i64::MAX.to_le_bytes());
    assert!(error_of(&bad).contains("out of range"));
    let mut bad = good;
    bad[108] = 0xff;
    assert!(error_of(&bad).contains("customer_id is not UTF-8"));
}

#[test]
fn strings_read_back_whether_or_not_their_run_is_all_text() {
    // A length of 128 bytes or more is not UTF-8 itself, so the run is not text as a whole
    // and each string is checked on its own; a string that is not UTF-8 is damage either way.
    let mut event = event_with_uuid_ids();
    event.model_id = format!(
        "arn:aws:bedrock:us-east-1:{}:inference-profile/é",
        "1".repeat(120)
    )
    .into();
    event.customer_id = "cust-é✓".into();
    for form in FORMS {
        let bytes = encoded_as(form, &event);
        assert!(std::str::from_utf8(&bytes[FIXED_LEN..]).is_err());
        assert_eq!(UsageEvent::decode_binary_as(form, &bytes).unwrap(), event);
    }
    let mut short = event_with_uuid_ids();
    short.customer_id = "cust-é✓".into();
    let bytes = encoded(&short);
    assert!(std::str::from_utf8(&bytes[FIXED_LEN..bytes.len() - 16]).is_ok());
    assert_eq!(UsageEvent::decode_binary(&bytes).unwrap(), short);
    // A string cut inside a character, in a run that is text as a whole: not a boundary.
    let mut cut = bytes.clone();
    let customer_len = FIXED_LEN;
    let len = u32::from_le_bytes(cut[customer_len..customer_len + 4].try_into().unwrap());
    cut[customer_len..customer_len + 4].copy_from_slice(&(len - 1).to_le_bytes());
    cut.insert(FIXED_LEN + 4 + len as usize, b'x');
    let error = error_of(&cut);
    assert!(
        error.contains("customer_id is not UTF-8") || error.contains("key_id"),
        "{error}"
    );
}

#[test]
fn a_timestamp_before_the_epoch_reads_back() {
    let mut event = sample_event(1);
    event.occurred_at = Utc.timestamp_millis_opt(-86_400_123).unwrap();
    assert_eq!(UsageEvent::decode_binary(&encoded(&event)).unwrap(), event);
}

proptest! {
    #[test]
    fn any_event_reads_back_and_writes_the_same_bytes(event in arbitrary_event()) {
        for form in FORMS {
            let bytes = encoded_as(form, &event);
            let decoded = UsageEvent::decode_binary_as(form, &bytes).unwrap();
            prop_assert_eq!(&decoded, &event);
            prop_assert_eq!(encoded_as(form, &decoded), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_an_event_that_writes_them_back(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        for form in FORMS {
            if let Ok(event) = UsageEvent::decode_binary_as(form, &bytes) {
                prop_assert_eq!(encoded_as(form, &event), bytes.clone());
            }
        }
    }

    #[test]
    fn a_damaged_event_is_an_error_or_writes_itself_back(
        event in arbitrary_event(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        for form in FORMS {
            let mut bytes = encoded_as(form, &event);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            bytes.truncate(bytes.len() - cut.index(bytes.len() / 4 + 1));
            if let Ok(event) = UsageEvent::decode_binary_as(form, &bytes) {
                prop_assert_eq!(encoded_as(form, &event), bytes);
            }
        }
    }
}
