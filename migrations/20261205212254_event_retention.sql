-- Create "event_retention" table
CREATE TABLE "public"."event_retention" ("singleton" boolean NOT NULL DEFAULT true, "purged_tx_id" bigint NOT NULL, "purged_id" bigint NOT NULL, "purged_at" timestamptz NOT NULL, PRIMARY KEY ("singleton"), CONSTRAINT "event_retention_singleton" CHECK (singleton));
