"""The checkpoint settings of `fairpath serve`: flags, FAIRPATH_* variables, and the combinations refused."""

from __future__ import annotations

import pytest
from fairpath.config import Config, ConfigError


def test_checkpoint_settings_come_from_flags_over_the_environment() -> None:
    """--checkpoint-key/--checkpoint-every/--checkpoint-file win over their FAIRPATH_CHECKPOINT_* variables."""
    environ = {
        "FAIRPATH_CHECKPOINT_KEY": "/env/key.pem",
        "FAIRPATH_CHECKPOINT_EVERY": "15",
        "FAIRPATH_CHECKPOINT_FILE": "/env/checkpoints.jsonl",
    }

    from_env = Config.from_sources([], environ)
    from_flags = Config.from_sources(
        ["--checkpoint-key", "k.pem", "--checkpoint-every", "0.5", "--checkpoint-file", "c.jsonl"], environ
    )

    assert (from_env.checkpoint_key, from_env.checkpoint_every, from_env.checkpoint_file) == (
        "/env/key.pem", 15.0, "/env/checkpoints.jsonl",
    )
    assert (from_flags.checkpoint_key, from_flags.checkpoint_every, from_flags.checkpoint_file) == (
        "k.pem", 0.5, "c.jsonl",
    )
    assert Config().checkpoint_every == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint-key"),
        (["--checkpoint-key", "k.pem", "--checkpoint-file", "c.jsonl"], "--checkpoint-file needs --checkpoint-every"),
        (["--checkpoint-key", "k.pem", "--checkpoint-every", "-1"], "finite number of minutes >= 0"),
        (["--checkpoint-key", "k.pem", "--checkpoint-every", "often"], "expected a number of minutes"),
    ],
)
def test_checkpoint_settings_that_cannot_work_are_refused(argv: list[str], message: str) -> None:
    """Periodic checkpoints without a key, a file without a schedule, or a bad interval stop the start."""
    with pytest.raises(ConfigError, match=message):
        Config.from_sources(argv, {})
