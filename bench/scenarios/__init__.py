"""One module per benchmark, named by what it measures; each has ``run(bench)``, which adds its
results (and the targets they are held to) to ``bench.results``."""
