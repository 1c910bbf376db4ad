//! A frame's event format, its version byte: JSON lines, or binary events with their ids
//! as text (version 2) or compact (version 3); its names in settings and in quarantine
//! descriptions, and the codec a compressed frame of it uses.

use super::FrameCodec;
use crate::error::DecodeError;
use crate::usage_event_binary::IdForm;

/// How a frame's events are written, its version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// Version 1: one JSON object per line (`UsageEvent::encode_json`).
    Json,
    /// Version 2: each event's binary form with its ids as text, after its length
    /// (`UsageEvent::encode_binary_as(IdForm::Text, ..)`).
    BinaryV2,
    /// Version 3: each event's binary form with compact ids, after its length
    /// (`UsageEvent::encode_binary`).
    #[default]
    Binary,
}

impl EventFormat {
    /// The frame version byte of this format.
    pub fn version(self) -> u8 {
        match self {
            Self::Json => 1,
            Self::BinaryV2 => 2,
            Self::Binary => 3,
        }
    }

    pub(super) fn from_version(version: u8) -> Result<Self, DecodeError> {
        match version {
            1 => Ok(Self::Json),
            2 => Ok(Self::BinaryV2),
            3 => Ok(Self::Binary),
            other => Err(DecodeError::Frame(format!(
                "frame version {other} is unknown; this build reads 1 (JSON lines), 2 and 3 (binary events): upgrade tollgate"
            ))),
        }
    }

    /// The format's name in settings (`--event-format`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::BinaryV2 => "binary-v2",
            Self::Binary => "binary",
        }
    }

    /// The format's name in a quarantined event's description, which `tollgate quarantine
    /// requeue` reads back, perhaps in a later build: stable, so `binary` stays version 2
    /// (as builds before version 3 wrote it) and version 3 is `binary-v3`.
    pub fn quarantine_name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::BinaryV2 => "binary",
            Self::Binary => "binary-v3",
        }
    }

    /// The format a quarantine description names ([`Self::quarantine_name`]); `None` for a
    /// name this build does not know.
    pub fn from_quarantine_name(name: &str) -> Option<Self> {
        [Self::Json, Self::BinaryV2, Self::Binary]
            .into_iter()
            .find(|format| format.quarantine_name() == name)
    }

    /// How a binary format carries its events' ids; `None` for JSON lines.
    pub(super) fn id_form(self) -> Option<IdForm> {
        match self {
            Self::Json => None,
            Self::BinaryV2 => Some(IdForm::Text),
            Self::Binary => Some(IdForm::Compact),
        }
    }

    /// The codec of a frame of this format that is worth compressing: LZ4 for version 3;
    /// zstd for the versions older consumers read (which know no other codec).
    pub fn compressed_codec(self) -> FrameCodec {
        match self {
            Self::Json | Self::BinaryV2 => FrameCodec::Zstd,
            Self::Binary => FrameCodec::Lz4,
        }
    }
}

impl std::str::FromStr for EventFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "json" => Ok(Self::Json),
            "binary-v2" => Ok(Self::BinaryV2),
            "binary" => Ok(Self::Binary),
            other => Err(format!(
                "unknown event format {other:?}: use binary (the default), binary-v2 (for consumers older than version 3 frames) or json (for consumers older than binary frames)"
            )),
        }
    }
}
