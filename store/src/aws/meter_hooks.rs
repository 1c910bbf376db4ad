//! Feeds the [`AwsMeter`]: an SDK interceptor on every AWS SDK client (DynamoDB, Kinesis,
//! Firehose, SNS) and an HTTP connector under `object_store`'s S3 client. Each attempt is
//! counted; billable units come from the typed input (writes, records put) and, for reads,
//! the typed output, and are added only for attempts that succeeded.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};

use super::meter::{
    AwsMeter, ReadConsistency, dynamo_read_units, dynamo_write_units, firehose_ingested_kib,
    kinesis_on_demand_kib, kinesis_put_payload_units, unit,
};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's size of one attribute value, by its documented rules: strings and binaries
/// by length, numbers one byte per two significant digits plus one, one byte for booleans
/// and nulls, three bytes plus one per element for lists and maps.
pub fn attribute_value_size(value: &AttributeValue) -> u64 {
    let number = |digits: &str| {
        let significant = digits
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        let significant = significant.trim_start_matches('0').trim_end_matches('0');
        (significant.len() as u64).div_ceil(2) + 1
    };
    match value {
        AttributeValue::S(text) => text.len() as u64,
        AttributeValue::N(digits) => number(digits),
        AttributeValue::B(blob) => blob.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(texts) => texts.iter().map(|text| text.len() as u64).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|digits| number(digits)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|blob| blob.as_ref().len() as u64).sum(),
        AttributeValue::L(values) => {
            3 + values
                .iter()
                .map(|v| 1 + attribute_value_size(v))
                .sum::<u64>()
        }
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + attribute_value_size(v))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// DynamoDB's size of one item: attribute names plus values.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + attribute_value_size(value))
        .sum()
}

/// An update's written size as far as the request shows it: the key and the new values.
/// DynamoDB bills the larger of the item before and after; Tollgate's items are far below
/// 1 KiB, so this gives the same units.
fn update_size(key: &Item, values: Option<&Item>) -> u64 {
    item_size(key) + values.map_or(0, item_size)
}

/// What an execution's input implies, kept in the config bag until its attempts end.
#[derive(Debug, Clone, Default)]
struct PlannedUnits {
    on_success: Vec<(&'static str, f64)>,
    read_consistency: Option<ReadConsistency>,
}

impl Storable for PlannedUnits {
    type Storer = StoreReplace<Self>;
}

fn consistency(consistent_read: Option<bool>) -> ReadConsistency {
    if consistent_read == Some(true) {
        ReadConsistency::Strong
    } else {
        ReadConsistency::Eventual
    }
}

fn planned_units(input: &Input) -> PlannedUnits {
    use aws_sdk_dynamodb::operation as dynamodb;
    use aws_sdk_kinesis::operation as kinesis;
    let mut planned = PlannedUnits::default();
    let writes = |units: u64| (unit::DYNAMO_WRITE_REQUEST_UNITS, units as f64);
    if let Some(put) = input.downcast_ref::<kinesis::put_records::PutRecordsInput>() {
        let sizes: Vec<u64> = put
            .records()
            .iter()
            .map(|record| (record.data().as_ref().len() + record.partition_key().len()) as u64)
            .collect();
        planned.on_success = vec![
            (
                unit::KINESIS_PUT_PAYLOAD_UNITS,
                sizes
                    .iter()
                    .map(|&size| kinesis_put_payload_units(size))
                    .sum::<u64>() as f64,
            ),
            (
                unit::KINESIS_INGESTED_KIB,
                sizes
                    .iter()
                    .map(|&size| kinesis_on_demand_kib(size))
                    .sum::<u64>() as f64,
            ),
            (unit::KINESIS_RECORDS_PUT, sizes.len() as f64),
        ];
    } else if let Some(batch) =
        input.downcast_ref::<aws_sdk_firehose::operation::put_record_batch::PutRecordBatchInput>()
    {
        let kib: u64 = batch
            .records()
            .iter()
            .map(|record| firehose_ingested_kib(record.data().as_ref().len() as u64))
            .sum();
        planned.on_success = vec![(unit::FIREHOSE_INGESTED_KIB, kib as f64)];
    } else if let Some(put) = input.downcast_ref::<dynamodb::put_item::PutItemInput>() {
        let size = put.item().map_or(0, item_size);
        planned.on_success = vec![writes(dynamo_write_units(size, false))];
    } else if let Some(update) = input.downcast_ref::<dynamodb::update_item::UpdateItemInput>() {
        let size = update_size(
            update.key().unwrap_or(&HashMap::new()),
            update.expression_attribute_values(),
        );
        planned.on_success = vec![writes(dynamo_write_units(size, false))];
    } else if let Some(delete) = input.downcast_ref::<dynamodb::delete_item::DeleteItemInput>() {
        let size = delete.key().map_or(0, item_size);
        planned.on_success = vec![writes(dynamo_write_units(size, false))];
    } else if let Some(transaction) =
        input.downcast_ref::<dynamodb::transact_write_items::TransactWriteItemsInput>()
    {
        let units: u64 = transaction
            .transact_items()
            .iter()
            .map(|action| {
                let size = if let Some(put) = action.put() {
                    item_size(put.item())
                } else if let Some(update) = action.update() {
                    update_size(update.key(), update.expression_attribute_values())
                } else if let Some(delete) = action.delete() {
                    item_size(delete.key())
                } else {
                    action
                        .condition_check()
                        .map_or(0, |check| item_size(check.key()))
                };
                dynamo_write_units(size, true)
            })
            .sum();
        planned.on_success = vec![writes(units)];
    } else {
        planned.read_consistency = planned_read_consistency(input);
    }
    planned
}

/// How a DynamoDB read is billed, from its request (`None`: not a DynamoDB read).
fn planned_read_consistency(input: &Input) -> Option<ReadConsistency> {
    use aws_sdk_dynamodb::operation as dynamodb;
    if let Some(get) = input.downcast_ref::<dynamodb::get_item::GetItemInput>() {
        Some(consistency(get.consistent_read()))
    } else if let Some(batch) = input.downcast_ref::<dynamodb::batch_get_item::BatchGetItemInput>()
    {
        let consistent = batch
            .request_items()
            .and_then(|tables| tables.values().next())
            .and_then(|keys| keys.consistent_read());
        Some(consistency(consistent))
    } else if let Some(query) = input.downcast_ref::<dynamodb::query::QueryInput>() {
        Some(consistency(query.consistent_read()))
    } else {
        input
            .downcast_ref::<dynamodb::scan::ScanInput>()
            .map(|scan| consistency(scan.consistent_read()))
    }
}

/// Units that only the answer shows: DynamoDB reads by the size read, Kinesis bytes read.
fn answered_units(
    output: &Output,
    consistency: Option<ReadConsistency>,
) -> Option<(&'static str, f64)> {
    use aws_sdk_dynamodb::operation as dynamodb;
    let read = |bytes: u64| {
        consistency.map(|consistency| {
            (
                unit::DYNAMO_READ_REQUEST_UNITS,
                dynamo_read_units(bytes, consistency),
            )
        })
    };
    if let Some(get) = output.downcast_ref::<dynamodb::get_item::GetItemOutput>() {
        read(get.item().map_or(0, item_size))
    } else if let Some(batch) =
        output.downcast_ref::<dynamodb::batch_get_item::BatchGetItemOutput>()
    {
        // Each item of a batch read is billed on its own, rounded up to 4 KiB.
        consistency.map(|consistency| {
            let units = batch
                .responses()
                .into_iter()
                .flat_map(|tables| tables.values())
                .flatten()
                .map(|item| dynamo_read_units(item_size(item), consistency))
                .sum::<f64>();
            (unit::DYNAMO_READ_REQUEST_UNITS, units)
        })
    } else if let Some(query) = output.downcast_ref::<dynamodb::query::QueryOutput>() {
        read(query.items().iter().map(item_size).sum())
    } else if let Some(scan) = output.downcast_ref::<dynamodb::scan::ScanOutput>() {
        read(scan.items().iter().map(item_size).sum())
    } else if let Some(records) =
        output.downcast_ref::<aws_sdk_kinesis::operation::get_records::GetRecordsOutput>()
    {
        let bytes: usize = records
            .records()
            .iter()
            .map(|record| record.data().as_ref().len() + record.partition_key().len())
            .sum();
        Some((unit::KINESIS_RETRIEVED_BYTES, bytes as f64))
    } else {
        None
    }
}

/// The SDK interceptor that reports every attempt to a meter.
#[derive(Debug, Clone, Copy)]
pub struct MeterInterceptor {
    meter: &'static AwsMeter,
}

impl MeterInterceptor {
    /// An interceptor reporting to `meter`.
    pub fn new(meter: &'static AwsMeter) -> Self {
        Self { meter }
    }
}

impl Intercept for MeterInterceptor {
    fn name(&self) -> &'static str {
        "TollgateAwsMeter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(planned_units(context.input()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let (service, operation) = (metadata.service(), metadata.name());
        self.meter.count_request(service, operation);
        // Units count only for attempts answered with success: throttled or failed ones
        // are not billed as planned.
        let succeeded = context
            .response()
            .is_some_and(|response| response.status().is_success());
        if !succeeded {
            return Ok(());
        }
        let Some(planned) = cfg.load::<PlannedUnits>() else {
            return Ok(());
        };
        for (unit, amount) in &planned.on_success {
            self.meter.add_units(service, operation, unit, *amount);
        }
        if let Some(Ok(output)) = context.output_or_error()
            && let Some((unit, amount)) = answered_units(output, planned.read_consistency)
        {
            self.meter.add_units(service, operation, unit, amount);
        }
        Ok(())
    }
}

/// S3's operation name for one `object_store` request, from its method and URL.
pub fn s3_operation(method: &http::Method, uri: &http::Uri, copy: bool) -> &'static str {
    let query = uri.query().unwrap_or("");
    let has = |parameter: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(parameter))
    };
    match *method {
        http::Method::GET if has("list-type") => "ListObjectsV2",
        http::Method::GET if has("uploads") => "ListMultipartUploads",
        http::Method::GET => "GetObject",
        http::Method::HEAD => "HeadObject",
        http::Method::PUT if has("uploadId") => "UploadPart",
        http::Method::PUT if copy => "CopyObject",
        http::Method::PUT => "PutObject",
        http::Method::POST if has("delete") => "DeleteObjects",
        http::Method::POST if has("uploads") => "CreateMultipartUpload",
        http::Method::POST if has("uploadId") => "CompleteMultipartUpload",
        http::Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        http::Method::DELETE => "DeleteObject",
        _ => "Other",
    }
}

/// `object_store`'s default HTTP client, counting each request (retries included).
#[derive(Debug, Clone, Copy)]
pub struct MeteredS3Connector {
    meter: &'static AwsMeter,
}

impl MeteredS3Connector {
    /// A connector reporting to `meter`.
    pub fn new(meter: &'static AwsMeter) -> Self {
        Self { meter }
    }
}

impl HttpConnector for MeteredS3Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(MeteredS3Service {
            inner,
            meter: self.meter,
        }))
    }
}

#[derive(Debug)]
struct MeteredS3Service {
    inner: HttpClient,
    meter: &'static AwsMeter,
}

#[async_trait]
impl HttpService for MeteredS3Service {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let copy = request.headers().contains_key("x-amz-copy-source");
        self.meter
            .count_request("S3", s3_operation(request.method(), request.uri(), copy));
        self.inner.execute(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        assert_eq!(attribute_value_size(&s("abc")), 3);
        assert_eq!(attribute_value_size(&AttributeValue::N("12345".into())), 4);
        assert_eq!(
            attribute_value_size(&AttributeValue::N("-0.0100".into())),
            2
        );
        assert_eq!(attribute_value_size(&AttributeValue::Bool(true)), 1);
        assert_eq!(
            attribute_value_size(&AttributeValue::L(vec![s("ab"), s("c")])),
            3 + 3 + 2
        );
        let item = HashMap::from([
            ("pk".to_owned(), s("EVENT#1")),
            ("n".to_owned(), AttributeValue::N("7".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 7 + 1 + 2);
    }

    #[test]
    fn transactional_writes_count_double_per_item() {
        let small = HashMap::from([("pk".to_owned(), s("x"))]);
        let large = HashMap::from([("pk".to_owned(), s(&"x".repeat(1500)))]);
        let input = TransactWriteItemsInput::builder()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("t")
                            .set_item(Some(small.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("t")
                            .set_item(Some(large))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name("t")
                            .set_key(Some(small))
                            .update_expression("ADD n :one")
                            .expression_attribute_values(":one", AttributeValue::N("1".into()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        let planned = planned_units(&Input::erase(input));
        assert_eq!(
            planned.on_success,
            vec![(unit::DYNAMO_WRITE_REQUEST_UNITS, (2 + 4 + 2) as f64)]
        );
    }

    #[test]
    fn s3_requests_are_named_by_method_and_query() {
        let uri = |text: &str| text.parse::<http::Uri>().unwrap();
        let get = http::Method::GET;
        assert_eq!(
            s3_operation(&get, &uri("http://h/b?list-type=2&prefix=x"), false),
            "ListObjectsV2"
        );
        assert_eq!(
            s3_operation(&get, &uri("http://h/b/usage/a.parquet"), false),
            "GetObject"
        );
        assert_eq!(
            s3_operation(&http::Method::PUT, &uri("http://h/b/k"), false),
            "PutObject"
        );
        assert_eq!(
            s3_operation(&http::Method::PUT, &uri("http://h/b/k"), true),
            "CopyObject"
        );
        assert_eq!(
            s3_operation(
                &http::Method::PUT,
                &uri("http://h/b/k?partNumber=1&uploadId=u"),
                false
            ),
            "UploadPart"
        );
        assert_eq!(
            s3_operation(&http::Method::DELETE, &uri("http://h/b/k"), false),
            "DeleteObject"
        );
    }
}
