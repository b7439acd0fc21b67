CREATE TABLE "callback_inbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"url_payment_id" text,
	"verified" boolean NOT NULL,
	"checkout_request_id" text,
	"source_ip" text,
	"raw_body" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone,
	"outcome" text
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"shop_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"payment_id" uuid,
	"response_status" integer,
	"response_body" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_shop_id_key_pk" PRIMARY KEY("shop_id","key")
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"shop_id" text NOT NULL,
	"id" text NOT NULL,
	"total_minor" bigint NOT NULL,
	"currency" text DEFAULT 'KES' NOT NULL,
	"paid_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "orders_shop_id_id_pk" PRIMARY KEY("shop_id","id"),
	CONSTRAINT "orders_total_positive" CHECK ("orders"."total_minor" > 0)
);
--> statement-breakpoint
CREATE TABLE "payment_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"payment_id" uuid,
	"type" text NOT NULL,
	"from_status" text,
	"to_status" text,
	"actor" text NOT NULL,
	"data" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"shop_id" text NOT NULL,
	"order_id" text NOT NULL,
	"amount_minor" bigint NOT NULL,
	"currency" text NOT NULL,
	"provider" text NOT NULL,
	"status" text NOT NULL,
	"status_reason" text,
	"result_code" text,
	"result_desc" text,
	"idempotency_key" text,
	"created_by" text NOT NULL,
	"phone_masked" text,
	"phone_hash" text,
	"account_reference" text,
	"transaction_desc" text,
	"merchant_request_id" text,
	"checkout_request_id" text,
	"mpesa_receipt_number" text,
	"transaction_date" text,
	"query_count" integer DEFAULT 0 NOT NULL,
	"last_queried_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payments_amount_positive" CHECK ("payments"."amount_minor" > 0),
	CONSTRAINT "payments_status_valid" CHECK ("payments"."status" in ('initiated','pending','unresolved','completed','failed','cancelled','expired','review'))
);
--> statement-breakpoint
CREATE INDEX "callback_inbox_unprocessed_idx" ON "callback_inbox" USING btree ("received_at") WHERE "callback_inbox"."processed_at" is null;--> statement-breakpoint
CREATE INDEX "callback_inbox_checkout_idx" ON "callback_inbox" USING btree ("checkout_request_id");--> statement-breakpoint
CREATE INDEX "payment_events_payment_idx" ON "payment_events" USING btree ("payment_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_checkout_request_id_uq" ON "payments" USING btree ("checkout_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_mpesa_receipt_uq" ON "payments" USING btree ("mpesa_receipt_number");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_one_in_flight_per_order_uq" ON "payments" USING btree ("shop_id","order_id") WHERE "payments"."status" in ('initiated','pending','unresolved');--> statement-breakpoint
CREATE INDEX "payments_shop_order_idx" ON "payments" USING btree ("shop_id","order_id");--> statement-breakpoint
CREATE INDEX "payments_open_idx" ON "payments" USING btree ("status","created_at") WHERE "payments"."status" in ('initiated','pending','unresolved');