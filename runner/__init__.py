"""The local-run tooling behind local_runner.py: the console and its log file (console.py), the
supervisor that watches a run's worker process for memory and kills (supervisor.py) and the
memory figures (memory.py), one run per output directory (run_lock.py), the input files checked
before a run (data.py), and what runs left in ML Metadata (metadata.py). Above the pipeline
definition: imports `pipeline/`, `components/` and `models/`, never the other way round."""
