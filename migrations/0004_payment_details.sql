-- Payments (issue 5, second part): YooKassa's id for the payment, where the payer is sent,
-- what the plan grants (copied at creation, so a later change of the plans file does not
-- change what a credit or a refund does) and why a creation failed.

ALTER TABLE payments ADD COLUMN provider_payment_id TEXT;
ALTER TABLE payments ADD COLUMN confirmation_url TEXT;
ALTER TABLE payments ADD COLUMN grant_tier TEXT CHECK (grant_tier IS NULL OR grant_tier IN ('pro', 'studio'));
ALTER TABLE payments ADD COLUMN grant_days INTEGER CHECK (grant_days IS NULL OR grant_days > 0);
ALTER TABLE payments ADD COLUMN grant_tokens INTEGER CHECK (grant_tokens IS NULL OR grant_tokens > 0);
ALTER TABLE payments ADD COLUMN error TEXT;

CREATE UNIQUE INDEX payments_provider ON payments (provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;
