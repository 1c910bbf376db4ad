//! The quarantine: what the metering consumer could not meter (an unreadable record, an
//! event of an unknown customer, a frame newer than the consumer), kept with its reason,
//! and `requeue`, which sends it through the log again once the cause is fixed. The work is
//! `metering::quarantine_requeue`'s; counting stays exactly once because every event keeps
//! its producer number.

use metering::quarantine_requeue::{
    QuarantinedItem, RequeueReport, list_quarantined, requeue_quarantined,
};
use store::backend::Ports;

use crate::error::Result;

/// `quarantine list`: every quarantined record or event, with its reason, in key order.
pub async fn list(ports: &Ports) -> Result<Vec<QuarantinedItem>> {
    Ok(list_quarantined(&ports.objects).await?)
}

/// `quarantine requeue`: appends every quarantined item to the event log again and removes
/// it from quarantine once the log has it. What still cannot be metered is quarantined
/// again by the consumer; an event already counted is skipped as a duplicate.
pub async fn requeue(ports: &Ports) -> Result<RequeueReport> {
    Ok(requeue_quarantined(&ports.objects, ports.event_appender.as_ref()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::memory_ports;
    use store::LogEntry;

    #[tokio::test]
    async fn a_quarantined_record_is_listed_then_appended_to_the_log_again() {
        let (_, ports) = memory_ports();
        assert!(list(&ports).await.unwrap().is_empty());
        let entry = LogEntry {
            partition: "0".into(),
            position: "00000000000000000007".into(),
            partition_key: "proxy-9".into(),
            data: b"not an event".to_vec().into(),
        };
        metering::quarantine::quarantine_record(&ports.objects, &entry, "record is not valid json")
            .await
            .unwrap();
        let listed = list(&ports).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].position, entry.position);
        assert_eq!(listed[0].reason, "record is not valid json");

        let report = requeue(&ports).await.unwrap();
        assert_eq!((report.requeued, report.refused), (1, 0));
        assert!(list(&ports).await.unwrap().is_empty());
        let partition = ports.event_reader.partitions().await.unwrap().remove(0).id;
        let read = ports.event_reader.read(&partition, None, 10).await.unwrap();
        assert_eq!(read.entries.len(), 1);
        assert_eq!(read.entries[0].data, entry.data);
        assert_eq!(read.entries[0].partition_key, "proxy-9");
    }
}
