-- Create enum type "user_status"
CREATE TYPE "public"."user_status" AS ENUM ('active', 'disabled');
-- Create enum type "token_kind"
CREATE TYPE "public"."token_kind" AS ENUM ('session', 'refresh', 'api_key', 'email_verification', 'password_reset');
-- Create "users" table
CREATE TABLE "public"."users" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "email" text NOT NULL, "display_name" text NOT NULL, "password_hash" text NULL, "status" "public"."user_status" NOT NULL DEFAULT 'active', "version" integer NOT NULL DEFAULT 1, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "users_display_name_length" CHECK ((char_length(display_name) >= 1) AND (char_length(display_name) <= 200)), CONSTRAINT "users_email_length" CHECK ((char_length(email) >= 3) AND (char_length(email) <= 320)), CONSTRAINT "users_updated_after_created" CHECK (updated_at >= created_at), CONSTRAINT "users_version_positive" CHECK (version > 0));
-- Create index "users_created_at_id_idx" to table: "users"
CREATE INDEX "users_created_at_id_idx" ON "public"."users" ("created_at", "id");
-- Create index "users_email_lower_key" to table: "users"
CREATE UNIQUE INDEX "users_email_lower_key" ON "public"."users" ((lower(email)));
-- Create "tokens" table
CREATE TABLE "public"."tokens" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "kind" "public"."token_kind" NOT NULL, "token_hash" bytea NOT NULL, "scopes" text[] NOT NULL DEFAULT '{}', "created_at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "last_used_at" timestamptz NULL, "revoked_at" timestamptz NULL, PRIMARY KEY ("id"), CONSTRAINT "tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "public"."users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "tokens_expires_after_created" CHECK (expires_at > created_at), CONSTRAINT "tokens_token_hash_sha256" CHECK (octet_length(token_hash) = 32));
-- Create index "tokens_expires_at_idx" to table: "tokens"
CREATE INDEX "tokens_expires_at_idx" ON "public"."tokens" ("expires_at");
-- Create index "tokens_token_hash_key" to table: "tokens"
CREATE UNIQUE INDEX "tokens_token_hash_key" ON "public"."tokens" ("token_hash");
-- Create index "tokens_user_id_live_idx" to table: "tokens"
CREATE INDEX "tokens_user_id_live_idx" ON "public"."tokens" ("user_id", "expires_at") WHERE (revoked_at IS NULL);
-- Create "events" table
CREATE TABLE "public"."events" ("id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY, "event_key" uuid NOT NULL, "user_id" uuid NULL, "type" text NOT NULL, "payload" jsonb NOT NULL DEFAULT '{}', "occurred_at" timestamptz NOT NULL, "recorded_at" timestamptz NOT NULL, "tx_id" bigint NOT NULL DEFAULT ((pg_current_xact_id())::text)::bigint, PRIMARY KEY ("id"), CONSTRAINT "events_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "public"."users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "events_type_format" CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'::text));
-- Create index "events_event_key_key" to table: "events"
CREATE UNIQUE INDEX "events_event_key_key" ON "public"."events" ("event_key");
-- Create index "events_type_id_idx" to table: "events"
CREATE INDEX "events_type_id_idx" ON "public"."events" ("type", "id");
-- Create index "events_user_id_id_idx" to table: "events"
CREATE INDEX "events_user_id_id_idx" ON "public"."events" ("user_id", "id");
