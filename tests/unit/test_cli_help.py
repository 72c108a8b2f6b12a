"""`reactor … --help` reads right: flags show no value placeholder, a value is named (never a
Python type such as `<bool>` or `<list[str]>`), and one concept has one option name across the
SPR commands."""

from __future__ import annotations

import re

import pytest

from reactor.cli import command, main

TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\]|int range|float range)>")


def _leaves() -> list[list[str]]:
    root = command()
    out = []
    for group_name, group in root.commands.items():
        subcommands = getattr(group, "commands", None)
        if subcommands is None:
            out.append([group_name])
        else:
            out.extend([group_name, name] for name in subcommands)
    return out


def _help(argv: list[str], capsys) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], *_leaves()], ids=lambda a: " ".join(a) or "reactor")
def test_help_shows_no_type_placeholder(argv, capsys):
    text = _help(argv, capsys)
    options = text.split("Options:", 1)[1]
    assert not TYPE_PLACEHOLDER.search(options), options
    assert re.search(r"--help\s+Show this message", options)  # a flag: nothing between


def test_the_spr_commands_share_option_names(capsys):
    helps = {name: _help(["spr", name], capsys) for name in ("compress", "roundtrip", "batch")}
    for text in helps.values():
        assert "--target-ratio" in text and "--ratio " not in text
        assert "--compressor" in text
    assert "--format FORMAT" in helps["compress"] and "--formats LIST" in helps["batch"]
    assert "dataset root" in helps["batch"]
