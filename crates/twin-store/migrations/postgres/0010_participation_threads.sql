-- A consultation's threads and their replies, in order: a page of threads merges one index range per parent
-- (`participation_list` with `parents` and a limit), and counting them reads the index only.
CREATE INDEX participation_records_thread ON participation_records (kind, consultation, parent, created_us, id);
DROP INDEX participation_records_parent;
