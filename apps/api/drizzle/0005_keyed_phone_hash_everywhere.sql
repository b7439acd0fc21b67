-- Pesapal payments stored a plain SHA-256 of the customer's phone number, which anyone with the
-- table can reverse by hashing the ~2·10⁸ Kenyan mobile numbers. It cannot be turned into the keyed
-- hash (HMAC) without the number, and the number is not stored: clear it. phone_masked (2547******78)
-- stays for people; only M-Pesa rows ever had the keyed hash, so they keep theirs.
UPDATE "payments" SET "phone_hash" = NULL WHERE "provider" <> 'mpesa' AND "phone_hash" IS NOT NULL;
