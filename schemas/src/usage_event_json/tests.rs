use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::reader::{equal_words, parse_canonical_millis, plain_string_length};
use super::*;

/// The single pass on its own (names not shared with other records).
fn plain_event(bytes: &[u8]) -> Option<UsageEvent> {
    decode_plain_event(bytes, &mut Names::default())
}

fn sample_event() -> UsageEvent {
    UsageEvent {
        event_id: Uuid::from_u128(0x0193_7a2b_4c5d_7e6f_8a9b_0c1d_2e3f_4a5b),
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at: Utc.timestamp_millis_opt(1_764_374_400_123).unwrap(),
        customer_id: "cust_01JDX".into(),
        key_id: "key_01JDX".into(),
        request_id: "0193a7b2-0000-7000-8000-000000000001".into(),
        upstream_request_id: Some("0193a7b2-0000-7000-8000-000000000002".into()),
        model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0".into(),
        operation: Operation::ConverseStream,
        api: Some(ApiSurface::Bedrock),
        status: 200,
        outcome: Outcome::Success,
        input_tokens: 1_234,
        output_tokens: 56,
        cache_read_tokens: 0,
        cache_write_tokens: 2_048,
        latency_ms: 812,
        upstream_latency_ms: Some(800),
        request_bytes: 4_096,
        response_bytes: 1_024,
        proxy_instance: "proxy-ip-10-0-1-17-4242".into(),
        instance_seq: 18_446_744_073_709_551_615,
    }
}

/// The serde decode (the reference), and whether the single pass agrees with it: it either
/// declines (`None`) or yields exactly serde's event.
fn assert_agrees_with_serde(bytes: &[u8]) {
    let reference = UsageEvent::decode_json_probing_version(bytes);
    if let Some(event) = plain_event(bytes) {
        assert_eq!(
            Ok(&event),
            reference.as_ref(),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(UsageEvent::decode_json(bytes), reference);
}

#[test]
fn records_as_producers_write_them_take_the_single_pass() {
    let mut event = sample_event();
    assert_eq!(
        plain_event(&event.encode_json().unwrap()),
        Some(event.clone())
    );
    event.upstream_request_id = None;
    event.upstream_latency_ms = None;
    let pretty = serde_json::to_vec_pretty(&event).unwrap();
    assert_eq!(plain_event(&pretty), Some(event));
}

#[test]
fn field_order_is_the_declaration_order() {
    let columns: Vec<&[u8]> = crate::usage_event::USAGE_EVENT_COLUMNS
        .iter()
        .map(|column| column.as_bytes())
        .collect();
    assert_eq!(columns, FIELD_ORDER.to_vec());
}

#[test]
fn fields_in_another_order_take_the_single_pass_too() {
    let event = sample_event();
    let value: serde_json::Value = serde_json::from_slice(&event.encode_json().unwrap()).unwrap();
    let alphabetical = value.to_string();
    assert!(alphabetical.starts_with(r#"{"api""#), "{alphabetical}");
    assert_eq!(plain_event(alphabetical.as_bytes()), Some(event));
}

#[test]
fn other_well_formed_records_fall_back_to_serde_and_decode_the_same() {
    let text = String::from_utf8(sample_event().encode_json().unwrap()).unwrap();
    let escaped = text.replace("cust_01JDX", r"cust_\u0030\n");
    let unknown_field = text.replacen('{', r#"{"region":{"name":[1,2]},"#, 1);
    let offset_time = text.replace(
        "2025-11-29T00:00:00.123Z",
        "2025-11-29T01:00:00.123456+01:00",
    );
    let missing_optional = text.replace(r#""upstream_latency_ms":800,"#, "");
    for record in [&escaped, &unknown_field, &missing_optional] {
        assert_ne!(record, &text, "the case changes the record");
        assert_eq!(plain_event(record.as_bytes()), None, "{record}");
        assert!(
            UsageEvent::decode_json(record.as_bytes()).is_ok(),
            "{record}"
        );
        assert_agrees_with_serde(record.as_bytes());
    }
    assert_eq!(
        UsageEvent::decode_json(escaped.as_bytes())
            .unwrap()
            .customer_id,
        "cust_0\n"
    );
    // Timestamps in other RFC 3339 forms are parsed by chrono, as serde's path parses them.
    let leap_second = text.replace("2025-11-29T00:00:00.123Z", "2025-11-29T23:59:60.123Z");
    for record in [&offset_time, &leap_second] {
        assert!(plain_event(record.as_bytes()).is_some(), "{record}");
        assert_agrees_with_serde(record.as_bytes());
    }
    assert_eq!(
        UsageEvent::decode_json(offset_time.as_bytes())
            .unwrap()
            .occurred_at,
        sample_event().occurred_at
    );
}

/// Records written before the API was recorded have no `api`: they still take the single
/// pass, and decode as serde decodes them, with no API.
#[test]
fn records_from_before_the_api_was_recorded_decode_without_one() {
    let mut event = sample_event();
    let text = String::from_utf8(event.encode_json().unwrap()).unwrap();
    let older = text.replace(r#""api":"bedrock","#, "");
    assert_ne!(older, text);
    event.api = None;
    assert_eq!(plain_event(older.as_bytes()), Some(event.clone()));
    assert_agrees_with_serde(older.as_bytes());
    let null = text.replace(r#""api":"bedrock""#, r#""api":null"#);
    assert_eq!(plain_event(null.as_bytes()), Some(event));
    for surface in ApiSurface::ALL {
        let mut event = sample_event();
        event.api = Some(surface);
        let bytes = event.encode_json().unwrap();
        assert_eq!(plain_event(&bytes), Some(event));
    }
    let openai = text.replace(r#""api":"bedrock""#, r#""api":"openai""#);
    assert_eq!(
        UsageEvent::decode_json(openai.as_bytes()).unwrap().api,
        Some(ApiSurface::OpenAi)
    );
}

#[test]
fn malformed_records_are_declined_and_get_serdes_error() {
    let text = String::from_utf8(sample_event().encode_json().unwrap()).unwrap();
    let cases = [
        text.replace(r#""schema_version":1"#, r#""schema_version":2"#),
        text.replace(r#""schema_version":1"#, r#""schema_version":01"#),
        text.replace(r#""status":200"#, r#""status":70000"#),
        text.replace(r#""status":200"#, r#""status":200.0"#),
        text.replace(r#""status":200"#, r#""status":-200"#),
        text.replace(
            r#""input_tokens":1234"#,
            r#""input_tokens":18446744073709551616"#,
        ),
        text.replace(r#""input_tokens":1234"#, r#""input_tokens":1e3"#),
        text.replace(r#""input_tokens":1234"#, r#""input_tokens":null"#),
        text.replace(
            r#""operation":"converse_stream""#,
            r#""operation":"stream""#,
        ),
        text.replace(r#""api":"bedrock""#, r#""api":"grpc""#),
        text.replace(r#""api":"bedrock""#, r#""api":7"#),
        text.replace(r#""api":"bedrock""#, r#""api":"bedrock","api":null"#),
        text.replace("2025-11-29T00:00:00.123Z", "2025-02-30T00:00:00.123Z"),
        text.replace("2025-11-29T00:00:00.123Z", "2025-11-29T24:00:00.123Z"),
        text.replace("0193", "z193"),
        text.replace("cust_01JDX", "cust\u{1}01JDX"),
        text.replacen('{', r#"{"status":200,"#, 1),
        format!("{text},"),
        format!("{text}{{}}"),
        text.trim_end_matches('}').to_owned(),
        String::new(),
        "{}".to_owned(),
    ];
    for record in &cases {
        assert_ne!(record, &text, "the case changes the record");
        assert_eq!(plain_event(record.as_bytes()), None, "{record}");
        assert_agrees_with_serde(record.as_bytes());
    }
    let invalid_utf8 = text.replace("cust_01JDX", "cust_\u{e9}").into_bytes();
    let mut broken = invalid_utf8.clone();
    let accent = broken.iter().position(|byte| *byte == 0xc3).unwrap();
    broken[accent + 1] = b'x';
    assert!(plain_event(&invalid_utf8).is_some());
    assert_eq!(plain_event(&broken), None);
    assert_agrees_with_serde(&broken);
}

#[test]
fn timestamps_in_the_producers_form_parse_as_chrono_parses_them() {
    for text in [
        "1970-01-01T00:00:00.000Z",
        "2024-02-29T23:59:59.999Z",
        "2026-11-28T12:34:56.789Z",
        "0001-01-01T00:00:00.001Z",
        "9999-12-31T23:59:59.999Z",
    ] {
        let chrono = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_canonical_millis(text.as_bytes()),
            Some(chrono),
            "{text}"
        );
    }
    for text in [
        "2024-02-30T00:00:00.000Z",
        "2024-01-01T00:60:00.000Z",
        "2024-01-01T00:00:00.000+00:00",
    ] {
        assert_eq!(parse_canonical_millis(text.as_bytes()), None, "{text}");
    }
}

#[test]
fn plain_string_length_finds_the_quote_and_declines_escapes_and_controls() {
    assert_eq!(plain_string_length(br#"abc""#), Some(3));
    assert_eq!(
        plain_string_length(br#"0123456789abcdefghij"rest"#),
        Some(20)
    );
    assert_eq!(
        plain_string_length("aaaaaaa\u{e9}aaaaaaaa\"".as_bytes()),
        Some(17)
    );
    assert_eq!(plain_string_length(br#"0123456789\"abc""#), None);
    assert_eq!(plain_string_length(b"0123456789\x1fabc\""), None);
    assert_eq!(plain_string_length(b"0123456789abcdefgh"), None);
    assert_eq!(plain_string_length(b"\""), Some(0));
}

#[test]
fn plain_string_length_takes_the_first_special_byte_of_a_word() {
    // A control byte before a quote in the same word declines; a quote before one ends
    // the string there (what follows is not the string's).
    assert_eq!(plain_string_length(b"ab\x01cd\"efgh\""), None);
    assert_eq!(plain_string_length(b"ab\"c\x01defgh"), Some(2));
    assert_eq!(plain_string_length(b"abcdefg\\\"hijklmnop\""), None);
    // Every position of the quote in and across words.
    for length in 0..40 {
        let mut text = vec![b'x'; length];
        text.extend_from_slice(b"\"\x00\\tail");
        assert_eq!(plain_string_length(&text), Some(length), "{length}");
    }
}

#[test]
fn names_compare_whole_at_every_length() {
    for name in FIELD_ORDER {
        assert!(equal_words(name, name));
        for index in 0..name.len() {
            let mut other = name.to_vec();
            other[index] ^= 1;
            assert!(!equal_words(name, &other), "{index}");
        }
        assert!(!equal_words(name, &name[1..]));
    }
    assert!(equal_words(b"", b""));
    assert!(!equal_words(b"abc", b"abd"));
}

#[test]
fn ids_and_timestamps_of_their_usual_length_but_not_their_form_fall_back() {
    let event = sample_event();
    let record = String::from_utf8(event.encode_json().unwrap()).unwrap();
    let id = event.event_id.to_string();
    let at = "2025-11-29T00:00:00.123Z";
    assert!(record.contains(&id) && record.contains(at), "{record}");
    // A 36-character event id that is not a UUID, one that holds a quote, and one spelled
    // with an escape; a 24-character timestamp in another form.
    for (from, to) in [
        (id.as_str(), "0193a7b2-0000-7000-8000-00000000000g"),
        (id.as_str(), r#"0193a7b2-0000-7000-8000-0000000000","#),
        (id.as_str(), r"\u0030193a7b2-0000-7000-8000-0000000"),
        (at, "2025-11-29T00:00:00.1+00"),
        (at, "2025-11-29 00:00:00.123Z"),
    ] {
        assert_agrees_with_serde(record.replacen(from, to, 1).as_bytes());
    }
    // The same values with other spellings serde accepts still decode to the event.
    let braced = record.replacen(&id, &id.to_uppercase(), 1);
    assert_eq!(
        UsageEvent::decode_json(braced.as_bytes()),
        Ok(event.clone())
    );
    assert_agrees_with_serde(braced.as_bytes());
    let offset = record.replacen(at, "2025-11-29T01:00:00.123+01:00", 1);
    assert_eq!(UsageEvent::decode_json(offset.as_bytes()), Ok(event));
}

/// Bytes that change a record's structure when written over one of its bytes.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"0123456789-+.eE\"\\{}[],: \n\tnulZz\x00\x1f\x7f\xc3\xff".to_vec()),
        any::<u8>(),
    ]
}

/// Edits of a record: (position as a fraction of its length, byte, overwrite or insert or
/// delete).
fn edits() -> impl Strategy<Value = Vec<(f64, u8, u8)>> {
    prop::collection::vec((0.0..1.0_f64, interesting_byte(), 0u8..3), 1..4)
}

fn apply_edits(mut bytes: Vec<u8>, edits: &[(f64, u8, u8)]) -> Vec<u8> {
    for (where_at, byte, kind) in edits {
        let index = ((bytes.len() as f64) * where_at) as usize;
        match kind {
            0 if index < bytes.len() => bytes[index] = *byte,
            1 => bytes.insert(index.min(bytes.len()), *byte),
            _ if index < bytes.len() => {
                bytes.remove(index);
            }
            _ => {}
        }
    }
    bytes
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_.:-]{0,40}", "\\PC{0,12}", ".{0,6}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn mutated_records_are_declined_or_decoded_as_serde_decodes_them(edits in edits(), pretty in any::<bool>()) {
        let event = sample_event();
        let record = if pretty {
            serde_json::to_vec_pretty(&event).unwrap()
        } else {
            event.encode_json().unwrap()
        };
        assert_agrees_with_serde(&apply_edits(record, &edits));
    }

    #[test]
    fn any_event_decodes_to_itself(
        customer_id in arbitrary_text(),
        model_id in arbitrary_text(),
        upstream in proptest::option::of(arbitrary_text()),
        millis in 0i64..253_402_300_799_999,
        tokens in any::<u64>(),
        status in any::<u16>(),
    ) {
        let event = UsageEvent {
            customer_id: customer_id.into(),
            model_id: model_id.into(),
            upstream_request_id: upstream.map(RequestId::from),
            occurred_at: Utc.timestamp_millis_opt(millis).unwrap(),
            input_tokens: tokens,
            status,
            ..sample_event()
        };
        let record = event.encode_json().unwrap();
        prop_assert_eq!(UsageEvent::decode_json(&record), Ok(event));
        assert_agrees_with_serde(&record);
    }
}
