//! The Distributed Map's ItemSelector and ItemBatcher, as the state machine's definition sets
//! them (`statemachine/audit-bucket.asl.json`), so that the rehearsal and the tests build the
//! very batches a child execution receives.
//!
//! A child execution's input is at most 256 KiB. ListObjectsV2 items carry the key, ETag,
//! size, date and storage class, and a key may be 1 024 bytes: 1 000 such items are about
//! 1.2 MB. So the definition passes only the key (`ItemSelector`) and bounds each batch by
//! bytes as well as items (`MaxInputBytesPerBatch`): a batch closes before the item that would
//! take it past the bound.

use serde_json::{Value, json};

/// The state machine's definition, as the template's `DefinitionUri` names it.
pub const DEFINITION: &str = include_str!("../../../statemachine/audit-bucket.asl.json");

/// [`DEFINITION`] with its placeholders filled in as CloudFormation fills them, for a stack
/// auditing `bucket` (the numbers are the template's defaults; the batch size is an argument
/// of [`ItemBatcher::from_definition`]).
pub fn definition_for(bucket: &str) -> String {
    DEFINITION
        .replace("${BucketName}", bucket)
        .replace("${ObjectPrefix}", "")
        .replace(
            "${WorkerFunctionArn}",
            "arn:aws:lambda:us-east-1:123456789012:function:join-all",
        )
        .replace("${ResultsBucketName}", "results")
        .replace("${ResultsPrefix}", "results")
        .replace("${BatchSize}", "1000")
        .replace("${MaxConcurrency}", "10")
        .replace("${ToleratedFailurePercentage}", "0")
}

/// A child execution's input limit (Step Functions' quota).
pub const CHILD_INPUT_LIMIT: usize = 256 * 1024;

/// The batching settings of the definition's Map state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemBatcher {
    pub max_items: usize,
    pub max_bytes: usize,
    /// The `BatchInput` added to every batch.
    pub batch_input: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum BatcherError {
    #[error("the definition is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the definition has no Distributed Map state")]
    NoMap,
    #[error("the Map state's {0} is missing or not what the worker reads")]
    Field(&'static str),
    #[error("a single item of {item} bytes cannot fit a batch of at most {max} bytes")]
    ItemTooLarge { item: usize, max: usize },
}

impl ItemBatcher {
    /// The settings of the Map state in `definition` (its placeholders filled in), with
    /// `max_items` for its `MaxItemsPerBatchPath` (the template's BatchSize). Checks that its
    /// ItemSelector passes the listed object's key and nothing else, which is what the worker
    /// reads.
    pub fn from_definition(definition: &str, max_items: usize) -> Result<Self, BatcherError> {
        let definition: Value = serde_json::from_str(definition)?;
        let map = definition["States"]
            .as_object()
            .and_then(|states| states.values().find(|state| state["Type"] == "Map"))
            .ok_or(BatcherError::NoMap)?;
        if map["ItemSelector"] != json!({"Key.$": "$$.Map.Item.Value.Key"}) {
            return Err(BatcherError::Field("ItemSelector"));
        }
        let batcher = &map["ItemBatcher"];
        let max_bytes = batcher["MaxInputBytesPerBatch"]
            .as_u64()
            .and_then(|bytes| usize::try_from(bytes).ok())
            .filter(|bytes| *bytes <= CHILD_INPUT_LIMIT)
            .ok_or(BatcherError::Field("ItemBatcher.MaxInputBytesPerBatch"))?;
        Ok(ItemBatcher {
            max_items,
            max_bytes,
            batch_input: batcher["BatchInput"].clone(),
        })
    }

    /// The children's inputs for `keys`, in order: `{"BatchInput": …, "Items": [{"Key": …}]}`,
    /// each at most `max_items` items and `max_bytes` bytes of JSON.
    pub fn batches<I>(&self, keys: I) -> Result<Vec<Value>, BatcherError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        // The input's bytes without items, and each item's own (with its comma).
        let empty = json!({"BatchInput": self.batch_input, "Items": []}).to_string().len();
        let mut batches = Vec::new();
        let (mut items, mut bytes) = (Vec::new(), empty);
        for key in keys {
            let item = json!({"Key": key.into()});
            // Serialized once: its bytes, and a comma unless it opens a batch.
            let own = item.to_string().len();
            let size = own + usize::from(!items.is_empty());
            if empty + size > self.max_bytes {
                return Err(BatcherError::ItemTooLarge {
                    item: size,
                    max: self.max_bytes - empty,
                });
            }
            if items.len() == self.max_items.max(1) || bytes + size > self.max_bytes {
                batches.push(self.batch(std::mem::take(&mut items)));
                bytes = empty;
            }
            bytes += own + usize::from(!items.is_empty());
            items.push(item);
        }
        if !items.is_empty() {
            batches.push(self.batch(items));
        }
        Ok(batches)
    }

    fn batch(&self, items: Vec<Value>) -> Value {
        json!({"BatchInput": self.batch_input, "Items": items})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batcher(max_items: usize, max_bytes: usize) -> ItemBatcher {
        ItemBatcher {
            max_items,
            max_bytes,
            batch_input: json!({"bucket": "b"}),
        }
    }

    #[test]
    fn a_batch_closes_at_its_item_count_or_before_the_item_that_overflows_it() {
        let keys: Vec<String> = (0..10).map(|i| format!("key-{i}")).collect();
        let by_items = batcher(4, CHILD_INPUT_LIMIT).batches(keys.clone()).unwrap();
        assert_eq!(
            by_items
                .iter()
                .map(|b| b["Items"].as_array().unwrap().len())
                .collect::<Vec<_>>(),
            [4, 4, 2]
        );
        // {"BatchInput":{"bucket":"b"},"Items":[]} is 40 bytes, {"Key":"key-0"} 15, a comma 1.
        let by_bytes = batcher(1000, 40 + 15 + 16 + 16).batches(keys).unwrap();
        for batch in &by_bytes {
            assert!(batch.to_string().len() <= 87, "{batch}");
        }
        let sizes: Vec<usize> = by_bytes.iter().map(|b| b["Items"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
    }

    #[test]
    fn an_item_larger_than_a_batch_is_an_error_not_a_lost_key() {
        let err = batcher(10, 50).batches(["k".repeat(100)]).unwrap_err();
        assert!(matches!(err, BatcherError::ItemTooLarge { .. }), "{err}");
    }
}
