-- Drop index "users_email_lower_key" from table: "users"
DROP INDEX "public"."users_email_lower_key";
-- Modify "users" table
ALTER TABLE "public"."users" ADD COLUMN "email_key" text NOT NULL GENERATED ALWAYS AS (lower((email COLLATE "C"))) STORED;
-- Create index "users_email_key_key" to table: "users"
CREATE UNIQUE INDEX "users_email_key_key" ON "public"."users" ("email_key");
