//! The remote-write 1.0 wire format: a protobuf `WriteRequest`, snappy block-compressed, sent with the
//! protocol's headers. Only the fields 1.0 requires (time series of labels and float samples) are written.

use super::samples::Sample;
use std::collections::HashMap;

pub const CONTENT_TYPE: &str = "application/x-protobuf";
pub const CONTENT_ENCODING: &str = "snappy";
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
pub const VERSION: &str = "0.1.0";

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// In timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<WireSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WireSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One request body: the samples grouped by series (in queue order, so each series' samples stay in time
/// order), `extra` labels added to series that lack them, encoded and compressed.
pub fn encode(samples: &[Sample], extra: &[(String, String)]) -> Vec<u8> {
    let mut index: HashMap<*const u8, usize> = HashMap::with_capacity(samples.len());
    let mut timeseries: Vec<TimeSeries> = Vec::new();
    for s in samples {
        let i = *index.entry(s.series.id()).or_insert_with(|| {
            timeseries.push(TimeSeries {
                labels: with_extra(s.series.labels(), extra),
                samples: Vec::new(),
            });
            timeseries.len() - 1
        });
        timeseries[i].samples.push(WireSample {
            value: s.value,
            timestamp: s.timestamp_ms,
        });
    }
    let body = prost::Message::encode_to_vec(&WriteRequest { timeseries });
    snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy compresses any input below 4 GiB")
}

/// Decodes a request body (tests and the benchmark's receiver).
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    prost::Message::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// The series' labels (sorted) plus those of `extra` it does not have, sorted by name.
fn with_extra(labels: Vec<(String, String)>, extra: &[(String, String)]) -> Vec<Label> {
    let missing: Vec<Label> = extra
        .iter()
        .filter(|(n, _)| !labels.iter().any(|(have, _)| have == n))
        .map(|(n, v)| Label {
            name: n.clone(),
            value: v.clone(),
        })
        .collect();
    let mut out: Vec<Label> = labels
        .into_iter()
        .map(|(name, value)| Label { name, value })
        .collect();
    if !missing.is_empty() {
        out.extend(missing);
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::samples::Series;

    #[test]
    fn round_trips_grouped_by_series() {
        let a = Series::parse("up{region=\"eu\"}").unwrap();
        let b = Series::parse("x").unwrap();
        let samples = vec![
            Sample {
                series: a.clone(),
                value: 1.0,
                timestamp_ms: 10,
            },
            Sample {
                series: b.clone(),
                value: 2.0,
                timestamp_ms: 11,
            },
            Sample {
                series: a.clone(),
                value: 0.0,
                timestamp_ms: 12,
            },
        ];
        let req = decode(&encode(&samples, &[("agent".into(), "eu-1".into())])).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        let first = &req.timeseries[0];
        let names: Vec<&str> = first.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "agent", "region"]);
        assert_eq!(
            first
                .samples
                .iter()
                .map(|s| s.timestamp)
                .collect::<Vec<_>>(),
            [10, 12]
        );
    }
}
