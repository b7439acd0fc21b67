CREATE TABLE "refunds" (
	"id" uuid PRIMARY KEY NOT NULL,
	"payment_id" uuid NOT NULL,
	"shop_id" text NOT NULL,
	"order_id" text NOT NULL,
	"provider" text NOT NULL,
	"merchant_account_id" uuid,
	"amount_minor" bigint NOT NULL,
	"currency" text NOT NULL,
	"status" text NOT NULL,
	"status_reason" text,
	"result_code" text,
	"result_desc" text,
	"reason" text NOT NULL,
	"source" text NOT NULL,
	"requested_by" text NOT NULL,
	"idempotency_key" text,
	"provider_refund_id" text,
	"provider_data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"submissions" integer DEFAULT 0 NOT NULL,
	"reconcile_attempts" integer DEFAULT 0 NOT NULL,
	"next_check_at" timestamp with time zone,
	"claimed_until" timestamp with time zone,
	"claimed_by" uuid,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "refunds_amount_positive" CHECK ("refunds"."amount_minor" > 0),
	CONSTRAINT "refunds_status_valid" CHECK ("refunds"."status" in ('requested','pending','unknown','succeeded','failed','review')),
	CONSTRAINT "refunds_source_valid" CHECK ("refunds"."source" in ('request','review','provider'))
);
--> statement-breakpoint
ALTER TABLE "callback_inbox" ADD COLUMN "kind" text;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "refund_id" uuid;--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "resolution" text;--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "resolution_note" text;--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "resolved_by" text;--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "resolved_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "refunds_payment_idx" ON "refunds" USING btree ("payment_id","created_at");--> statement-breakpoint
CREATE INDEX "refunds_order_idx" ON "refunds" USING btree ("shop_id","order_id");--> statement-breakpoint
CREATE UNIQUE INDEX "refunds_provider_refund_uq" ON "refunds" USING btree ("provider","provider_refund_id");--> statement-breakpoint
CREATE INDEX "refunds_open_idx" ON "refunds" USING btree ("next_check_at") WHERE "refunds"."status" in ('requested','pending','unknown');--> statement-breakpoint
ALTER TABLE "payments" ADD CONSTRAINT "payments_resolution_valid" CHECK ("payments"."resolution" is null or "payments"."resolution" in ('refunded','accepted','released'));