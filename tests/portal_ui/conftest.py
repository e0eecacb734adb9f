"""The dead-letter fixtures (engine-made dead letters, staff users) for the page tests."""

from tests.deadletters.conftest import (  # noqa: F401  (shared fixtures)
    approver,
    dead_letter,
    dead_lettered,
    operator,
    scripted,
    submit,
)
