"""kubectl mcp's shell completion, read off the argument parser: commands, flags, flag values and resource names."""

from __future__ import annotations

import pytest

from mcp_operator.cli import completion
from mcp_operator.cli.main import main, parser

NAMES = {None: ["calc", "weather"], "team-b": ["edge"]}


@pytest.mark.parametrize(("words", "expected"), [
    ([""], ["bundle", "completion", "deploy", "destroy", "history", "init", "logs", "outputs", "rollback", "status"]),
    (["ro"], ["rollback"]),
    (["--ver"], ["--version"]),
    (["rollback", "--t"], ["--timeout", "--to-revision"]),
    (["history", "-o", ""], ["table", "json", "yaml"]),
    (["history", ""], ["calc", "weather"]),
    (["history", "-n", "team-b", ""], ["edge"]),
    (["logs", "calc", ""], []),  # the name is there already
    (["bundle", ""], ["push"]),
    (["completion", ""], []),
])
def test_candidates_follow_the_parser(words: list[str], expected: list[str]) -> None:
    found, _directive = completion.candidates(parser(), words, lambda namespace: NAMES.get(namespace, []))
    assert found == expected


def test_the_protocol_is_cobras_candidates_then_a_directive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["__complete", "dep"])
    assert exited.value.code == 0 and capsys.readouterr().out == "deploy\n:4\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_completion_script_asks_kubectl_mcp(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["completion", shell])
    printed = capsys.readouterr().out
    assert "kubectl-mcp __complete" in printed and "complete -o default -F _kubectl_mcp kubectl-mcp" in printed


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("kubectl-mcp ")


@pytest.mark.parametrize("command", ["init", "deploy", "outputs", "history", "status", "rollback", "logs", "destroy",
                                     "bundle", "completion"])
def test_every_command_has_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0 and "examples:\n" in shown and "kubectl mcp" in shown.split("examples:")[1]
