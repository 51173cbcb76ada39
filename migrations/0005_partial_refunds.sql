-- Partial refunds: the cumulative amount refunded (in minor units, kopecks for RUB) whose
-- share of the grant has been taken back. It only grows, through one conditional update
-- (`... WHERE refunded_kopecks < ?new`), so each refund is taken back exactly once.

ALTER TABLE payments ADD COLUMN refunded_kopecks INTEGER NOT NULL DEFAULT 0
    CHECK (refunded_kopecks >= 0);

-- Payments refunded before this migration were refunded in full. Amounts are stored with
-- exactly two decimals ("490.00"), so dropping the point gives the kopecks exactly.
UPDATE payments SET refunded_kopecks = CAST(REPLACE(amount, '.', '') AS INTEGER)
    WHERE refunded_at IS NOT NULL;
