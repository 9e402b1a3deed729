"""Background MNIST training jobs.

- ``config``: the validated job configuration (the body of ``POST /v1/jobs/mnist``).
- ``schemas``: the job record and the other response bodies.
- ``training``: the model, the losses and the training loop (pure torch, no I/O).
- ``worker``: the training process: data, training, model file; talks JSON lines on stdio.
- ``stores``: job records, their event log and models: SQLite or PostgreSQL.
- ``executors``: where training runs: local processes or a Ray cluster.
- ``manager``: queue, concurrency limit, cancellation, restart recovery.
- ``events``: Server-Sent Events for one job.
- ``inference``: the trained model file: save, load, predict.
- ``routes``: the HTTP endpoints.
"""
