"""The Open Inference Protocol (KServe v2, Triton) on the wire: its JSON and binary forms."""
