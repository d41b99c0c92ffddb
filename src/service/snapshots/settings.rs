//! Snapshot settings as pure data: the local config of one level, its validation, the system
//! defaults and the inheritance that resolves system → project → bucket → table, key by key.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// Retention bounds in days, inclusive (ten years at most).
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;

/// Where a setting is set. Ordered from the most general to the most specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    System,
    Project,
    Bucket,
    Table,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Project => "project",
            Self::Bucket => "bucket",
            Self::Table => "table",
        }
    }
}

/// The config one level sets; every key is optional and an absent one is inherited.
/// Unknown keys are refused (422) so a typo never silently does nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_snapshot_triggers: Option<Triggers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_table: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_table: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_all_rows: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_column: Option<bool>,
}

/// Days kept. Signed so that a negative value is a 400 `invalid_config`, not a shape error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_days: Option<i64>,
}

impl LocalConfig {
    /// 400 `invalid_config` for a retention outside `RETENTION_DAYS`.
    pub fn validate(&self) -> ApiResult<()> {
        let Some(r) = &self.retention else {
            return Ok(());
        };
        for (key, days) in [("manual_days", r.manual_days), ("auto_days", r.auto_days)] {
            if let Some(d) = days {
                if !RETENTION_DAYS.contains(&d) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!(
                            "retention.{key} must be between {} and {} days",
                            RETENTION_DAYS.start(),
                            RETENTION_DAYS.end()
                        ),
                    )
                    .with_details(json!({"field": format!("retention.{key}"), "value": d})));
                }
            }
        }
        Ok(())
    }

    /// Every key this level sets, dotted (`retention.manual_days`), with its value.
    fn flat(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(e) = self.enabled {
            out.push(("enabled", json!(e)));
        }
        if let Some(t) = &self.auto_snapshot_triggers {
            let keys = [
                ("auto_snapshot_triggers.drop_table", t.drop_table),
                ("auto_snapshot_triggers.truncate_table", t.truncate_table),
                ("auto_snapshot_triggers.delete_all_rows", t.delete_all_rows),
                ("auto_snapshot_triggers.drop_column", t.drop_column),
            ];
            out.extend(keys.into_iter().filter_map(|(k, v)| Some((k, json!(v?)))));
        }
        if let Some(r) = &self.retention {
            let keys = [
                ("retention.manual_days", r.manual_days),
                ("retention.auto_days", r.auto_days),
            ];
            out.extend(keys.into_iter().filter_map(|(k, v)| Some((k, json!(v?)))));
        }
        out
    }
}

/// The system defaults: snapshots on, only a drop takes one, manual kept 90 days, auto 7.
pub fn system_defaults() -> LocalConfig {
    LocalConfig {
        enabled: Some(true),
        auto_snapshot_triggers: Some(Triggers {
            drop_table: Some(true),
            truncate_table: Some(false),
            delete_all_rows: Some(false),
            drop_column: Some(false),
        }),
        retention: Some(Retention {
            manual_days: Some(90),
            auto_days: Some(7),
        }),
    }
}

/// Settings as one level sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Every key, nested as in a PUT body.
    pub effective: Value,
    /// Each dotted key → the level its effective value comes from.
    pub inheritance: Map<String, Value>,
    /// What the level itself sets (`{}` when nothing).
    pub local: LocalConfig,
}

impl Resolved {
    pub fn to_json(&self) -> Value {
        json!({
            "effective_config": self.effective,
            "inheritance": self.inheritance,
            "local_config": self.local,
        })
    }

    /// The effective value of a dotted boolean key (`enabled`, `auto_snapshot_triggers.…`).
    pub fn flag(&self, dotted: &str) -> bool {
        self.lookup(dotted)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The effective value of a dotted number key (`retention.manual_days`).
    pub fn days(&self, dotted: &str) -> Option<i64> {
        self.lookup(dotted).and_then(Value::as_i64)
    }

    fn lookup(&self, dotted: &str) -> Option<&Value> {
        dotted
            .split('.')
            .try_fold(&self.effective, |v, part| v.get(part))
    }
}

/// Resolves the settings `own` sees from the configs set at its level and above (`chain`,
/// most general first): each key takes the most specific level that sets it.
pub fn resolve(own: Level, chain: &[(Level, LocalConfig)]) -> Resolved {
    let mut values: Vec<(&'static str, Value, Level)> = system_defaults()
        .flat()
        .into_iter()
        .map(|(k, v)| (k, v, Level::System))
        .collect();
    let mut sorted: Vec<&(Level, LocalConfig)> = chain.iter().filter(|(l, _)| *l <= own).collect();
    sorted.sort_by_key(|(l, _)| *l);
    for (level, config) in sorted {
        for (key, value) in config.flat() {
            if let Some(slot) = values.iter_mut().find(|(k, _, _)| *k == key) {
                slot.1 = value;
                slot.2 = *level;
            }
        }
    }
    let mut effective = Map::new();
    let mut inheritance = Map::new();
    for (key, value, level) in values {
        inheritance.insert(key.to_string(), json!(level.as_str()));
        match key.split_once('.') {
            None => {
                effective.insert(key.to_string(), value);
            }
            Some((group, leaf)) => {
                let entry = effective
                    .entry(group.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(leaf.to_string(), value);
                }
            }
        }
    }
    let local = chain
        .iter()
        .find(|(l, _)| *l == own)
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    Resolved {
        effective: Value::Object(effective),
        inheritance,
        local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> LocalConfig {
        serde_json::from_value(v).expect("valid config")
    }

    #[test]
    fn defaults_come_from_the_system() {
        let r = resolve(Level::Table, &[]);
        assert_eq!(
            r.effective,
            serde_json::to_value(system_defaults()).unwrap()
        );
        assert!(r.inheritance.values().all(|v| v == "system"));
        assert_eq!(r.inheritance.len(), 7);
        assert!(r.flag("enabled"));
        assert!(r.flag("auto_snapshot_triggers.drop_table"));
        assert!(!r.flag("auto_snapshot_triggers.drop_column"));
        assert_eq!(r.days("retention.manual_days"), Some(90));
        assert_eq!(r.days("retention.auto_days"), Some(7));
        assert_eq!(r.local, LocalConfig::default());
    }

    #[test]
    fn the_most_specific_level_wins_key_by_key() {
        let chain = vec![
            (Level::Table, parse(json!({"retention": {"auto_days": 3}}))),
            (
                Level::Project,
                parse(json!({"enabled": false, "retention": {"manual_days": 30, "auto_days": 14}})),
            ),
            (
                Level::Bucket,
                parse(
                    json!({"auto_snapshot_triggers": {"drop_column": true}, "retention": {"manual_days": 60}}),
                ),
            ),
        ];
        let r = resolve(Level::Table, &chain);
        assert!(!r.flag("enabled"));
        assert_eq!(r.inheritance["enabled"], "project");
        assert_eq!(r.days("retention.manual_days"), Some(60));
        assert_eq!(r.inheritance["retention.manual_days"], "bucket");
        assert_eq!(r.days("retention.auto_days"), Some(3));
        assert_eq!(r.inheritance["retention.auto_days"], "table");
        assert!(r.flag("auto_snapshot_triggers.drop_column"));
        assert_eq!(
            r.inheritance["auto_snapshot_triggers.drop_column"],
            "bucket"
        );
        assert_eq!(r.inheritance["auto_snapshot_triggers.drop_table"], "system");
        assert_eq!(r.local, parse(json!({"retention": {"auto_days": 3}})));

        // The bucket level does not see the table's config.
        let r = resolve(Level::Bucket, &chain);
        assert_eq!(r.days("retention.auto_days"), Some(14));
        assert_eq!(r.inheritance["retention.auto_days"], "project");
    }

    #[test]
    fn unknown_keys_are_refused() {
        for body in [
            json!({"enabeld": true}),
            json!({"retention": {"days": 3}}),
            json!({"auto_snapshot_triggers": {"drop_bucket": true}}),
        ] {
            assert!(serde_json::from_value::<LocalConfig>(body).is_err());
        }
    }

    #[test]
    fn retention_is_bounded() {
        for days in [0, -1, 3651] {
            let c = parse(json!({"retention": {"manual_days": days}}));
            let e = c.validate().expect_err("out of range");
            assert_eq!(e.code(), ErrorCode::InvalidConfig);
        }
        for days in [1, 3650] {
            parse(json!({"retention": {"auto_days": days}}))
                .validate()
                .expect("in range");
        }
    }
}
