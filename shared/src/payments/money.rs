//! Amounts of money in exact minor units (kopecks): parsing, formatting and refunded shares.

/// `"490"`, `"490.5"`, `"490.50"` → `"490.50"`-style two-decimal text; `None` unless a
/// positive amount with at most two decimals.
pub fn normalize_amount(text: &str) -> Option<String> {
    let minor = amount_minor_units(text)?;
    (minor > 0).then(|| format_amount(minor))
}

/// Minor units (kopecks) as two-decimal text: 49000 → `"490.00"`, 5 → `"0.05"`.
pub fn format_amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// How much of `granted` (tokens or days) a refund of `refunded` out of `amount` (both in
/// minor units) takes back in total: `ceil(granted × refunded / amount)`, rounded up so a
/// partial refund never leaves the payer more than was paid for, and never more than
/// `granted` (a figure above `amount` counts as `amount`). Exact integer arithmetic.
pub fn share_taken_back(granted: u32, refunded: u64, amount: u64) -> u32 {
    if amount == 0 {
        return 0;
    }
    let refunded = u128::from(refunded.min(amount));
    let amount = u128::from(amount);
    let share = (u128::from(granted) * refunded).div_ceil(amount);
    // share <= granted because refunded <= amount.
    u32::try_from(share).unwrap_or(granted)
}

/// An amount in minor units (kopecks): `"490.00"` → 49000; `None` if malformed.
pub fn amount_minor_units(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && (!digits(frac) || frac.len() > 2)) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(amount_minor_units("490.00"), Some(49_000));
        assert_eq!(amount_minor_units("0.5"), Some(50));
        assert_eq!(amount_minor_units("12"), Some(1200));
        for bad in ["", ".5", "1.", "1.2.3", "1e3", "-1", " 1 2", "1.234"] {
            assert_eq!(amount_minor_units(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_amount("0.00"), None);
        assert_eq!(normalize_amount("1490"), Some("1490.00".into()));
    }

    #[test]
    fn refunded_shares_are_rounded_up_exact_and_never_over_the_grant() {
        // The examples: 40 % of a 50-token pack (790.00) is 20 tokens; 100.00 of a 490.00
        // month is 6.12 days → 7, 200.00 → 12.24 → 13.
        assert_eq!(share_taken_back(50, 31_600, 79_000), 20);
        assert_eq!(share_taken_back(50, 79_000, 79_000), 50);
        assert_eq!(share_taken_back(30, 10_000, 49_000), 7);
        assert_eq!(share_taken_back(30, 20_000, 49_000), 13);
        assert_eq!(
            share_taken_back(10, 1, 19_000),
            1,
            "one kopeck takes one token"
        );
        assert_eq!(share_taken_back(10, 0, 19_000), 0);
        assert_eq!(
            share_taken_back(10, 50_000, 19_000),
            10,
            "capped at the grant"
        );
        assert_eq!(share_taken_back(10, 5, 0), 0, "no amount, nothing to share");
        // No overflow at the extremes.
        assert_eq!(
            share_taken_back(1_000_000, 999_999_999_999, 1_000_000_000_000),
            1_000_000
        );
        assert_eq!(share_taken_back(u32::MAX, u64::MAX, u64::MAX), u32::MAX);
        // Exhaustively on small figures: the smallest whole number covering the share,
        // growing with the refund, never above the grant.
        for amount in [1_u64, 7, 100, 19_000, 49_000, 79_000, 149_000] {
            for granted in [1_u32, 3, 10, 30, 50, 365] {
                let mut last = 0;
                let step = (amount / 97).max(1);
                let mut refunded = 0;
                while refunded <= amount {
                    let s = share_taken_back(granted, refunded, amount);
                    let (s128, exact) = (
                        u128::from(s) * u128::from(amount),
                        u128::from(granted) * u128::from(refunded),
                    );
                    assert!(s128 >= exact, "{granted} {refunded}/{amount}: {s}");
                    assert!(
                        s == 0 || s128 - u128::from(amount) < exact,
                        "{granted} {refunded}/{amount}: {s} is not the smallest"
                    );
                    assert!(s <= granted && s >= last);
                    last = s;
                    refunded += step;
                }
                assert_eq!(share_taken_back(granted, amount, amount), granted);
            }
        }
        // Kopecks are read exactly where floats would not be (0.29 * 100 = 28.999…).
        assert_eq!(amount_minor_units("0.29"), Some(29));
        assert_eq!(amount_minor_units("1.15"), Some(115));
        assert_eq!(amount_minor_units("316.00"), Some(31_600));
        assert_eq!(amount_minor_units("100.1"), Some(10_010));
        assert_eq!(format_amount(31_600), "316.00");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(0), "0.00");
    }
}
