"""Background MNIST training jobs.

- ``config``: the validated job configuration (the body of ``POST /v1/jobs/mnist``).
- ``schemas``: the job record and the other response bodies.
- ``training``: the model, the losses and the training loop (pure torch, no I/O).
- ``worker``: the training process: data, training, model file; talks JSON lines on stdio.
- ``store``: job records and their event log in SQLite.
- ``manager``: queue, concurrency limit, cancellation, restart recovery.
- ``events``: Server-Sent Events for one job.
- ``inference``: the trained model file: save, load, predict.
- ``routes``: the HTTP endpoints.
"""
