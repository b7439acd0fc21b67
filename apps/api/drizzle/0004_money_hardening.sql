-- Issue 8, "Money".
-- (2) A payment whose outcome is unknown (review/OUTCOME_UNKNOWN) keeps its order blocked until it
--     is settled or a manager releases it: released_at records the release.
ALTER TABLE "payments" ADD COLUMN "released_at" timestamp with time zone;
--> statement-breakpoint
-- (3) M-Pesa receipts are compared upper-case, trimmed of blanks: spaces, tabs, newlines (\t \n \v \f \r,
--     exactly what normaliseMpesaReceipt strips; btrim strips spaces only). Rows whose receipts differ
--     only by case (or blanks) are one M-Pesa transaction counted more than once: the payment that
--     recorded the receipt first (completed_at, then created_at, then id; a review row without
--     completed_at after every completed one) keeps it; every other one goes to review
--     (DUPLICATE_RECEIPT) without it, and the audit log keeps the receipt it had and the status it
--     left. First the audit events...
INSERT INTO "payment_events" ("payment_id", "type", "from_status", "to_status", "actor", "data")
SELECT d.id, 'integrity_failure', d.status, 'review', 'system:migration-0004',
       jsonb_build_object('problem', 'DUPLICATE_RECEIPT', 'receipt', d.mpesa_receipt_number, 'normalisedReceipt', d.norm,
                          'receiptKeptBy', d.keeper::text, 'previousStatusReason', d.status_reason, 'previousCompletedAt', d.completed_at,
                          'note', 'receipts are compared upper-case since migration 0004; this payment repeated a receipt another payment already had')
FROM (
  SELECT id, status, status_reason, completed_at, mpesa_receipt_number, upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g')) AS norm,
         first_value(id) OVER w AS keeper, row_number() OVER w AS rn
  FROM "payments" WHERE mpesa_receipt_number IS NOT NULL
  WINDOW w AS (PARTITION BY upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g')) ORDER BY completed_at ASC NULLS LAST, created_at, id)
) d
WHERE d.rn > 1;
--> statement-breakpoint
-- ...then the rows (same selection: nothing changed in between).
UPDATE "payments" p
SET status = 'review', status_reason = 'DUPLICATE_RECEIPT', mpesa_receipt_number = NULL, completed_at = NULL, updated_at = now(),
    result_desc = left('Receipt ' || d.mpesa_receipt_number || ' is receipt ' || d.norm || ' of payment ' || d.keeper::text || ' (compared upper-case)', 500)
FROM (
  SELECT id, mpesa_receipt_number, upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g')) AS norm,
         first_value(id) OVER w AS keeper, row_number() OVER w AS rn
  FROM "payments" WHERE mpesa_receipt_number IS NOT NULL
  WINDOW w AS (PARTITION BY upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g')) ORDER BY completed_at ASC NULLS LAST, created_at, id)
) d
WHERE p.id = d.id AND d.rn > 1;
--> statement-breakpoint
-- An order that was marked paid on the strength of such a repeat is not covered any more.
UPDATE "orders" o SET paid_at = NULL
WHERE o.paid_at IS NOT NULL
  AND o.total_minor > (SELECT coalesce(sum(p.amount_minor), 0) FROM "payments" p WHERE p.shop_id = o.shop_id AND p.order_id = o.id AND p.status = 'completed');
--> statement-breakpoint
UPDATE "payments" SET mpesa_receipt_number = upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g'))
WHERE mpesa_receipt_number IS NOT NULL AND mpesa_receipt_number <> upper(regexp_replace(mpesa_receipt_number, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g'));
--> statement-breakpoint
-- The unique index payments_mpesa_receipt_uq now holds normalised values only, and stays so.
ALTER TABLE "payments" ADD CONSTRAINT "payments_mpesa_receipt_normalised" CHECK ("mpesa_receipt_number" = upper(regexp_replace("mpesa_receipt_number", '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g')));
--> statement-breakpoint
-- (2) One blocking payment per order. Until now an OUTCOME_UNKNOWN payment freed its order, so an
--     order may already hold several of them, or one and an open payment: the open one (else the
--     newest unknown one) keeps blocking, the others are released, and the audit log says so.
INSERT INTO "payment_events" ("payment_id", "type", "from_status", "to_status", "actor", "data")
SELECT r.id, 'order_released', r.status, r.status, 'system:migration-0004',
       jsonb_build_object('reason', 'released by migration 0004: another payment of the order already blocks it', 'orderId', r.order_id)
FROM (
  SELECT id, status, order_id,
         row_number() OVER (PARTITION BY shop_id, order_id ORDER BY CASE WHEN status IN ('initiated','pending','unresolved') THEN 0 ELSE 1 END, created_at DESC, id DESC) AS rn
  FROM "payments"
  WHERE status IN ('initiated','pending','unresolved') OR (status = 'review' AND status_reason = 'OUTCOME_UNKNOWN')
) r
WHERE r.rn > 1;
--> statement-breakpoint
UPDATE "payments" p SET released_at = now()
FROM (
  SELECT id,
         row_number() OVER (PARTITION BY shop_id, order_id ORDER BY CASE WHEN status IN ('initiated','pending','unresolved') THEN 0 ELSE 1 END, created_at DESC, id DESC) AS rn
  FROM "payments"
  WHERE status IN ('initiated','pending','unresolved') OR (status = 'review' AND status_reason = 'OUTCOME_UNKNOWN')
) r
WHERE p.id = r.id AND r.rn > 1;
--> statement-breakpoint
DROP INDEX "payments_one_in_flight_per_order_uq";
--> statement-breakpoint
CREATE UNIQUE INDEX "payments_one_in_flight_per_order_uq" ON "payments" USING btree ("shop_id","order_id")
WHERE "payments"."status" in ('initiated','pending','unresolved') or ("payments"."status" = 'review' and "payments"."status_reason" = 'OUTCOME_UNKNOWN' and "payments"."released_at" is null);
