-- Create index "events_tx_id_id_idx" to table: "events"
CREATE INDEX "events_tx_id_id_idx" ON "public"."events" ("tx_id", "id");
