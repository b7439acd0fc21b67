ALTER TABLE "payments" ADD COLUMN "last_answered_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "callback_inbox_retention_idx" ON "callback_inbox" USING btree ("processed_at") WHERE "callback_inbox"."verified" = false and "callback_inbox"."processed_at" is not null;
