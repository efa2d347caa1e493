"""The performance benchmark: the real service as a subprocess on its own database and vhost, fed
reproducible workloads, measured against raw broker and PostgreSQL floors of the same run.
`python -m bench --help`; what each figure means is in bench/README.md."""
