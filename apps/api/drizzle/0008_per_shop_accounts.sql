CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"shop_id" text NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target" text NOT NULL,
	"data" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "merchant_accounts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"shop_id" text NOT NULL,
	"provider" text NOT NULL,
	"environment" text NOT NULL,
	"settings" jsonb NOT NULL,
	"credentials_shop_id" text,
	"secrets" text,
	"key_id" text,
	"fingerprints" jsonb NOT NULL,
	"verification" jsonb,
	"verified_at" timestamp with time zone,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp with time zone,
	CONSTRAINT "merchant_accounts_provider_valid" CHECK ("merchant_accounts"."provider" in ('mpesa','flutterwave','pesapal')),
	CONSTRAINT "merchant_accounts_secrets_or_link" CHECK (("merchant_accounts"."secrets" is not null and "merchant_accounts"."key_id" is not null and "merchant_accounts"."credentials_shop_id" is null) or ("merchant_accounts"."secrets" is null and "merchant_accounts"."key_id" is null and "merchant_accounts"."credentials_shop_id" is not null))
);
--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "merchant_account_id" uuid;--> statement-breakpoint
CREATE INDEX "audit_events_shop_idx" ON "audit_events" USING btree ("shop_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "merchant_accounts_one_active_uq" ON "merchant_accounts" USING btree ("shop_id","provider") WHERE "merchant_accounts"."retired_at" is null;--> statement-breakpoint
CREATE INDEX "merchant_accounts_key_idx" ON "merchant_accounts" USING btree ("key_id");--> statement-breakpoint
CREATE INDEX "merchant_accounts_link_idx" ON "merchant_accounts" USING btree ("credentials_shop_id","provider") WHERE "merchant_accounts"."credentials_shop_id" is not null and "merchant_accounts"."retired_at" is null;