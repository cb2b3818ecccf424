"""Developer tasks: ``nox -s tests lint typecheck docs`` (and ``bench``, ``fuzz``).

Each session installs what it needs from the project's dependency groups
(``pyproject.toml``), so a fresh clone needs nothing but nox.
"""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

# Exactly the versions the classifiers in pyproject.toml list, and CI tests.
PYTHONS = ["3.11", "3.12", "3.13"]


def install(session: nox.Session, *groups: str, editable: bool = True) -> None:
    """Install the project and the named dependency groups into *session*'s venv."""
    session.install("--upgrade", "pip>=25.1")
    args = ["-e", "."] if editable else ["."]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (with the docs' examples) on each supported Python.

    Arguments after ``--`` go to pytest; CI's coverage gate is
    ``nox -s tests-3.11 -- --cov=coalesce --cov-branch --cov-fail-under=95``.
    """
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with ``mypy --strict``."""
    install(session, "typecheck")
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs, failing on any warning or broken reference."""
    install(session, "docs")
    session.run(
        "sphinx-build", "-n", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks: print tables, write ``benchmarks/results/``, check the targets.

    Arguments after ``--`` go to ``python -m benchmarks`` (``--seed``, ``--quick`` ...).
    """
    install(session, "bench")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz the demux: hypothesis' ``fuzz`` profile always, then atheris where it installs.

    About a minute by default. ``nox -s fuzz -- 600`` (or ``FUZZ_SECONDS=600``)
    gives it about ten minutes: half for atheris, and a proportional number
    of hypothesis examples. Atheris' corpus and any crash it finds are kept
    under ``.nox/fuzz/tmp``; see ``docs/howto/fuzzing.rst``.
    """
    install(session, "fuzz")
    seconds = int(session.posargs[0] if session.posargs else os.environ.get("FUZZ_SECONDS", "60"))
    session.run(
        "pytest",
        "tests/fuzz",
        env={"HYPOTHESIS_PROFILE": "fuzz", "COALESCE_FUZZ_EXAMPLES": str(max(100, seconds * 5))},
    )
    found = session.run(
        "python",
        "-c",
        "import importlib.util; print(importlib.util.find_spec('atheris') is not None)",
        silent=True,
    )
    if not isinstance(found, str) or found.strip() != "True":
        session.log("atheris is not installed for this Python or platform; skipping it")
        return
    tmp = session.create_tmp()
    corpus = os.path.join(tmp, "atheris-corpus")
    artifacts = os.path.join(tmp, "atheris-artifacts")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    session.run(
        "python",
        "-m",
        "tests.fuzz.atheris_demux",
        corpus,
        "tests/fuzz/corpus",
        f"-max_total_time={max(10, seconds // 2)}",
        "-max_len=4096",
        "-timeout=10",
        f"-artifact_prefix={artifacts}{os.sep}",
    )
