-- A heartbeat alone says a worker's process is alive, not that it delivers: one whose claim hung on
-- a lost connection went on touching its row every few seconds and was reported healthy for minutes.
-- Each heartbeat now also carries when the worker last claimed or recorded (its progress), so /health
-- and /stats can tell a stalled worker (due work waiting, no progress) from a working one.
ALTER TABLE worker_heartbeats ADD COLUMN progress_at timestamptz NOT NULL DEFAULT now();
