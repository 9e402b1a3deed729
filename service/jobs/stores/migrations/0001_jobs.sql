-- Job records and their event log, loss series and cancel requests: the tables of the SQLite
-- store. Text columns that are compared or ordered use the "C" collation, so that they sort
-- byte by byte as in SQLite (ISO times in finished_at compare as times).
CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    status text COLLATE "C" NOT NULL,
    owner text COLLATE "C",
    finished_at text COLLATE "C",
    -- The record as the service wrote it (JSON text, not jsonb: it reads back byte for byte,
    -- key order included, and a damaged one can be left out of listings like in SQLite).
    record text NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE INDEX jobs_by_owner ON jobs (owner, status);

CREATE TABLE job_events (
    job_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    event text NOT NULL,
    data text NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_cancels (job_id text COLLATE "C" PRIMARY KEY);

CREATE TABLE job_loss_points (
    job_id text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    point text NOT NULL,
    PRIMARY KEY (job_id, n)
);
