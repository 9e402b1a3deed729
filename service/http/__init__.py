"""HTTP: routes, request and response models, problem rendering, limits."""
