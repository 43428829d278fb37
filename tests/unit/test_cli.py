"""The ``shopstream`` command line: the options every command shares are accepted before
and after the command, ``--version`` prints the package's version, and every option of
every command says what it does."""
from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

import pytest

from devstack import cli, stack

SHARED = {  # option -> (a value given on the command line, the StackConfig field it sets, what that becomes)
    "--state-dir": ("/tmp/shopstream-cli-test", "state_dir", Path("/tmp/shopstream-cli-test")),
    "--emulator-port": ("14566", "emulator_port", 14566),
    "--gateway-port": ("9090", "gateway_port", 9090),
    "--admin-port": ("14599", "admin_port", 14599),
    "--region": ("us-east-1", "region", "us-east-1"),
}
COMMANDS = {  # a command with its required arguments
    "up": ["up"], "restart": ["restart"], "down": ["down"], "status": ["status"], "replay": ["replay", "x.csv"],
    "sql": ["sql", "select 1"], "reconcile": ["reconcile", "--data", "x.csv"],
    "backfill": ["backfill", "--from", "2011-01-01", "--to", "2011-01-31"], "dashboard": ["dashboard"],
    "demo": ["demo"], "redrive": ["redrive"], "token": ["token", "--staff"], "notifications": ["notifications"],
    "generate": ["generate"], "drop": ["drop", "x.csv"],
}


def config(argv: list[str]) -> stack.StackConfig:
    return cli._config(cli.build_parser().parse_args(argv))


def test_every_command_is_covered():
    [sub] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("option", sorted(SHARED))
def test_a_shared_option_is_accepted_before_and_after_the_command(command, option):
    given, field, expected = SHARED[option]
    before = config([option, given, *COMMANDS[command]])
    after = config([*COMMANDS[command], option, given])
    assert getattr(before, field) == getattr(after, field) == expected
    # and the other options keep their defaults either way
    default = stack.StackConfig(state_dir=stack.DEFAULT_STATE_DIR.resolve())
    for other, (_, other_field, _) in SHARED.items():
        if other != option:
            assert getattr(before, other_field) == getattr(after, other_field) == getattr(default, other_field)


def test_after_the_command_wins_and_absent_after_keeps_before():
    assert config(["--gateway-port", "1", "up", "--gateway-port", "2"]).gateway_port == 2
    assert config(["--gateway-port", "1", "up", "--admin-port", "3"]).gateway_port == 1


def test_main_runs_the_command_with_options_given_after_it(monkeypatch, tmp_path):
    # GIVEN `shopstream down` with the ports after the command
    seen = []
    monkeypatch.setattr(cli.stack, "down", seen.append)
    code = cli.main(["down", "--state-dir", str(tmp_path), "--gateway-port", "9090", "--emulator-port", "14566"])
    # THEN the stack it stops is the one those options name
    [given] = seen
    assert code == 0
    assert (given.state_dir, given.gateway_port, given.emulator_port) == (tmp_path.resolve(), 9090, 14566)


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"shopstream {version('shopstream')}"


def test_version_when_the_package_is_not_installed(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.version().startswith("unknown")


def _parsers(parser: argparse.ArgumentParser, name: str = "shopstream"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                yield from _parsers(subparser, f"{name} {command}")


def test_every_option_and_argument_of_every_command_has_help():
    missing = [
        f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
        for name, parser in _parsers(cli.build_parser()) for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []


def test_every_command_has_help_in_the_list():
    [sub] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(choice.dest for choice in sub._choices_actions if choice.help) == sorted(COMMANDS)


def test_auth_is_on_unless_up_says_no_auth():
    assert config(["up"]).auth is True and config(["status"]).auth is True
    assert config(["up", "--no-auth"]).auth is False


def test_token_prints_a_token_of_the_stacks_issuer_and_needs_one(tmp_path, capsys):
    import jwt

    from devstack.auth import LocalIssuer

    assert cli.main(["--state-dir", str(tmp_path), "token", "--staff"]) == 2
    issuer = LocalIssuer.ensure(tmp_path, "http://127.0.0.1:8080")
    assert cli.main(["--state-dir", str(tmp_path), "token", "--customer", "17850"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, issuer.private_key.public_key(), algorithms=["RS256"], audience="shopstream")
    assert claims["customer_id"] == "17850" and claims["scope"] == "shopstream/invoices.read.own"
