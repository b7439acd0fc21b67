CREATE TABLE "payment_status_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"shop_id" text NOT NULL,
	"payment_id" uuid NOT NULL,
	"status" text NOT NULL,
	"snapshot" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "payment_status_events_shop_idx" ON "payment_status_events" USING btree ("shop_id","id");--> statement-breakpoint
CREATE INDEX "payment_status_events_payment_idx" ON "payment_status_events" USING btree ("payment_id","id");--> statement-breakpoint
CREATE INDEX "payment_status_events_created_idx" ON "payment_status_events" USING btree ("created_at");--> statement-breakpoint
-- Hand-written (drizzle does not model triggers): one event per visible change of a payment, in the
-- same transaction as the change, announced at commit. A trigger rather than application code, so
-- no path that changes a payment (callback, query, reconciler, release, review resolution, refund)
-- can forget it. Updates that change nothing visible (query counts, leases) fire nothing; a late
-- receipt does.
CREATE FUNCTION payment_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event_id bigint;
BEGIN
  INSERT INTO payment_status_events (shop_id, payment_id, status, snapshot, created_at)
  VALUES (NEW.shop_id, NEW.id, NEW.status, to_jsonb(NEW), clock_timestamp())
  RETURNING id INTO event_id;
  PERFORM pg_notify('payment_status', event_id::text || ' ' || NEW.shop_id || ' ' || NEW.id::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER payments_status_event_insert AFTER INSERT ON payments
  FOR EACH ROW EXECUTE FUNCTION payment_status_event();
--> statement-breakpoint
CREATE TRIGGER payments_status_event_update AFTER UPDATE ON payments
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
     OR OLD.status_reason IS DISTINCT FROM NEW.status_reason
     OR OLD.released_at IS DISTINCT FROM NEW.released_at
     OR OLD.resolution IS DISTINCT FROM NEW.resolution
     -- A receipt learned after completion (an STK query first, the callback with the receipt later:
     -- PaymentLifecycle.attachLateReceipt) changes what GET /payments/:id shows, not the status.
     OR OLD.mpesa_receipt_number IS DISTINCT FROM NEW.mpesa_receipt_number
     OR OLD.provider_receipt IS DISTINCT FROM NEW.provider_receipt
     OR OLD.provider_transaction_id IS DISTINCT FROM NEW.provider_transaction_id
     OR OLD.transaction_date IS DISTINCT FROM NEW.transaction_date)
  EXECUTE FUNCTION payment_status_event();
