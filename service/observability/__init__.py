"""Operations: Prometheus metrics, JSON logs with request ids, CORS for browser clients.

``wiring.install_observability`` puts them into the app. This package's ``__init__`` imports
nothing, so ``multiprocess`` can run before any metric exists.
"""
