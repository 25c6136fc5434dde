-- The retention of audit events (`AUDIT_RETENTION_DAYS`) deletes those older than a date, 10,000 a transaction. Found
-- through the oldest ids first, a run stopped at the first batch that held younger events: events dated ahead (a
-- database clock ahead for a while, then set right) at the front of the table left every older one in place (an
-- attack round: 10,000 of them and the run deleted nothing). A BRIN index of the dates finds the old events wherever
-- they sit, reading only the block ranges whose oldest event is old enough. The events are appended in date order, the
-- case BRIN is made for: a few pages of index for millions of rows, and an insert updates at most its range's summary.
-- `autosummarize` has autovacuum summarize each range as it fills; until then a range is read by every batch.
CREATE INDEX audit_event_created_brin ON audit_event USING brin (created_at) WITH (autosummarize = on);
