use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::parquet_codec::{decode_events_parquet, encode_events_parquet};

pub(crate) fn sample_event(seq: u64) -> UsageEvent {
    UsageEvent {
        event_id: Uuid::now_v7(),
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at: Utc.timestamp_millis_opt(1_764_374_400_123).unwrap(),
        customer_id: "cust-1".into(),
        key_id: "key_abc".into(),
        request_id: "req-1".into(),
        upstream_request_id: Some("up-1".into()),
        model_id: "anthropic.claude-3-sonnet-20240229-v1:0".into(),
        operation: Operation::Invoke,
        api: Some(ApiSurface::Bedrock),
        status: 200,
        outcome: Outcome::Success,
        input_tokens: 12,
        output_tokens: 34,
        cache_read_tokens: 0,
        cache_write_tokens: 1,
        latency_ms: 56,
        upstream_latency_ms: Some(50),
        request_bytes: 300,
        response_bytes: 700,
        proxy_instance: "proxy-a".into(),
        instance_seq: seq,
    }
}

#[test]
fn each_column_has_its_listed_encoding_and_codec() {
    use crate::parquet_codec::{DELTA_COLUMNS, DICTIONARY_COLUMNS, UNCOMPRESSED_COLUMNS};
    use parquet::basic::{Compression, Encoding};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let events: Vec<UsageEvent> = (1..=50).map(sample_event).collect();
    let bytes = encode_events_parquet(&events).unwrap();
    let reader = SerializedFileReader::new(bytes.clone()).unwrap();
    let row_group = reader.metadata().row_group(0);
    let pages_reader = reader.get_row_group(0).unwrap();
    let mut pages = (0..row_group.num_columns())
        .map(|index| pages_reader.get_column_page_reader(index).unwrap());
    for column in row_group.columns() {
        let name = column.column_path().string();
        let name = name.as_str();
        let has_dictionary = column.dictionary_page_offset().is_some();
        assert_eq!(
            has_dictionary,
            DICTIONARY_COLUMNS.contains(&name),
            "column {name}"
        );
        let values_encoding = if DICTIONARY_COLUMNS.contains(&name) {
            Encoding::RLE_DICTIONARY
        } else if DELTA_COLUMNS.contains(&name) {
            Encoding::DELTA_BINARY_PACKED
        } else {
            Encoding::PLAIN
        };
        let data_pages: Vec<Encoding> = pages
            .next()
            .unwrap()
            .filter_map(|page| {
                let page = page.unwrap();
                (page.page_type() == parquet::basic::PageType::DATA_PAGE).then(|| page.encoding())
            })
            .collect();
        assert_eq!(data_pages, [values_encoding], "column {name}");
        let codec = if UNCOMPRESSED_COLUMNS.contains(&name) || DELTA_COLUMNS.contains(&name) {
            Compression::UNCOMPRESSED
        } else {
            Compression::SNAPPY
        };
        assert_eq!(column.compression(), codec, "column {name}");
        let unfiltered = crate::parquet_codec::UNFILTERED_COLUMNS.contains(&name);
        assert_eq!(column.statistics().is_none(), unfiltered, "column {name}");
    }
    assert_eq!(decode_events_parquet(bytes).unwrap(), events);
}

#[test]
fn a_file_written_across_batches_holds_every_row_in_order_and_grows_as_it_is_written() {
    let encoder = crate::parquet_codec::UsageParquetEncoder::new();
    let events: Vec<UsageEvent> = (1..=300).map(sample_event).collect();
    let mut file = encoder.start_file().unwrap();
    file.append::<UsageEvent>(&[]).unwrap();
    let mut sizes = Vec::new();
    for chunk in events.chunks(70) {
        file.append(chunk).unwrap();
        sizes.push(file.encoded_bytes());
    }
    assert_eq!(file.rows(), 300);
    assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]), "{sizes:?}");
    let bytes = file.finish().unwrap();
    assert_eq!(decode_events_parquet(bytes).unwrap(), events);
}

#[test]
fn json_arrow_parquet_round_trip_is_lossless() {
    let mut events: Vec<UsageEvent> = (1..=5).map(sample_event).collect();
    events[1].upstream_request_id = None;
    events[1].upstream_latency_ms = None;
    events[2].outcome = Outcome::RejectedLimit;
    events[2].status = 429;
    events[3].operation = Operation::ConverseStream;

    let decoded_from_json: Vec<UsageEvent> = events
        .iter()
        .map(|event| UsageEvent::decode_json(&event.encode_json().unwrap()).unwrap())
        .collect();
    assert_eq!(decoded_from_json, events);

    let batch = events_to_record_batch(&decoded_from_json).unwrap();
    assert_eq!(batch.num_rows(), 5);
    assert_eq!(events_from_record_batch(&batch).unwrap(), events);

    let parquet_bytes = encode_events_parquet(&events).unwrap();
    assert_eq!(
        decode_events_parquet(parquet_bytes.clone()).unwrap(),
        events
    );
    assert_eq!(
        encode_events_parquet(&events).unwrap(),
        parquet_bytes,
        "encoding is deterministic"
    );
}

#[test]
fn arrow_schema_and_json_have_the_same_fields() {
    let json: serde_json::Value =
        serde_json::from_slice(&sample_event(1).encode_json().unwrap()).unwrap();
    let mut json_fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let schema = usage_event_arrow_schema();
    let mut arrow_fields: Vec<&str> = schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    json_fields.sort_unstable();
    arrow_fields.sort_unstable();
    assert_eq!(json_fields, arrow_fields);
    assert_eq!(USAGE_EVENT_COLUMNS.len(), arrow_fields.len());
}

#[test]
fn json_is_versioned_and_readable() {
    let text = String::from_utf8(sample_event(1).encode_json().unwrap()).unwrap();
    assert!(text.contains(r#""schema_version":1"#), "{text}");
    assert!(
        text.contains(r#""occurred_at":"2025-11-29T00:00:00.123Z""#),
        "{text}"
    );
    assert!(text.contains(r#""outcome":"success""#), "{text}");
}

#[test]
fn unknown_version_is_a_typed_error() {
    let mut json: serde_json::Value =
        serde_json::from_slice(&sample_event(1).encode_json().unwrap()).unwrap();
    json["schema_version"] = serde_json::json!(2);
    assert_eq!(
        UsageEvent::decode_json(json.to_string().as_bytes()),
        Err(DecodeError::UnknownVersion {
            found: 2,
            supported: 1
        })
    );
    json.as_object_mut().unwrap().remove("schema_version");
    assert_eq!(
        UsageEvent::decode_json(json.to_string().as_bytes()),
        Err(DecodeError::MissingVersion)
    );
}

#[test]
fn corrupt_records_are_typed_errors() {
    for corrupt in [
        &b""[..],
        b"\xff\xfe\x00",
        b"{",
        b"[]",
        b"null",
        br#"{"schema_version":"one"}"#,
        br#"{"schema_version":1}"#,
        br#"{"schema_version":1,"event_id":"not-a-uuid"}"#,
    ] {
        assert!(UsageEvent::decode_json(corrupt).is_err(), "{corrupt:?}");
    }
    assert!(matches!(
        decode_events_parquet(bytes::Bytes::from_static(b"PAR1 not really")),
        Err(DecodeError::Parquet(_))
    ));
}

#[test]
fn batch_with_a_missing_or_wrong_column_is_a_typed_error() {
    let batch = events_to_record_batch(&[sample_event(1)]).unwrap();
    let without_status = batch.project(&[0, 1, 2]).unwrap();
    assert!(matches!(
        events_from_record_batch(&without_status),
        Err(DecodeError::MissingColumn { .. })
    ));
}

/// Files written before the API was recorded have no `api` column: they read as events
/// without one. A required column stays required.
#[test]
fn a_file_without_the_api_column_reads_as_events_without_an_api() {
    use parquet::arrow::ArrowWriter;
    let events = vec![sample_event(1), sample_event(2)];
    let batch = events_to_record_batch(&events).unwrap();
    let schema = batch.schema();
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|index| schema.field(*index).name() != "api")
        .collect();
    let older = batch.project(&kept).unwrap();
    let mut file = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut file, older.schema(), None).unwrap();
    writer.write(&older).unwrap();
    writer.close().unwrap();
    let read = decode_events_parquet(bytes::Bytes::from(file)).unwrap();
    let expected: Vec<UsageEvent> = events
        .into_iter()
        .map(|event| UsageEvent { api: None, ..event })
        .collect();
    assert_eq!(read, expected);
    let without_model: Vec<usize> = (0..schema.fields().len())
        .filter(|index| schema.field(*index).name() != "model_id")
        .collect();
    assert!(matches!(
        events_from_record_batch(&batch.project(&without_model).unwrap()),
        Err(DecodeError::MissingColumn { column: "model_id" })
    ));
}

pub(crate) fn arbitrary_event() -> impl Strategy<Value = UsageEvent> {
    (
        (any::<u128>(), any::<bool>()),
        0i64..4_102_444_800_000,
        "[a-z0-9-]{1,20}",
        // Bedrock's ids are lowercase UUIDs; any other text is carried as it is.
        proptest::option::of(prop_oneof![
            "[ -~]{0,30}",
            any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string()),
            any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string().to_uppercase()),
        ]),
        prop_oneof![
            Just(Operation::Invoke),
            Just(Operation::InvokeStream),
            Just(Operation::Converse),
            Just(Operation::ConverseStream)
        ],
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::ClientError),
            Just(Outcome::UpstreamError),
            Just(Outcome::RejectedLimit),
            Just(Outcome::ClientAborted)
        ],
        (
            0u64..=i64::MAX as u64,
            0u64..1_000_000,
            proptest::option::of(0u64..100_000),
        ),
        any::<u16>(),
        proptest::option::of(prop_oneof![
            Just(ApiSurface::Bedrock),
            Just(ApiSurface::Spec),
            Just(ApiSurface::Anthropic),
            Just(ApiSurface::OpenAi)
        ]),
    )
        .prop_map(
            |(
                (id, request_is_event_id),
                millis,
                customer,
                upstream,
                operation,
                outcome,
                (tokens, latency, upstream_latency),
                status,
                api,
            )| {
                let event_id = Uuid::from_u128(id);
                UsageEvent {
                    event_id,
                    // The proxy's request id is its event id.
                    request_id: if request_is_event_id {
                        event_id.into()
                    } else {
                        "req-1".into()
                    },
                    occurred_at: Utc.timestamp_millis_opt(millis).unwrap(),
                    customer_id: customer.clone().into(),
                    upstream_request_id: upstream.map(RequestId::from),
                    operation,
                    outcome,
                    input_tokens: tokens,
                    latency_ms: latency,
                    upstream_latency_ms: upstream_latency,
                    status,
                    api,
                    model_id: format!("model/{customer}").into(),
                    ..sample_event(1)
                }
            },
        )
}

/// The one-pass decode gives exactly what the version probe followed by a full decode gives,
/// errors included.
fn assert_same_as_probing(bytes: &[u8]) {
    assert_eq!(
        UsageEvent::decode_json(bytes),
        UsageEvent::decode_json_probing_version(bytes),
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn one_pass_decode_matches_the_version_probe() {
    let valid = sample_event(1).encode_json().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&valid).unwrap();
    let with_version = |version: serde_json::Value| {
        let mut changed = json.clone();
        changed["schema_version"] = version;
        changed.to_string().into_bytes()
    };
    let as_array = serde_json::Value::Array(json.as_object().unwrap().values().cloned().collect());
    let text = String::from_utf8(valid.clone()).unwrap();
    for bytes in [
        valid.clone(),
        format!(" \n\t{text}\r\n").into_bytes(),
        with_version(serde_json::json!(2)),
        with_version(serde_json::json!(70000)),
        with_version(serde_json::json!(1.0)),
        with_version(serde_json::json!(-1)),
        with_version(serde_json::json!("1")),
        with_version(serde_json::Value::Null),
        as_array.to_string().into_bytes(),
        text.replacen('{', r#"{"customer_id":"other","#, 1)
            .into_bytes(),
        text.replacen('{', r#"{"schema_version":1,"#, 1)
            .into_bytes(),
        format!("{text} {{}}").into_bytes(),
        b"[]".to_vec(),
        b"{}".to_vec(),
    ] {
        assert_same_as_probing(&bytes);
    }
    assert!(UsageEvent::decode_json(&as_array.to_string().into_bytes()).is_err());
}

proptest! {
    #[test]
    fn one_pass_decode_matches_the_version_probe_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        assert_same_as_probing(&bytes);
    }

    #[test]
    fn any_event_round_trips_through_every_format(events in proptest::collection::vec(arbitrary_event(), 0..20)) {
        for event in &events {
            prop_assert_eq!(&UsageEvent::decode_json(&event.encode_json().unwrap()).unwrap(), event);
        }
        let parquet_bytes = encode_events_parquet(&events).unwrap();
        prop_assert_eq!(decode_events_parquet(parquet_bytes).unwrap(), events);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = UsageEvent::decode_json(&bytes);
        let _ = decode_events_parquet(bytes::Bytes::from(bytes));
    }
}

/// The Glue table definition in `infra/glue/usage_events.json` matches the event's fields:
/// a field added to the schema and forgotten in the table (or the reverse) fails here.
#[test]
fn the_glue_table_matches_the_schema() {
    let expected = serde_json::json!({
        "partition_keys": [{"Name": "dt", "Type": "string"}],
        "columns": usage_event_glue_columns()
            .iter()
            .map(|(name, hive)| serde_json::json!({"Name": name, "Type": hive}))
            .collect::<Vec<_>>(),
    });
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/glue/usage_events.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(
        stored,
        expected,
        "{} is out of date; replace it with:\n{}",
        path.display(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
    assert!(
        usage_event_glue_columns()
            .iter()
            .all(|(_, hive)| *hive != "unsupported"),
        "every column has a Hive type"
    );
}
