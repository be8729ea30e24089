"""The comparison runner: app × variant × seed matrices of real runs, and an honest A/B report.

    python -m apps.compare --config configs/compare/quick.yaml [key=value ...]
    python -m apps.compare --config configs/compare/quick.yaml --dry-run       # cells and commands
    python -m apps.compare --config configs/compare/quick.yaml --report-only   # rewrite the report
    python -m apps.compare --config configs/compare/quick.yaml --reevaluate    # new evaluation, same training
    python -m apps.compare --config configs/compare/quick.yaml --export        # + evidence to commit: findings/quick/
    python -m apps.compare --config configs/compare/mnist.yaml executor=ray ray_address=auto   # on a Ray cluster
    python -m apps.compare.findings [--check]      # the README's "What we found" from findings/*/summary.json

Layout: ``config`` (the preset schema) → ``matrix`` (cells and their commands) → ``runner`` (the
loop) + ``executors`` / ``ray_exec`` (here, on GPU slots from ``placement``, or as Ray tasks) +
``cellrun`` + ``procs`` (a cell's subprocesses, resumably) → ``collect`` + ``metrics`` (read the run
directories) → ``stats`` + ``analysis`` (intervals, paired tests, Holm, MDE, verdicts; this is
summary.json) → ``report`` + ``plots`` + ``examples`` (blocks of ``doc``) → ``report_md`` /
``report_html`` (the two renderings). ``export`` mirrors complete cells' small records into a
findings folder and picks, per cell, its run directory or its record to read; ``findings``
renders the README's summary of every committed finding.

No app is named here: an app is known only by its description (:class:`common.appspec.AppSpec`:
commands, schema, metrics, probed parts, examples), found through :func:`apps.load_apps`.
"""
