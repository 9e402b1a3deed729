-- Trained models in the database, so that every replica can serve the model of a job that
-- another one trained (each keeps a local copy in its cache folder to load).
CREATE TABLE job_models (
    job_id text COLLATE "C" PRIMARY KEY,
    model bytea NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
-- Model weights hardly compress: store them out of line without trying.
ALTER TABLE job_models ALTER COLUMN model SET STORAGE EXTERNAL;
