"""Developer tasks: ``nox -s tests lint typecheck docs`` (and ``bench``, ``fuzz``).

Each session installs what it needs from the project's dependency groups
(``pyproject.toml``), so a fresh clone needs nothing but nox.
"""

from __future__ import annotations

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYTHONS = ["3.11", "3.12", "3.13", "3.14"]


def install(session: nox.Session, *groups: str, editable: bool = True) -> None:
    """Install the project and the named dependency groups into *session*'s venv."""
    session.install("--upgrade", "pip>=25.1")
    args = ["-e", "."] if editable else ["."]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (with the docs' examples) on each supported Python."""
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
