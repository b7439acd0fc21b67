ALTER TABLE "callback_inbox" ADD COLUMN "coalesce_key" text;--> statement-breakpoint
ALTER TABLE "callback_inbox" ADD COLUMN "repeats" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "callback_inbox" ADD COLUMN "last_received_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "callback_inbox_coalesce_uq" ON "callback_inbox" USING btree ("coalesce_key");
