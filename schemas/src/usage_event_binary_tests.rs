use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::usage_event::tests::{arbitrary_event, sample_event};

fn encoded(event: &UsageEvent) -> Vec<u8> {
    let mut out = Vec::new();
    event.encode_binary(&mut out);
    out
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
fn a_timestamp_before_the_epoch_reads_back() {
    let mut event = sample_event(1);
    event.occurred_at = Utc.timestamp_millis_opt(-86_400_123).unwrap();
    assert_eq!(UsageEvent::decode_binary(&encoded(&event)).unwrap(), event);
}

proptest! {
    #[test]
    fn any_event_reads_back_and_writes_the_same_bytes(event in arbitrary_event()) {
        let bytes = encoded(&event);
        let decoded = UsageEvent::decode_binary(&bytes).unwrap();
        prop_assert_eq!(&decoded, &event);
        prop_assert_eq!(encoded(&decoded), bytes);
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_an_event_that_writes_them_back(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        if let Ok(event) = UsageEvent::decode_binary(&bytes) {
            prop_assert_eq!(encoded(&event), bytes);
        }
    }

    #[test]
    fn a_damaged_event_is_an_error_or_writes_itself_back(
        event in arbitrary_event(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encoded(&event);
        let at = at.index(bytes.len());
        bytes[at] = byte;
        bytes.truncate(bytes.len() - cut.index(bytes.len() / 4 + 1));
        if let Ok(event) = UsageEvent::decode_binary(&bytes) {
            prop_assert_eq!(encoded(&event), bytes);
        }
    }
}
