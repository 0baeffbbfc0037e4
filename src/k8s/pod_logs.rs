//! `PodLogOptions` (core/v1) as upstream reads them from a query string, validates them and
//! forwards them: the apiserver decodes and validates `pods/log`'s parameters, then asks the
//! pod's kubelet for `/containerLogs/...` with the options re-encoded; the kubelet decodes and
//! validates them again.

use chrono::{DateTime, NaiveDate, Utc};

use super::go;

/// The options of one log request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodLogOptions {
    /// `container`.
    pub container: Option<String>,
    /// `follow`.
    pub follow: bool,
    /// `previous`.
    pub previous: bool,
    /// `sinceSeconds`.
    pub since_seconds: Option<i64>,
    /// `sinceTime` (an empty value is Go's zero time).
    pub since_time: Option<DateTime<Utc>>,
    /// `timestamps`.
    pub timestamps: bool,
    /// `tailLines`.
    pub tail_lines: Option<i64>,
    /// `limitBytes`.
    pub limit_bytes: Option<i64>,
    /// `insecureSkipTLSVerifyBackend`.
    pub insecure_skip_tls_verify_backend: bool,
    /// `stream` (its feature gate, PodLogsQuerySplitStreams, is off in 1.33).
    pub stream: Option<String>,
}

/// A boolean query parameter as apimachinery converts it: only `0` and `false` (any case) are
/// false; any other value, the empty one included, is true.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// Go's zero `time.Time`, which an empty `sinceTime` decodes to.
fn zero_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl PodLogOptions {
    /// Decode the options from a query string's parameters (`get` answers a parameter's first
    /// value), field by field in the type's order as the generated conversion does.
    ///
    /// # Errors
    /// The first value Go's conversion rejects, with Go's error text.
    pub fn decode<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let int = |key: &str| get(key).map(go::parse_int).transpose();
        let since_time = match get("sinceTime") {
            None => None,
            Some("" | "null") => Some(zero_time()),
            Some(t) => Some(go::parse_rfc3339(t)?),
        };
        Ok(Self {
            container: get("container").map(str::to_string),
            follow: get("follow").is_some_and(flag),
            previous: get("previous").is_some_and(flag),
            since_seconds: int("sinceSeconds")?,
            since_time,
            timestamps: get("timestamps").is_some_and(flag),
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
            insecure_skip_tls_verify_backend: get("insecureSkipTLSVerifyBackend").is_some_and(flag),
            stream: get("stream").map(str::to_string),
        })
    }

    /// What upstream's `ValidatePodLogOptions` finds wrong, in its order.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(n) = self.tail_lines.filter(|n| *n < 0) {
            out.push(Problem::Invalid {
                field: "tailLines",
                value: n,
                detail: "must be greater than or equal to 0",
            });
        }
        if let Some(n) = self.limit_bytes.filter(|n| *n < 1) {
            out.push(Problem::Invalid {
                field: "limitBytes",
                value: n,
                detail: "must be greater than 0",
            });
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => out.push(Problem::Forbidden {
                // field.NewPath("") renders as "[]".
                field: "[]",
                detail: "at most one of `sinceTime` or `sinceSeconds` may be specified",
            }),
            (Some(n), None) if n < 1 => out.push(Problem::Invalid {
                field: "sinceSeconds",
                value: n,
                detail: "must be greater than 0",
            }),
            _ => {}
        }
        out
    }

    /// The query the apiserver sends the kubelet (upstream's `LogLocation`): only the options
    /// that are set, re-encoded from their values, keys sorted as Go's `url.Values` encodes
    /// them; `sinceTime` in whole seconds.
    pub fn kubelet_query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if self.follow {
            params.push(("follow", "true".into()));
        }
        if self.previous {
            params.push(("previous", "true".into()));
        }
        if self.timestamps {
            params.push(("timestamps", "true".into()));
        }
        if let Some(n) = self.since_seconds {
            params.push(("sinceSeconds", n.to_string()));
        }
        if let Some(t) = self.since_time {
            params.push(("sinceTime", crate::clock::format_time(t)));
        }
        if let Some(n) = self.tail_lines {
            params.push(("tailLines", n.to_string()));
        }
        if let Some(n) = self.limit_bytes {
            params.push(("limitBytes", n.to_string()));
        }
        params.sort_by(|a, b| a.0.cmp(b.0));
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }

    /// The earliest time a line may carry to be shown (the kubelet's `NewLogOptions`): now less
    /// `sinceSeconds`, or `sinceTime` when that is later.
    pub fn since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from_seconds = self
            .since_seconds
            .map(|s| crate::clock::add_seconds(now, s.saturating_neg()).unwrap_or(zero_time()));
        match (from_seconds, self.since_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One thing `ValidatePodLogOptions` rejects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `field.Invalid`.
    Invalid {
        /// The field path.
        field: &'static str,
        /// The value given.
        value: i64,
        /// Why it is wrong.
        detail: &'static str,
    },
    /// `field.Forbidden`.
    Forbidden {
        /// The field path.
        field: &'static str,
        /// Why it is wrong.
        detail: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(query: &[(&'static str, &'static str)]) -> Result<PodLogOptions, String> {
        PodLogOptions::decode(|k| query.iter().find(|(q, _)| *q == k).map(|(_, v)| *v))
    }

    #[test]
    fn options_decode_as_go_converts_query_parameters() {
        let o = decode(&[
            ("follow", ""),
            ("previous", "FALSE"),
            ("timestamps", "1"),
            ("tailLines", "+3"),
            ("sinceTime", "2025-01-02T03:04:05.9Z"),
        ])
        .unwrap();
        assert!(o.follow && !o.previous && o.timestamps);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(
            o.kubelet_query(),
            "follow=true&sinceTime=2025-01-02T03%3A04%3A05Z&tailLines=3&timestamps=true"
        );
        assert_eq!(
            decode(&[("limitBytes", "ten")]),
            Err("strconv.ParseInt: parsing \"ten\": invalid syntax".into())
        );
    }

    #[test]
    fn problems_are_upstreams() {
        let o = decode(&[
            ("tailLines", "-1"),
            ("limitBytes", "0"),
            ("sinceSeconds", "5"),
            ("sinceTime", "2025-01-02T03:04:05Z"),
        ])
        .unwrap();
        assert_eq!(
            o.problems(),
            vec![
                Problem::Invalid {
                    field: "tailLines",
                    value: -1,
                    detail: "must be greater than or equal to 0"
                },
                Problem::Invalid {
                    field: "limitBytes",
                    value: 0,
                    detail: "must be greater than 0"
                },
                Problem::Forbidden {
                    field: "[]",
                    detail: "at most one of `sinceTime` or `sinceSeconds` may be specified"
                },
            ]
        );
        let o = decode(&[("sinceSeconds", "0")]).unwrap();
        assert_eq!(o.problems().len(), 1);
    }
}
