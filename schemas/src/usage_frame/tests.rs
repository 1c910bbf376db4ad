use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::usage_event::tests::sample_event;

fn events(count: u64) -> Vec<UsageEvent> {
    (1..=count).map(sample_event).collect()
}

fn decoded_events(record: &Bytes) -> Vec<UsageEvent> {
    decode_record(record)
        .unwrap()
        .into_iter()
        .map(|line| line.event.unwrap())
        .collect()
}

const FORMATS: [EventFormat; 3] = [
    EventFormat::Json,
    EventFormat::BinaryV2,
    EventFormat::Binary,
];
const CODECS: [FrameCodec; 3] = [FrameCodec::None, FrameCodec::Zstd, FrameCodec::Lz4];

/// Events with ids as the proxy and Bedrock make them (the request id is the event id,
/// Bedrock's a random lowercase UUID), which version 3 carries compact.
fn events_with_uuid_ids(count: u64) -> Vec<UsageEvent> {
    (1..=count)
        .map(|seq| {
            let mut event = sample_event(seq);
            event.request_id = event.event_id.into();
            // Random-looking bits, as Bedrock's version 4 ids have.
            let bits = u128::from(seq).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            event.upstream_request_id = Some(uuid::Uuid::from_u128(bits).into());
            event
        })
        .collect()
}

#[test]
fn a_frame_round_trips_its_events_in_order_in_any_format_with_any_codec() {
    for batch in [events(40), events_with_uuid_ids(40)] {
        for format in FORMATS {
            for codec in CODECS {
                let frame = Bytes::from(encode_frame_as(&batch, format, codec).unwrap());
                assert!(is_frame(&frame));
                assert_eq!((frame[4], frame[5]), (format.version(), codec.byte()));
                assert_eq!(decoded_events(&frame), batch, "{format:?} {codec:?}");
            }
        }
    }
}

#[test]
fn records_decoded_through_one_table_share_their_names_in_every_format() {
    let mut batch = events(6);
    for (index, event) in batch.iter_mut().enumerate() {
        event.customer_id = ["cust-a", "cust-b"][index % 2].into();
    }
    for format in FORMATS {
        let record = Bytes::from(encode_frame_as(&batch, format, FrameCodec::None).unwrap());
        let single = Bytes::from(batch[0].encode_json().unwrap());
        let mut names = Names::default();
        let mut decoded = decode_events_with(&record, &mut names).unwrap();
        decoded.extend(decode_events_with(&record, &mut names).unwrap());
        if format == EventFormat::Json {
            // A record written before frames: one event's JSON.
            decoded.extend(decode_events_with(&single, &mut names).unwrap());
        }
        for event in &decoded {
            let first = decoded
                .iter()
                .find(|other| other.customer_id == event.customer_id)
                .unwrap();
            assert_eq!(
                first.customer_id.address(),
                event.customer_id.address(),
                "{format:?}: one copy of {}",
                event.customer_id
            );
            assert_eq!(first.model_id.address(), event.model_id.address());
        }
        assert_eq!(decoded[..6], batch[..], "{format:?}");
    }
}

#[test]
fn version_3_with_lz4_is_about_as_small_as_version_2_with_zstd() {
    let batch = events_with_uuid_ids(100);
    let size = |format, codec| encode_frame_as(&batch, format, codec).unwrap().len();
    let (v2, v3) = (
        size(EventFormat::BinaryV2, FrameCodec::None),
        size(EventFormat::Binary, FrameCodec::None),
    );
    // 64 bytes fewer per event: the request id's text and 20 of Bedrock's id's 40.
    assert_eq!(v2 - v3, 100 * 64);
    let (v2_zstd, v3_lz4) = (
        size(EventFormat::BinaryV2, FrameCodec::Zstd),
        size(EventFormat::Binary, FrameCodec::Lz4),
    );
    assert!(v3_lz4 * 3 < v3, "LZ4 {v3_lz4} bytes against {v3} plain");
    assert!(
        v3_lz4 * 10 < v2_zstd * 12,
        "version 3 with LZ4 {v3_lz4} bytes against version 2 with zstd {v2_zstd}"
    );
}

#[test]
fn a_frame_round_trips_its_events_with_the_formats_own_codec() {
    let batch = events(40);
    for format in FORMATS {
        for codec in [FrameCodec::None, format.compressed_codec()] {
            let frame = Bytes::from(encode_frame_as(&batch, format, codec).unwrap());
            assert!(is_frame(&frame));
            assert_eq!(frame[4], format.version());
            assert_eq!(decoded_events(&frame), batch, "{format:?} {codec:?}");
        }
    }
}

#[test]
fn proxies_write_binary_frames_about_half_the_size_of_json_lines() {
    let batch = events(100);
    assert_eq!(FrameBuilder::new().format(), EventFormat::Binary);
    let binary = encode_frame(&batch, FrameCodec::None).unwrap();
    assert_eq!(binary[4], 3);
    let json = encode_frame_as(&batch, EventFormat::Json, FrameCodec::None).unwrap();
    assert!(
        binary.len() * 10 < json.len() * 6,
        "{} against {}",
        binary.len(),
        json.len()
    );
    for format in ["binary", "binary-v2", "json"] {
        assert_eq!(format.parse::<EventFormat>().unwrap().as_str(), format);
    }
    let error = "xml".parse::<EventFormat>().unwrap_err();
    assert!(
        error.contains("use binary (the default), binary-v2 (for consumers older than version 3 frames) or json"),
        "{error}"
    );
    // The names a quarantine description gives: `binary` was version 2 before version 3.
    for (format, name) in [
        (EventFormat::Json, "json"),
        (EventFormat::BinaryV2, "binary"),
        (EventFormat::Binary, "binary-v3"),
    ] {
        assert_eq!(format.quarantine_name(), name);
        assert_eq!(EventFormat::from_quarantine_name(name), Some(format));
    }
    assert_eq!(EventFormat::from_quarantine_name("binary-v4"), None);
}

#[test]
fn one_damaged_binary_event_is_reported_alone_and_its_neighbours_decode() {
    let batch = events(3);
    let mut builder = FrameBuilder::new();
    for event in &batch {
        builder.push(event).unwrap();
    }
    let mut frame = builder.finish(FrameCodec::None).unwrap();
    // The second event's operation code, past the header, the first event and a length.
    let first_len = u32::from_le_bytes(frame[16..20].try_into().unwrap()) as usize;
    let second = FRAME_HEADER_LEN + 4 + first_len + 4;
    frame[second + 26] = 77;
    let decoded = decode_record(&Bytes::from(frame)).unwrap();
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[0].event.as_ref().unwrap(), &batch[0]);
    let error = decoded[1].event.as_ref().unwrap_err().to_string();
    assert!(error.contains("operation has code 77"), "{error}");
    assert_eq!(
        decoded[1].bytes.len(),
        first_len,
        "the event's own bytes, for quarantine"
    );
    assert_eq!(decoded[2].event.as_ref().unwrap(), &batch[2]);
}

#[test]
fn a_binary_payload_whose_lengths_do_not_add_up_is_a_damaged_frame() {
    let mut frame = encode_frame(&events(2), FrameCodec::None).unwrap();
    frame[16..20].copy_from_slice(&100_000u32.to_le_bytes());
    let error = decode_record(&Bytes::from(frame)).unwrap_err().to_string();
    assert!(
        error.contains("event 1 of the payload declares 100000 bytes"),
        "{error}"
    );

    let mut frame = encode_frame(&events(1), FrameCodec::None).unwrap();
    frame.extend_from_slice(&[1, 2]);
    let len = u32::try_from(frame.len() - FRAME_HEADER_LEN).unwrap();
    frame[12..16].copy_from_slice(&len.to_le_bytes());
    let error = decode_record(&Bytes::from(frame)).unwrap_err().to_string();
    assert!(
        error.contains("event 2 of the payload is cut short"),
        "{error}"
    );
}

#[test]
fn frames_merge_by_payload_only_within_one_format() {
    for format in FORMATS {
        let (two, three) = (events(2), events(3));
        let first = Bytes::from(encode_frame_as(&two, format, FrameCodec::Zstd).unwrap());
        let second = Bytes::from(encode_frame_as(&three, format, FrameCodec::None).unwrap());
        let mut merged = FrameBuilder::with_format(format);
        for record in [&first, &second] {
            let payload = frame_payload(record).unwrap();
            assert_eq!(payload.format, format);
            assert!(merged.push_payload(&payload));
        }
        assert_eq!(merged.len(), 5);
        let merged = Bytes::from(merged.finish(FrameCodec::None).unwrap());
        assert_eq!(decoded_events(&merged), [two, three].concat());
    }
    let json =
        Bytes::from(encode_frame_as(&events(1), EventFormat::Json, FrameCodec::None).unwrap());
    let mut binary = FrameBuilder::new();
    assert!(!binary.push_payload(&frame_payload(&json).unwrap()));
    assert!(binary.is_empty());
    // A frame whose count disagrees with its events is not merged.
    let mut wrong = encode_frame(&events(2), FrameCodec::None).unwrap();
    wrong[8..12].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(frame_payload(&Bytes::from(wrong)), None);
}

#[test]
fn lines_are_found_with_or_without_a_last_newline_and_blank_lines_are_skipped() {
    let batch = events(3);
    let lines: Vec<Vec<u8>> = batch
        .iter()
        .map(|event| event.encode_json().unwrap())
        .collect();
    // Header fields at their offsets: magic, version, codec, reserved, count, length.
    let frame = |payload: Vec<u8>| {
        let mut frame = FRAME_MAGIC.to_vec();
        frame.extend_from_slice(&[EventFormat::Json.version(), 0, 0, 0]);
        frame.extend_from_slice(&3u32.to_le_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&payload);
        Bytes::from(frame)
    };
    let without_last_newline = lines.join(&b'\n');
    let with_blank_lines = [b"\n".to_vec(), lines.join(&b"\n\n"[..]), b"\n\n".to_vec()].concat();
    for payload in [without_last_newline, with_blank_lines] {
        assert_eq!(decoded_events(&frame(payload)), batch);
    }
}

#[test]
fn an_uncompressed_frames_events_are_the_records_own_bytes() {
    for format in FORMATS {
        let record = Bytes::from(encode_frame_as(&events(2), format, FrameCodec::None).unwrap());
        let inside = record.as_ptr_range();
        for line in decode_record(&record).unwrap() {
            assert!(inside.contains(&line.bytes.as_ptr()), "an event was copied");
            assert!(line.event.is_ok());
        }
    }
}

#[test]
fn zstd_makes_a_batch_several_times_smaller() {
    let batch = events(200);
    let plain = encode_frame_as(&batch, EventFormat::Json, FrameCodec::None).unwrap();
    let packed = encode_frame_as(&batch, EventFormat::Json, FrameCodec::Zstd).unwrap();
    assert!(
        packed.len() * 4 < plain.len(),
        "zstd frame {} bytes against {} plain",
        packed.len(),
        plain.len()
    );
}

#[test]
fn a_record_written_before_frames_is_one_event() {
    let event = sample_event(7);
    let record = Bytes::from(event.encode_json().unwrap());
    let lines = decode_record(&record).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].bytes, record);
    assert_eq!(lines[0].event.as_ref().unwrap(), &event);
}

#[test]
fn one_bad_line_is_reported_alone_and_its_neighbours_decode() {
    let batch = events(3);
    let mut lines = Vec::new();
    for (index, event) in batch.iter().enumerate() {
        if index == 1 {
            lines.extend_from_slice(b"{\"schema_version\":1,\"event_id\":\"nope\"}\n");
        } else {
            lines.extend_from_slice(&event.encode_json().unwrap());
            lines.push(b'\n');
        }
    }
    let mut frame = encode_frame_as(&[], EventFormat::Json, FrameCodec::None).unwrap();
    frame[8..12].copy_from_slice(&3u32.to_le_bytes());
    frame[12..16].copy_from_slice(&u32::try_from(lines.len()).unwrap().to_le_bytes());
    frame.extend_from_slice(&lines);
    let decoded = decode_record(&Bytes::from(frame)).unwrap();
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[0].event.as_ref().unwrap(), &batch[0]);
    assert!(decoded[1].event.is_err());
    assert!(decoded[1].bytes.starts_with(b"{\"schema_version\":1"));
    assert_eq!(decoded[2].event.as_ref().unwrap(), &batch[2]);
}

#[test]
fn damaged_lz4_payloads_are_errors_that_name_the_damage() {
    let frame = encode_frame_as(&events(5), EventFormat::Binary, FrameCodec::Lz4).unwrap();
    let damaged = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = frame.clone();
        edit(&mut frame);
        let payload_len = u32::try_from(frame.len() - FRAME_HEADER_LEN).unwrap();
        frame[12..16].copy_from_slice(&payload_len.to_le_bytes());
        decode_record(&Bytes::from(frame)).unwrap_err().to_string()
    };
    let at = FRAME_HEADER_LEN;
    let error = damaged(&|frame| frame.truncate(at + 2));
    assert!(error.contains("LZ4 frame payload is cut short"), "{error}");
    // A declared size over the bound is refused before anything is allocated.
    let error = damaged(&|frame| frame[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(
        error.contains("over the 67108864 a frame may hold"),
        "{error}"
    );
    let error = damaged(&|frame| {
        let declared = u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
        frame[at..at + 4].copy_from_slice(&(declared + 10).to_le_bytes());
    });
    assert!(error.contains("but decompresses to"), "{error}");
    // A declared size under what the block holds: the block does not fit, an error.
    let error = damaged(&|frame| {
        let declared = u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
        frame[at..at + 4].copy_from_slice(&(declared - 10).to_le_bytes());
    });
    assert!(error.contains("not valid LZ4"), "{error}");
    let error = damaged(&|frame| frame.truncate(frame.len() - 5));
    assert!(error.contains("not valid LZ4"), "{error}");
}

#[test]
fn damaged_frames_are_errors_that_name_the_damage() {
    for (format, codec) in FORMATS
        .into_iter()
        .flat_map(|format| [FrameCodec::Zstd, FrameCodec::Lz4].map(|codec| (format, codec)))
    {
        let frame = encode_frame_as(&events(5), format, codec).unwrap();
        let cut = Bytes::copy_from_slice(&frame[..frame.len() - 3]);
        assert!(
            decode_record(&cut)
                .unwrap_err()
                .to_string()
                .contains("payload")
        );

        let mut wrong_count = frame.clone();
        wrong_count[8..12].copy_from_slice(&9u32.to_le_bytes());
        let error = decode_record(&Bytes::from(wrong_count)).unwrap_err();
        assert!(error.to_string().contains("declares 9 events"), "{error}");

        let mut unknown_codec = frame.clone();
        unknown_codec[5] = 7;
        let error = decode_record(&Bytes::from(unknown_codec)).unwrap_err();
        assert!(error.to_string().contains("unknown codec 7"), "{error}");

        let mut unknown_version = frame.clone();
        unknown_version[4] = 9;
        let error = decode_record(&Bytes::from(unknown_version)).unwrap_err();
        assert!(error.to_string().contains("upgrade tollgate"), "{error}");

        let mut garbled = frame;
        let last = garbled.len() - 1;
        garbled[FRAME_HEADER_LEN..last].fill(0xAB);
        assert!(
            decode_record(&Bytes::from(garbled)).is_err(),
            "{format:?} {codec:?}"
        );
    }
    let header_only = Bytes::from_static(b"TGUF\x01");
    assert!(
        decode_record(&header_only)
            .unwrap_err()
            .to_string()
            .contains("cut short")
    );
}

#[test]
fn an_archive_of_frames_and_json_lines_splits_back_into_its_records() {
    let first = Bytes::from(encode_frame(&events(3), FrameCodec::Zstd).unwrap());
    let legacy = Bytes::from(sample_event(9).encode_json().unwrap());
    let second = Bytes::from(encode_frame(&events(2), FrameCodec::None).unwrap());
    let mut body = Vec::new();
    body.extend_from_slice(&first);
    body.push(b'\n');
    body.extend_from_slice(&legacy);
    body.push(b'\n');
    body.extend_from_slice(&second);
    let records = split_archive(&Bytes::from(body));
    assert_eq!(records, vec![first, legacy, second]);
}

#[test]
fn a_quarantined_events_bytes_make_a_frame_of_that_one_event_again() {
    for format in FORMATS {
        let event = sample_event(3);
        let record =
            Bytes::from(encode_frame_as([&event], format, format.compressed_codec()).unwrap());
        assert_eq!(record_format(&record), Some(format));
        let line = decode_record(&record).unwrap().remove(0).bytes;
        let again = Bytes::from(single_event_frame(format, &line).unwrap());
        assert_eq!(decoded_events(&again), vec![event.clone()], "{format:?}");
    }
    assert_eq!(
        record_format(b"{\"schema_version\":1}"),
        Some(EventFormat::Json)
    );
    assert_eq!(record_format(b"TGUF\x09"), None);
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut framed = FRAME_MAGIC.to_vec();
        framed.extend_from_slice(&bytes);
        let _ = decode_record(&Bytes::from(framed.clone()));
        let _ = frame_payload(&Bytes::from(framed.clone()));
        // A well-formed header of each binary version and codec over arbitrary bytes.
        for (version, codec) in [(2, 0), (3, 0), (3, 1), (3, 2)] {
            let mut binary = FRAME_MAGIC.to_vec();
            binary.extend_from_slice(&[version, codec, 0, 0]);
            binary.extend_from_slice(&3u32.to_le_bytes());
            binary.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
            binary.extend_from_slice(&bytes);
            let _ = decode_record(&Bytes::from(binary.clone()));
            let _ = frame_payload(&Bytes::from(binary));
        }
        let _ = decode_record(&Bytes::from(bytes.clone()));
        let _ = split_archive(&Bytes::from(framed));
        let _ = split_archive(&Bytes::from(bytes));
    }

    #[test]
    fn frames_concatenated_without_separators_split_back(counts in proptest::collection::vec(0u64..6, 1..6)) {
        let frames: Vec<Bytes> = counts
            .iter()
            .map(|count| Bytes::from(encode_frame(&events(*count), FrameCodec::Zstd).unwrap()))
            .collect();
        let body: Vec<u8> = frames.iter().flat_map(|frame| frame.iter().copied()).collect();
        prop_assert_eq!(split_archive(&Bytes::from(body)), frames);
    }
}
