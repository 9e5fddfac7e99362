"""Shell completion for kubectl mcp, read off the argument parser (so it cannot drift from the commands).

Two ways in:
- ``kubectl mcp <TAB>``: kubectl (1.26+) runs ``kubectl_complete-mcp`` from PATH with the words typed after ``mcp``,
  and reads Cobra's protocol back: one candidate a line, then ``:<directive>``.
- ``kubectl-mcp <TAB>``: ``kubectl mcp completion bash|zsh`` prints a script that asks ``kubectl-mcp __complete``.

McpDeployment names are offered where a command takes one, read from the cluster (best effort, a few seconds at
most: no cluster, no names).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

NO_FILES = 4  # Cobra's ShellCompDirectiveNoFileComp
DEFAULT = 0
VALUES = {"-o": ("table", "json", "yaml"), "--output": ("table", "json", "yaml")}

BASH = """# kubectl mcp completion bash: source it, or put it in /etc/bash_completion.d/kubectl-mcp
_kubectl_mcp() {
  local IFS=$'\\n' line out
  out=$(kubectl-mcp __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  COMPREPLY=()
  for line in $out; do
    [[ $line == :* ]] || COMPREPLY+=("$line")
  done
  [[ $out == *":4" ]] && compopt +o default 2>/dev/null
  return 0
}
complete -o default -F _kubectl_mcp kubectl-mcp
"""
ZSH = "# kubectl mcp completion zsh: source it from ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n" + BASH


def script(shell: str) -> str:
    return BASH if shell == "bash" else ZSH


def candidates(root: argparse.ArgumentParser, words: Sequence[str],
               names: Callable[[str | None], list[str]]) -> tuple[list[str], int]:
    """What may come next after ``words`` (the last one being completed, possibly empty), and Cobra's directive."""
    *before, current = list(words) or [""]
    commands = _commands(root)
    chosen = next((w for w in before if w in commands), None)
    if before and before[-1] in VALUES:
        return _starting(VALUES[before[-1]], current), NO_FILES
    if chosen is None:
        if current.startswith("-"):
            return _starting(_flags(root), current), NO_FILES
        return _starting(sorted(c for c in commands if not c.startswith("_")), current), NO_FILES
    command = commands[chosen]
    nested = _commands(command)
    if nested and not any(w in nested for w in before):
        return _starting(sorted(nested), current), NO_FILES
    if current.startswith("-"):
        return _starting(_flags(command), current), NO_FILES
    if any(action.dest == "name" for action in command._actions) and not _has_name(command, before, chosen):
        namespace = _value_of(before, ("-n", "--namespace"))
        return _starting(names(namespace), current), NO_FILES
    return [], DEFAULT  # files (a manifest, a bundle directory) or free text


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(option for action in parser._actions for option in action.option_strings if option.startswith("--"))


def _starting(options: Sequence[str], prefix: str) -> list[str]:
    return [o for o in options if o.startswith(prefix)]


def _value_of(words: Sequence[str], flags: tuple[str, ...]) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word in flags:
            return words[index + 1]
    return None


def _has_name(command: argparse.ArgumentParser, before: Sequence[str], chosen: str) -> bool:
    """Whether a NAME was typed already after the command (a word that is neither a flag nor a flag's value)."""
    takes_value = {o for a in command._actions if a.nargs != 0 for o in a.option_strings}
    after = list(before[before.index(chosen) + 1:])
    index = 0
    while index < len(after):
        if after[index] in takes_value:
            index += 2
            continue
        if not after[index].startswith("-"):
            return True
        index += 1
    return False


def mcpdeployment_names(namespace: str | None, kubeconfig: str | None = None) -> list[str]:
    """The McpDeployments in ``namespace`` (default: the context's), or none when the cluster cannot be asked."""
    from ..kube import Kube

    async def read() -> list[str]:
        kube, context_namespace = await Kube.connect(kubeconfig, None, connections=1)
        try:
            return await kube.names(namespace or context_namespace or "default")
        finally:
            await kube.close()

    try:
        return asyncio.run(asyncio.wait_for(read(), timeout=3))
    except Exception:  # completion offers nothing rather than break the shell
        return []


def complete(root: argparse.ArgumentParser, words: Sequence[str]) -> int:
    kubeconfig = _value_of(list(words), ("--kubeconfig",))
    found, directive = candidates(root, words, lambda namespace: mcpdeployment_names(namespace, kubeconfig))
    for candidate in found:
        print(candidate)
    print(f":{directive}")
    return 0


def kubectl_plugin() -> None:
    """``kubectl_complete-mcp``: what kubectl runs for ``kubectl mcp <TAB>``."""
    from .main import parser

    sys.exit(complete(parser(), sys.argv[1:]))
