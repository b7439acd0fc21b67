-- Issue 8, "Money".
-- (3) M-Pesa receipts are compared upper-case, trimmed. Rows whose receipts differ only by case (or
--     blanks) are one M-Pesa transaction counted more than once: the earliest payment keeps the
--     receipt; every later one goes to review (DUPLICATE_RECEIPT) without it, and the audit log
--     keeps the receipt it had and the status it left. First the audit events...
INSERT INTO "payment_events" ("payment_id", "type", "from_status", "to_status", "actor", "data")
SELECT d.id, 'integrity_failure', d.status, 'review', 'system:migration-0004',
       jsonb_build_object('problem', 'DUPLICATE_RECEIPT', 'receipt', d.mpesa_receipt_number, 'normalisedReceipt', d.norm,
                          'receiptKeptBy', d.keeper::text, 'previousStatusReason', d.status_reason, 'previousCompletedAt', d.completed_at,
                          'note', 'receipts are compared upper-case since migration 0004; this payment repeated a receipt another payment already had')
FROM (
  SELECT id, status, status_reason, completed_at, mpesa_receipt_number, upper(btrim(mpesa_receipt_number)) AS norm,
         first_value(id) OVER w AS keeper, row_number() OVER w AS rn
  FROM "payments" WHERE mpesa_receipt_number IS NOT NULL
  WINDOW w AS (PARTITION BY upper(btrim(mpesa_receipt_number)) ORDER BY created_at, id)
) d
WHERE d.rn > 1;
--> statement-breakpoint
-- ...then the rows (same selection: nothing changed in between).
UPDATE "payments" p
SET status = 'review', status_reason = 'DUPLICATE_RECEIPT', mpesa_receipt_number = NULL, completed_at = NULL, updated_at = now(),
    result_desc = left('Receipt ' || d.mpesa_receipt_number || ' is receipt ' || d.norm || ' of payment ' || d.keeper::text || ' (compared upper-case)', 500)
FROM (
  SELECT id, mpesa_receipt_number, upper(btrim(mpesa_receipt_number)) AS norm,
         first_value(id) OVER w AS keeper, row_number() OVER w AS rn
  FROM "payments" WHERE mpesa_receipt_number IS NOT NULL
  WINDOW w AS (PARTITION BY upper(btrim(mpesa_receipt_number)) ORDER BY created_at, id)
) d
WHERE p.id = d.id AND d.rn > 1;
--> statement-breakpoint
-- An order that was marked paid on the strength of such a repeat is not covered any more.
UPDATE "orders" o SET paid_at = NULL
WHERE o.paid_at IS NOT NULL
  AND o.total_minor > (SELECT coalesce(sum(p.amount_minor), 0) FROM "payments" p WHERE p.shop_id = o.shop_id AND p.order_id = o.id AND p.status = 'completed');
--> statement-breakpoint
UPDATE "payments" SET mpesa_receipt_number = upper(btrim(mpesa_receipt_number))
WHERE mpesa_receipt_number IS NOT NULL AND mpesa_receipt_number <> upper(btrim(mpesa_receipt_number));
--> statement-breakpoint
-- The unique index payments_mpesa_receipt_uq now holds normalised values only, and stays so.
ALTER TABLE "payments" ADD CONSTRAINT "payments_mpesa_receipt_normalised" CHECK ("mpesa_receipt_number" = upper(btrim("mpesa_receipt_number")));
