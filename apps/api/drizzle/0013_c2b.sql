CREATE TABLE "c2b_registrations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"merchant_account_id" uuid NOT NULL,
	"shop_id" text NOT NULL,
	"environment" text NOT NULL,
	"shortcode" text NOT NULL,
	"api_version" text NOT NULL,
	"response_type" text NOT NULL,
	"validation" boolean NOT NULL,
	"confirmation_url" text NOT NULL,
	"validation_url" text,
	"response" jsonb NOT NULL,
	"forced" boolean DEFAULT false NOT NULL,
	"registered_by" text NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "c2b_transactions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"merchant_account_id" uuid NOT NULL,
	"shop_id" text NOT NULL,
	"trans_id" text,
	"transaction_type" text,
	"trans_time" text,
	"amount_minor" bigint,
	"currency" text DEFAULT 'KES' NOT NULL,
	"business_shortcode" text,
	"bill_ref_number" text,
	"invoice_number" text,
	"third_party_trans_id" text,
	"msisdn_form" text NOT NULL,
	"phone_hash" text,
	"msisdn_sha256" text,
	"phone_masked" text,
	"customer_name" text,
	"status" text NOT NULL,
	"status_reason" text,
	"payment_id" uuid,
	"order_id" text,
	"claimed_by" text,
	"claimed_at" timestamp with time zone,
	"deliveries" integer DEFAULT 1 NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "c2b_transactions_status_valid" CHECK ("c2b_transactions"."status" in ('received','invalid','unclaimed','applied','review','stk_twin')),
	CONSTRAINT "c2b_transactions_amount_positive" CHECK ("c2b_transactions"."amount_minor" is null or "c2b_transactions"."amount_minor" > 0)
);
--> statement-breakpoint
CREATE INDEX "c2b_registrations_account_idx" ON "c2b_registrations" USING btree ("merchant_account_id","registered_at");--> statement-breakpoint
CREATE UNIQUE INDEX "c2b_transactions_account_trans_uq" ON "c2b_transactions" USING btree ("merchant_account_id","trans_id");--> statement-breakpoint
CREATE INDEX "c2b_transactions_feed_idx" ON "c2b_transactions" USING btree ("shop_id","received_at") WHERE "c2b_transactions"."status" = 'unclaimed';--> statement-breakpoint
CREATE INDEX "c2b_transactions_shop_trans_idx" ON "c2b_transactions" USING btree ("shop_id","trans_id");