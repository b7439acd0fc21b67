CREATE TABLE "mpesa_pull_registrations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"environment" text NOT NULL,
	"shortcode" text NOT NULL,
	"shop_id" text NOT NULL,
	"merchant_account_id" uuid,
	"outcome" text NOT NULL,
	"response_ref_id" text,
	"description" text NOT NULL,
	"registered_by" text NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mpesa_pull_registrations_outcome_valid" CHECK ("mpesa_pull_registrations"."outcome" in ('registered','already_registered'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "mpesa_pull_registrations_shortcode_uq" ON "mpesa_pull_registrations" USING btree ("environment","shortcode");