//! The plans on sale and what each grants.

use crate::accounts::Tier;
use crate::payments::money::normalize_amount;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A plan on sale, as served by `GET /api/payments/plans` and read from
/// `MAGIC_MASTER_PAYMENT_PLANS_FILE` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Stable id used by `POST /api/payments/create` (`[a-z0-9_-]`, 1–64 characters).
    pub id: String,
    /// Display name (English).
    pub name: String,
    /// Display name (Russian); the English one when empty.
    #[serde(default)]
    pub name_ru: String,
    /// One-line description (English).
    #[serde(default)]
    pub description: String,
    /// One-line description (Russian); the English one when empty.
    #[serde(default)]
    pub description_ru: String,
    /// Price with two decimals, e.g. `"490.00"` (normalised on load).
    pub price: String,
    /// ISO 4217 currency code, e.g. `RUB`; the same for every plan.
    pub currency: String,
    /// Tier granted (`pro` or `studio`), with `duration_days`; `null` for a token pack.
    #[serde(default)]
    pub tier: Option<String>,
    /// Days of the tier granted.
    #[serde(default)]
    pub duration_days: Option<u32>,
    /// Tokens granted (one master each); `null` for a tier plan.
    #[serde(default)]
    pub tokens: Option<u32>,
    /// Feature list (English).
    #[serde(default)]
    pub features: Vec<String>,
    /// Feature list (Russian); the English one when empty.
    #[serde(default)]
    pub features_ru: Vec<String>,
}

/// What a paid plan gives the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The tier for this many days, added after the current paid period.
    Tier {
        /// `Pro` or `Studio`.
        tier: Tier,
        /// Days added.
        days: u32,
    },
    /// Tokens added to the balance.
    Tokens(u32),
}

impl Plan {
    /// What the plan grants (plans are validated on load, so this is always set).
    pub fn grant(&self) -> Option<Grant> {
        match (self.tier.as_deref(), self.duration_days, self.tokens) {
            (Some(tier), Some(days), None) => Some(Grant::Tier {
                tier: Tier::parse(tier)?,
                days,
            }),
            (None, None, Some(tokens)) => Some(Grant::Tokens(tokens)),
            _ => None,
        }
    }
}

/// The validated list of plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    plans: Vec<Plan>,
}

fn plan(
    id: &str,
    (name, name_ru): (&str, &str),
    (description, description_ru): (&str, &str),
    price: &str,
    grant: Grant,
    features: &[&str],
    features_ru: &[&str],
) -> Plan {
    let (tier, duration_days, tokens) = match grant {
        Grant::Tier { tier, days } => (Some(tier.as_str().to_owned()), Some(days), None),
        Grant::Tokens(n) => (None, None, Some(n)),
    };
    Plan {
        id: id.to_owned(),
        name: name.to_owned(),
        name_ru: name_ru.to_owned(),
        description: description.to_owned(),
        description_ru: description_ru.to_owned(),
        price: price.to_owned(),
        currency: "RUB".to_owned(),
        tier,
        duration_days,
        tokens,
        features: features.iter().map(|s| (*s).to_owned()).collect(),
        features_ru: features_ru.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl Plans {
    /// The built-in plans: `pro_month`, `studio_month`, `tokens_10`, `tokens_50`.
    pub fn builtin() -> Plans {
        let pro = Grant::Tier {
            tier: Tier::Pro,
            days: 30,
        };
        let studio = Grant::Tier {
            tier: Tier::Studio,
            days: 30,
        };
        Plans {
            plans: vec![
                plan(
                    "pro_month",
                    ("Pro", "Pro"),
                    (
                        "For regular releases: 50 masters a day for 30 days.",
                        "Для регулярных релизов: 50 мастеров в день на 30 дней.",
                    ),
                    "490.00",
                    pro,
                    &[
                        "50 masters a day",
                        "WAV 16/24-bit, FLAC and MP3",
                        "Every style and loudness target",
                    ],
                    &[
                        "50 мастеров в день",
                        "WAV 16/24 бит, FLAC и MP3",
                        "Все стили и цели громкости",
                    ],
                ),
                plan(
                    "studio_month",
                    ("Studio", "Studio"),
                    (
                        "For studios and labels: 500 masters a day for 30 days.",
                        "Для студий и лейблов: 500 мастеров в день на 30 дней.",
                    ),
                    "1490.00",
                    studio,
                    &[
                        "500 masters a day",
                        "WAV 16/24-bit, FLAC and MP3",
                        "Every style and loudness target",
                    ],
                    &[
                        "500 мастеров в день",
                        "WAV 16/24 бит, FLAC и MP3",
                        "Все стили и цели громкости",
                    ],
                ),
                plan(
                    "tokens_10",
                    ("10 tokens", "10 токенов"),
                    (
                        "10 extra masters, used after the daily allowance; they do not expire.",
                        "10 дополнительных мастеров сверх дневного лимита, без срока действия.",
                    ),
                    "190.00",
                    Grant::Tokens(10),
                    &["10 masters beyond the daily allowance", "No expiry"],
                    &["10 мастеров сверх дневного лимита", "Без срока действия"],
                ),
                plan(
                    "tokens_50",
                    ("50 tokens", "50 токенов"),
                    (
                        "50 extra masters, used after the daily allowance; they do not expire.",
                        "50 дополнительных мастеров сверх дневного лимита, без срока действия.",
                    ),
                    "790.00",
                    Grant::Tokens(50),
                    &["50 masters beyond the daily allowance", "No expiry"],
                    &["50 мастеров сверх дневного лимита", "Без срока действия"],
                ),
            ],
        }
    }

    /// Reads and validates a plans file (a JSON array of [`Plan`]).
    pub fn from_file(path: &Path) -> Result<Plans, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Plans::from_json(&text)
    }

    /// Parses and validates a JSON array of plans.
    pub fn from_json(text: &str) -> Result<Plans, String> {
        let plans: Vec<Plan> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of plans: {e}"))?;
        Plans::new(plans)
    }

    /// Validates plans: unique well-formed ids, positive prices, one currency, and each plan
    /// either a paid tier with a number of days or a number of tokens.
    pub fn new(mut plans: Vec<Plan>) -> Result<Plans, String> {
        if plans.is_empty() {
            return Err("there must be at least one plan".to_owned());
        }
        let currency = plans[0].currency.clone();
        let mut seen = std::collections::HashSet::new();
        for p in &mut plans {
            let id = p.id.clone();
            let valid_id = (1..=64).contains(&id.len())
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_id {
                return Err(format!(
                    "plan id {id:?}: use 1-64 characters of a-z, 0-9, _ and -"
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(format!("plan id {id:?} appears twice"));
            }
            if p.name.trim().is_empty() {
                return Err(format!("plan {id:?}: name is empty"));
            }
            p.price = normalize_amount(&p.price).ok_or_else(|| {
                format!(
                    "plan {id:?}: price {:?} is not an amount like \"490.00\" above zero",
                    p.price
                )
            })?;
            if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "plan {id:?}: currency {:?} is not a code like \"RUB\"",
                    p.currency
                ));
            }
            if p.currency != currency {
                return Err(format!(
                    "plan {id:?}: every plan must use one currency ({currency}), not {}",
                    p.currency
                ));
            }
            match (p.tier.as_deref(), p.duration_days, p.tokens) {
                (Some(t), Some(days), None) => {
                    match Tier::parse(t) {
                        Some(Tier::Pro | Tier::Studio) => {}
                        _ => {
                            return Err(format!(
                                "plan {id:?}: tier {t:?} is not \"pro\" or \"studio\""
                            ));
                        }
                    }
                    if days == 0 || days > 3660 {
                        return Err(format!("plan {id:?}: duration_days must be 1 to 3660"));
                    }
                    p.tier = Tier::parse(t).map(|t| t.as_str().to_owned());
                }
                (None, None, Some(tokens)) => {
                    if tokens == 0 || tokens > 1_000_000 {
                        return Err(format!("plan {id:?}: tokens must be 1 to 1000000"));
                    }
                }
                _ => {
                    return Err(format!(
                        "plan {id:?}: set either tier and duration_days, or tokens (not both)"
                    ));
                }
            }
            if p.name_ru.trim().is_empty() {
                p.name_ru = p.name.clone();
            }
            if p.description_ru.trim().is_empty() {
                p.description_ru = p.description.clone();
            }
            if p.features_ru.is_empty() {
                p.features_ru = p.features.clone();
            }
        }
        Ok(Plans { plans })
    }

    /// Every plan, in order.
    pub fn all(&self) -> &[Plan] {
        &self.plans
    }

    /// The plan with this id.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The currency of every plan.
    pub fn currency(&self) -> &str {
        &self.plans[0].currency
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plans_are_valid_and_match_the_contract() {
        let plans = Plans::builtin();
        assert_eq!(Plans::new(plans.all().to_vec()).unwrap(), plans);
        let ids: Vec<&str> = plans.all().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["pro_month", "studio_month", "tokens_10", "tokens_50"]);
        assert_eq!(plans.currency(), "RUB");
        let pro = plans.get("pro_month").unwrap();
        assert_eq!(pro.price, "490.00");
        assert_eq!(
            pro.grant(),
            Some(Grant::Tier {
                tier: Tier::Pro,
                days: 30
            })
        );
        assert_eq!(plans.get("studio_month").unwrap().price, "1490.00");
        assert_eq!(
            plans.get("tokens_10").unwrap().grant(),
            Some(Grant::Tokens(10))
        );
        assert_eq!(plans.get("tokens_50").unwrap().price, "790.00");
        assert!(plans.get("nope").is_none());
        // The response shape: null where a field does not apply.
        let json = serde_json::to_value(plans.get("tokens_10").unwrap()).unwrap();
        assert!(json["tier"].is_null() && json["duration_days"].is_null());
        assert_eq!(json["tokens"], 10);
    }

    #[test]
    fn plan_files_are_validated_with_a_reason() {
        let ok = r#"[{"id":"x1","name":"X","price":"99.5","currency":"RUB","tokens":3}]"#;
        let plans = Plans::from_json(ok).unwrap();
        let p = plans.get("x1").unwrap();
        assert_eq!(p.price, "99.50");
        assert_eq!(p.name_ru, "X", "Russian name falls back to English");
        for (bad, expect) in [
            ("{}", "not a JSON array"),
            ("[]", "at least one plan"),
            (
                r#"[{"id":"A","name":"X","price":"1","currency":"RUB","tokens":1}]"#,
                "plan id",
            ),
            (
                r#"[{"id":"a","name":"X","price":"0","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1.234","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"-1","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"rub","tokens":1}]"#,
                "currency",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB"}]"#,
                "either tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1,"tier":"pro","duration_days":3}]"#,
                "either tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tier":"free","duration_days":3}]"#,
                "tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tier":"pro","duration_days":0}]"#,
                "duration_days",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":0}]"#,
                "tokens",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","token":1}]"#,
                "unknown field",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1},{"id":"a","name":"Y","price":"1","currency":"RUB","tokens":1}]"#,
                "twice",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1},{"id":"b","name":"Y","price":"1","currency":"USD","tokens":1}]"#,
                "one currency",
            ),
        ] {
            let err = Plans::from_json(bad).unwrap_err();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }
}
