//! The file writer against parquet-rs: its files read back row for row, and say what the
//! Arrow writer's files say of the same events (schema, encodings, codec, statistics).

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::{FileReader, SerializedFileReader};
use uuid::Uuid;

use crate::parquet_codec::{
    PAGE_ROWS, ROW_GROUP_ROWS, UsageParquetEncoder, decode_events_parquet,
    encode_with_arrow_writer, writer_properties,
};
use crate::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};

/// Events with every column varied: nulls in each optional column, long and short strings,
/// repeated and unique values, extreme integers, times out of order.
fn varied_events(count: u64) -> Vec<UsageEvent> {
    (0..count)
        .map(|index| {
            let customer = index * 7 % 13;
            UsageEvent {
                event_id: Uuid::from_u128(u128::from(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
                schema_version: USAGE_EVENT_SCHEMA_VERSION,
                occurred_at: Utc
                    .timestamp_millis_opt(1_764_374_400_000 + (index as i64 % 97) * 61_000)
                    .unwrap(),
                customer_id: format!("cust-{customer:03}").into(),
                key_id: format!("key_{}", customer * 2 + index % 2).into(),
                request_id: format!("req-{index}").into(),
                upstream_request_id: (index % 5 != 0).then(|| format!("up-{index}").into()),
                model_id: if index % 11 == 0 {
                    // Longer than the 64 bytes the Arrow writer truncates statistics at.
                    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0".into()
                } else {
                    format!("model-{}", index % 4).into()
                },
                operation: [
                    Operation::Invoke,
                    Operation::InvokeStream,
                    Operation::Converse,
                    Operation::ConverseStream,
                ][(index % 4) as usize],
                api: (index % 9 != 3).then_some(ApiSurface::ALL[(index % 4) as usize]),
                status: [200, 429, 500][(index % 3) as usize],
                outcome: if index % 3 == 1 {
                    Outcome::RejectedLimit
                } else {
                    Outcome::Success
                },
                input_tokens: index * 31,
                output_tokens: if index == 5 { u64::MAX } else { index },
                cache_read_tokens: 0,
                cache_write_tokens: index % 2,
                latency_ms: 1000 - index % 1000,
                upstream_latency_ms: (index % 3 != 1).then_some(index % 500),
                request_bytes: index * 3,
                response_bytes: 7,
                proxy_instance: format!("proxy-{}", index / 100).into(),
                instance_seq: index + 1,
            }
        })
        .collect()
}

fn metadata(bytes: &Bytes) -> ParquetMetaData {
    SerializedFileReader::new(bytes.clone())
        .unwrap()
        .metadata()
        .clone()
}

/// The event with the saturated count reads back as `i64::MAX`, as it does from the Arrow
/// writer's files; every other event reads back as written.
fn as_stored(mut events: Vec<UsageEvent>) -> Vec<UsageEvent> {
    for event in &mut events {
        event.output_tokens = event.output_tokens.min(i64::MAX as u64);
    }
    events
}

#[test]
fn files_read_back_row_for_row_across_row_groups_and_pages() {
    let events = varied_events(1_000);
    for (row_group_rows, page_rows, batch) in [
        (64 * 1024, 16 * 1024, 1_000),
        (100, 7, 33),
        (256, 256, 1),
        (999, 1_000, 500),
        (1, 1, 10),
    ] {
        let encoder = UsageParquetEncoder::with_sizes(row_group_rows, page_rows);
        let mut file = encoder.start_file().unwrap();
        for chunk in events.chunks(batch) {
            file.append(chunk).unwrap();
        }
        let bytes = file.finish().unwrap();
        let read = decode_events_parquet(bytes.clone()).unwrap();
        assert_eq!(
            read,
            as_stored(events.clone()),
            "row groups of {row_group_rows}, pages of {page_rows}"
        );
        let groups = metadata(&bytes).num_row_groups();
        assert_eq!(groups, events.len().div_ceil(row_group_rows));
    }
}

#[test]
fn an_empty_file_reads_as_no_rows() {
    let bytes = UsageParquetEncoder::new()
        .encode::<UsageEvent>(&[])
        .unwrap();
    assert!(decode_events_parquet(bytes.clone()).unwrap().is_empty());
    assert_eq!(metadata(&bytes).file_metadata().num_rows(), 0);
}

#[test]
fn the_schema_is_the_arrow_writers() {
    let events = varied_events(50);
    let ours = UsageParquetEncoder::new().encode(&events).unwrap();
    let arrow = encode_with_arrow_writer(&events, writer_properties()).unwrap();
    let (ours_meta, arrow_meta) = (metadata(&ours), metadata(&arrow));
    assert_eq!(
        ours_meta.file_metadata().schema_descr().root_schema(),
        arrow_meta.file_metadata().schema_descr().root_schema()
    );
    let arrow_schema = |bytes: &Bytes| {
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .schema()
            .clone()
    };
    assert_eq!(arrow_schema(&ours), arrow_schema(&arrow));
    assert_eq!(
        ours_meta.file_metadata().column_orders(),
        arrow_meta.file_metadata().column_orders()
    );
}

#[test]
fn encodings_codec_and_statistics_are_the_arrow_writers() {
    let events = varied_events(2_000);
    // One page; many pages (a chunk's bounds merged from its pages'); many row groups.
    for (row_group_rows, page_rows) in [(ROW_GROUP_ROWS, PAGE_ROWS), (ROW_GROUP_ROWS, 7), (600, 64)]
    {
        let ours = metadata(
            &UsageParquetEncoder::with_sizes(row_group_rows, page_rows)
                .encode(&events)
                .unwrap(),
        );
        let properties = writer_properties()
            .into_builder()
            .set_max_row_group_row_count(Some(row_group_rows))
            .build();
        let arrow = metadata(&encode_with_arrow_writer(&events, properties).unwrap());
        assert_eq!(ours.num_row_groups(), arrow.num_row_groups());
        for (ours, arrow) in ours.row_groups().iter().zip(arrow.row_groups()) {
            assert_same_chunk_metadata(ours, arrow);
        }
    }
}

fn assert_same_chunk_metadata(ours: &RowGroupMetaData, arrow: &RowGroupMetaData) {
    assert_eq!(ours.num_rows(), arrow.num_rows());
    for (mine, theirs) in ours.columns().iter().zip(arrow.columns()) {
        let name = mine.column_path().string();
        assert_eq!(mine.column_path(), theirs.column_path());
        assert_eq!(mine.compression(), theirs.compression(), "{name}");
        assert_eq!(mine.num_values(), theirs.num_values(), "{name}");
        let mut encodings: Vec<_> = mine.encodings().collect();
        let mut their_encodings: Vec<_> = theirs.encodings().collect();
        encodings.sort_by_key(|encoding| format!("{encoding:?}"));
        their_encodings.sort_by_key(|encoding| format!("{encoding:?}"));
        assert_eq!(encodings, their_encodings, "{name}");
        assert_eq!(
            mine.dictionary_page_offset().is_some(),
            theirs.dictionary_page_offset().is_some(),
            "{name}"
        );
        match (mine.statistics(), theirs.statistics()) {
            (None, None) => {}
            (Some(mine), Some(theirs)) => {
                assert_eq!(mine.null_count_opt(), theirs.null_count_opt(), "{name}");
                // The Arrow writer truncates long bounds (to 64 bytes) and says they are
                // inexact; ours are the whole values.
                if theirs.min_is_exact() {
                    assert_eq!(mine.min_bytes_opt(), theirs.min_bytes_opt(), "{name}");
                } else {
                    let (mine, theirs) = (
                        mine.min_bytes_opt().unwrap(),
                        theirs.min_bytes_opt().unwrap(),
                    );
                    assert!(mine.starts_with(theirs), "{name}");
                }
                if theirs.max_is_exact() {
                    assert_eq!(mine.max_bytes_opt(), theirs.max_bytes_opt(), "{name}");
                } else {
                    let (mine, theirs) = (
                        mine.max_bytes_opt().unwrap(),
                        theirs.max_bytes_opt().unwrap(),
                    );
                    assert!(
                        mine <= theirs && mine.starts_with(&theirs[..theirs.len() - 1]),
                        "{name}"
                    );
                }
                assert!(mine.min_is_exact() && mine.max_is_exact(), "{name}");
            }
            (mine, theirs) => panic!("{name}: statistics {mine:?} against {theirs:?}"),
        }
    }
}

#[test]
fn a_file_written_with_the_last_files_columns_is_the_same_file() {
    // Each finished file leaves its emptied columns for the next (dictionaries, keyed
    // values, statistics and buffers included): nothing of one file may reach another.
    let encoder = UsageParquetEncoder::with_sizes(700, 300);
    let first = varied_events(1_000);
    let other: Vec<UsageEvent> = varied_events(2_500).into_iter().skip(1_000).rev().collect();
    let alone = encoder.encode(&first).unwrap();
    for _ in 0..3 {
        let between = encoder.encode(&other).unwrap();
        assert_eq!(
            decode_events_parquet(between).unwrap(),
            as_stored(other.clone())
        );
        assert_eq!(encoder.encode(&first).unwrap(), alone);
    }
}

#[test]
fn the_same_events_give_the_same_bytes() {
    let events = varied_events(300);
    let encoder = UsageParquetEncoder::new();
    assert_eq!(
        encoder.encode(&events).unwrap(),
        encoder.encode(&events).unwrap()
    );
}

#[test]
fn files_are_about_the_size_of_the_arrow_writers() {
    let events = varied_events(5_000);
    let ours = UsageParquetEncoder::new().encode(&events).unwrap().len();
    let arrow = encode_with_arrow_writer(&events, writer_properties())
        .unwrap()
        .len();
    // The Arrow writer also writes a page index; the pages themselves are alike.
    assert!(
        ours <= arrow + arrow / 10,
        "{ours} bytes against the Arrow writer's {arrow}"
    );
}

#[test]
fn long_values_close_a_page_before_its_row_count() {
    let mut events = varied_events(600);
    for (index, event) in events.iter_mut().enumerate() {
        event.request_id = format!("{index:05}-{}", "r".repeat(4_000)).into();
    }
    let bytes = UsageParquetEncoder::with_sizes(64 * 1024, 4 * 1024)
        .encode(&events)
        .unwrap();
    assert_eq!(
        decode_events_parquet(bytes.clone()).unwrap(),
        as_stored(events)
    );
    let reader = SerializedFileReader::new(bytes).unwrap();
    let row_group = reader.get_row_group(0).unwrap();
    let request_id = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|column| column.name() == "request_id")
        .unwrap();
    let pages = row_group
        .get_column_page_reader(request_id)
        .unwrap()
        .map(|page| page.unwrap().num_values())
        .collect::<Vec<_>>();
    // 600 values of 4,010 bytes (length included): a page closes once it holds 1 MiB,
    // at its 262nd value.
    assert_eq!(pages, [262, 262, 76]);
}

#[test]
fn columns_with_only_nulls_read_back_as_nulls() {
    let mut events = varied_events(300);
    for event in &mut events {
        event.upstream_request_id = None;
        event.upstream_latency_ms = None;
        event.api = None;
    }
    let bytes = UsageParquetEncoder::with_sizes(128, 50)
        .encode(&events)
        .unwrap();
    assert_eq!(
        decode_events_parquet(bytes.clone()).unwrap(),
        as_stored(events.clone())
    );
    let ours = metadata(&bytes);
    let column = |meta: &ParquetMetaData, name: &str| {
        let group = meta.row_group(0);
        let index = group
            .columns()
            .iter()
            .position(|column| column.column_path().string() == name)
            .unwrap();
        group.column(index).statistics().cloned()
    };
    let ours_api = column(&ours, "api").unwrap();
    assert_eq!(ours_api.null_count_opt(), Some(128));
    assert_eq!(ours_api.min_bytes_opt(), None);
    assert_eq!(
        column(&ours, "upstream_latency_ms")
            .unwrap()
            .null_count_opt(),
        Some(128)
    );
}

#[test]
fn a_dictionary_column_of_nulls_has_no_dictionary_until_its_first_value() {
    let mut events = varied_events(300);
    for (index, event) in events.iter_mut().enumerate() {
        event.api = (index >= 170).then_some(ApiSurface::OpenAi);
    }
    // Row groups of 128 rows, pages of 50: the first row group's api is all null, the
    // second has two pages of nulls before its first value.
    let bytes = UsageParquetEncoder::with_sizes(128, 50)
        .encode(&events)
        .unwrap();
    assert_eq!(
        decode_events_parquet(bytes.clone()).unwrap(),
        as_stored(events)
    );
    let meta = metadata(&bytes);
    let api = |group: usize| {
        let group = meta.row_group(group);
        group
            .columns()
            .iter()
            .find(|column| column.column_path().string() == "api")
            .unwrap()
            .clone()
    };
    assert!(api(0).dictionary_page_offset().is_none());
    let encodings: Vec<String> = api(0)
        .encodings()
        .map(|encoding| format!("{encoding:?}"))
        .collect();
    assert_eq!(encodings, ["PLAIN", "RLE"]);
    assert!(api(1).dictionary_page_offset().is_some());
    let stats = api(1).statistics().unwrap().clone();
    assert_eq!(stats.min_bytes_opt(), Some(&b"openai"[..]));
    assert_eq!(stats.null_count_opt(), Some(170 - 128));
}

/// Integers through a delta-encoded column (and a required one beside it), read back by
/// parquet-rs: every value, nulls in place, the chunk's bounds.
fn delta_column_round_trip(values: &[Option<i64>], row_group_rows: usize, page_rows: usize) {
    use arrow_array::{Array, Int64Array};

    use crate::parquet_file::{ColumnSpec, Encoding, Logical, ParquetFileWriter, Physical};

    let spec = |name, optional| ColumnSpec {
        name,
        physical: Physical::Int64,
        logical: Logical::None,
        optional,
        encoding: Encoding::Delta,
        statistics: true,
        compressed: false,
    };
    let mut writer = ParquetFileWriter::new(
        vec![spec("maybe", true), spec("always", false)],
        row_group_rows,
        page_rows,
        Vec::new(),
        "test",
    );
    for value in values {
        let columns = writer.columns_mut();
        match value {
            Some(value) => columns[0].push_i64(*value),
            None => columns[0].push_null(),
        }
        columns[1].push_i64(value.unwrap_or(-7));
        writer.rows_pushed(1).unwrap();
    }
    let bytes = Bytes::from(writer.finish().unwrap());
    let (mut maybe, mut always) = (Vec::new(), Vec::new());
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .unwrap()
        .build()
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        let column = |index: usize| {
            batch
                .column(index)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        maybe.extend(column(0).iter());
        let required = column(1);
        assert_eq!(required.null_count(), 0);
        always.extend(required.values().iter().copied());
    }
    assert_eq!(maybe, values);
    let expected: Vec<i64> = values.iter().map(|value| value.unwrap_or(-7)).collect();
    assert_eq!(always, expected);
    for (index, group) in metadata(&bytes).row_groups().iter().enumerate() {
        let rows = &values[index * row_group_rows..][..group.num_rows() as usize];
        let present: Vec<i64> = rows.iter().flatten().copied().collect();
        let statistics = group.column(0).statistics().unwrap();
        assert_eq!(
            statistics.null_count_opt(),
            Some((rows.len() - present.len()) as u64)
        );
        let bound = |value: Option<&i64>| value.map(|value| value.to_le_bytes().to_vec());
        assert_eq!(
            statistics.min_bytes_opt().map(<[u8]>::to_vec),
            bound(present.iter().min())
        );
        assert_eq!(
            statistics.max_bytes_opt().map(<[u8]>::to_vec),
            bound(present.iter().max())
        );
        let encodings: Vec<String> = group
            .column(0)
            .encodings()
            .map(|encoding| format!("{encoding:?}"))
            .collect();
        assert_eq!(encodings, ["RLE", "DELTA_BINARY_PACKED"]);
    }
}

#[test]
fn delta_columns_read_back_at_every_block_boundary() {
    // Around a miniblock (32), a block (128 differences: 129 values) and two blocks; each
    // in one page and in pages of 50; rising, falling, extreme and null values.
    for count in [0, 1, 2, 31, 32, 33, 128, 129, 130, 257, 258, 1_000] {
        let values: Vec<Option<i64>> = (0..count as i64)
            .map(|index| match index % 7 {
                0 => Some(1_764_374_400_000 + index * 3),
                1 => Some(-index),
                2 if index % 3 == 0 => Some(i64::MAX),
                2 => Some(i64::MIN),
                3 => None,
                _ => Some(index * index),
            })
            .collect();
        delta_column_round_trip(&values, 400, 1_000);
        delta_column_round_trip(&values, 400, 50);
    }
    // A page of nulls only: its values section is a header with a count of 0.
    delta_column_round_trip(&[None; 40], 100, 20);
}

proptest::proptest! {
    #[test]
    fn delta_columns_read_back_whatever_the_values(
        values in proptest::collection::vec(
            proptest::option::weighted(0.9, proptest::prop_oneof![
                proptest::num::i64::ANY,
                -1_000_i64..1_000,
                0_i64..20_000,
            ]),
            0..700,
        ),
        page_rows in 1_usize..300,
    ) {
        delta_column_round_trip(&values, 256, page_rows);
    }
}

#[test]
fn a_string_column_given_delta_is_written_plain() {
    use crate::parquet_file::{ColumnSpec, Encoding, Logical, ParquetFileWriter, Physical};

    let spec = ColumnSpec {
        name: "text",
        physical: Physical::ByteArray,
        logical: Logical::String,
        optional: false,
        encoding: Encoding::Delta,
        statistics: true,
        compressed: false,
    };
    let mut writer = ParquetFileWriter::new(vec![spec], 100, 10, Vec::new(), "test");
    for value in ["b", "a", "c"] {
        writer.columns_mut()[0].push_bytes(value.as_bytes());
        writer.rows_pushed(1).unwrap();
    }
    let bytes = Bytes::from(writer.finish().unwrap());
    let meta = metadata(&bytes);
    let encodings: Vec<String> = meta
        .row_group(0)
        .column(0)
        .encodings()
        .map(|encoding| format!("{encoding:?}"))
        .collect();
    assert_eq!(encodings, ["PLAIN", "RLE"]);
    let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let column = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .iter()
        .collect::<Vec<_>>();
    assert_eq!(column, [Some("b"), Some("a"), Some("c")]);
}
